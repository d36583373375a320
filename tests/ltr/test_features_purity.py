"""FeatureBuilder.transform never changes the builder; the per-day cache never changes a value."""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from ltr.features import DayTableCache, FeatureBuilder
from ltr.logs import join_samples
from ltr.simulate import simulate_world


def snapshot(obj, _stack=()):
    """A comparable deep copy of ``obj``'s state: arrays by dtype, shape and bytes, objects by ``vars``.

    Raises on a type it does not know, so no part of the state escapes the comparison. A pandas
    Index counts by its values (its lazily built hash table is pandas' own cache).
    """
    if id(obj) in _stack:
        return ("cycle", type(obj).__qualname__)
    stack = (*_stack, id(obj))
    if obj is None or isinstance(obj, (bool, int, str, bytes, np.integer, np.bool_)):
        return (type(obj).__name__, obj)
    if isinstance(obj, (float, np.floating)):
        return ("float", float(obj).hex() if not math.isnan(obj) else "nan")
    if isinstance(obj, np.dtype):
        return ("dtype", obj.str)
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return ("objects", obj.shape, tuple(snapshot(v, stack) for v in obj.ravel().tolist()))
        return ("array", obj.dtype.str, obj.shape, np.ascontiguousarray(obj).tobytes())
    if isinstance(obj, pd.Index):
        return ("Index", snapshot(obj.to_numpy(), stack))
    if isinstance(obj, dict):
        return ("dict", tuple((snapshot(k, stack), snapshot(v, stack)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(snapshot(v, stack) for v in obj))
    if isinstance(obj, (set, frozenset)):
        return (type(obj).__name__, tuple(sorted(repr(snapshot(v, stack)) for v in obj)))
    if isinstance(obj, type):
        return ("type", obj.__qualname__)
    if dataclasses.is_dataclass(obj) or hasattr(obj, "__dict__"):
        return ("object", type(obj).__qualname__, snapshot(dict(vars(obj)), stack))
    raise TypeError(f"snapshot does not know {type(obj).__name__}")


@pytest.fixture(scope="module")
def world():
    w = simulate_world(users=120, items=150, days=7, seed=11, candidates_per_request=15)
    return w.logs, join_samples(w.logs).samples


def _bits(features) -> tuple:
    X = features.X
    return (X.shape, X.indptr.tobytes(), X.indices.tobytes(), X.data.tobytes(),
            np.ascontiguousarray(features.dense).tobytes(), tuple(features.feature_names), tuple(features.dense_names))


def _fit(world, **params) -> FeatureBuilder:
    logs, samples = world
    train = samples[samples["day"] <= samples["day"].max() - 2]
    return FeatureBuilder(min_count=3, history_len=4, **params).fit(train, items=logs.items, users=logs.users)


def _reloaded(builder: FeatureBuilder) -> FeatureBuilder:
    meta, arrays = builder.to_state()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    return FeatureBuilder.from_state(json.loads(json.dumps(meta)), dict(np.load(buf, allow_pickle=False)))


def _calls(samples: pd.DataFrame) -> list[dict]:
    """Transform calls covering every path: per-day tables of the fitted statistics (with a
    cache passed, fresh and warm, days going back and forth), the general path, history frames,
    CSR-only output and small chunks."""
    last = int(samples["day"].max())
    by_day = samples.sort_values(["day", "ts"], kind="stable")
    request = by_day[by_day["day"] == last].head(30)
    older = by_day[by_day["day"] == last - 3].head(30)
    return [
        {"rows": by_day},
        {"rows": request, "cache": True},
        {"rows": older, "cache": True},
        {"rows": request, "cache": True},
        {"rows": by_day, "chunk_size": 97, "cache": True},
        {"rows": by_day.sample(frac=1.0, random_state=0), "dense": False},
        {"rows": request, "history": samples, "cache": True},
        {"rows": by_day.head(500), "history": samples, "chunk_size": 64},
    ]


@pytest.mark.parametrize("params", [{}, {"lag_seconds": 1800, "windows": (1, 2)}, {"key_families": ("item",)}])
@pytest.mark.parametrize("reload", [False, True])
def test_transform_never_changes_the_builder(world, params, reload):
    _, samples = world
    builder = _fit(world, **params)
    if reload:
        builder = _reloaded(builder)
    before = snapshot(builder)
    names = set(vars(builder))
    cache = DayTableCache()
    for call in _calls(samples):
        call = dict(call)
        rows = call.pop("rows")
        if call.pop("cache", False):
            call["cache"] = cache
        builder.transform(rows, **call)
    if params.get("lag_seconds") is None:
        assert len(cache) > 0  # the per-day tables ran, in the cache the caller owns
    else:
        assert len(cache) == 0  # lag cut-offs are not days: the general path only
    assert set(vars(builder)) == names
    assert snapshot(builder) == before


@pytest.mark.parametrize("chunk_size", [7, 32768])
def test_cache_never_changes_a_value(world, chunk_size):
    _, samples = world
    builder = _fit(world)
    by_day = samples.sort_values(["day", "ts"], kind="stable")
    days = sorted(by_day["day"].unique())
    shared = DayTableCache()
    for day in [days[-1], days[2], days[-1], days[3], days[4], days[1], days[-1]]:
        rows = by_day[by_day["day"] == day].head(40)
        general = builder.transform(rows, cache=DayTableCache(max_keys=0), chunk_size=chunk_size)
        assert _bits(builder.transform(rows, cache=shared, chunk_size=chunk_size)) == _bits(general)
        assert _bits(builder.transform(rows, chunk_size=chunk_size)) == _bits(general)
        assert _bits(builder.transform(rows, cache=DayTableCache(), chunk_size=chunk_size)) == _bits(general)
    assert 0 < len(shared) <= 4 * len(builder.families_)  # trimmed to a few days per family
    # Two days in one batch, both ways.
    two = by_day[by_day["day"].isin(days[-2:])]
    assert _bits(builder.transform(two, cache=shared)) == _bits(builder.transform(two, cache=DayTableCache(max_keys=0)))


def test_one_cache_serves_several_builders(world):
    """Entries are tied to the tables they came from: builders never read each other's."""
    logs, samples = world
    a = _fit(world)
    b = FeatureBuilder(min_count=3, history_len=4).fit(samples[samples["day"] <= samples["day"].min() + 2],
                                                       items=logs.items, users=logs.users)
    c = _reloaded(a)
    rows = samples[samples["day"] == samples["day"].max()].head(50)
    shared = DayTableCache()
    for builder in (a, b, c, a, b):
        assert _bits(builder.transform(rows, cache=shared)) == _bits(builder.transform(rows, cache=DayTableCache(0)))
    assert _bits(a.transform(rows, cache=shared)) != _bits(b.transform(rows, cache=shared))


def test_cache_argument_is_checked(world):
    _, samples = world
    builder = _fit(world, key_families=("item",))
    with pytest.raises(TypeError, match=r"cache must be a DayTableCache or None\. Got dict instead\."):
        builder.transform(samples.head(3), cache={})
    with pytest.raises(TypeError, match=r"dense must be a bool\. Got 1 instead\."):
        builder.transform(samples.head(3), dense=1)
    with pytest.raises(ValueError, match=r"max_keys must be an int in \[0, inf\). Got -1 instead."):
        DayTableCache(max_keys=-1)
