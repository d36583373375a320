"""Fast paths of the feature transform equal their general (reference) paths bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.features import (
    BinCollapseWarning,
    CategoryEncoder,
    DayTableCache,
    FeatureBuilder,
    QuantileBinner,
    codes_to_csr,
)
from ltr.features._attributes import IdLookup
from ltr.features._binning import BinCoder
from ltr.features._pit_stats import _level_index, _LevelLookup
from ltr.features._sparse import RowBlockWriter


def _random_levels(rng, kind: str) -> np.ndarray:
    if kind == "int":
        return np.unique(rng.integers(-50, 50, 40)).astype(np.int64)
    values = np.unique(np.round(rng.normal(size=40), 1))
    return values.astype(np.float64)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["int", "float"])
def test_level_lookup_equals_pandas_index(seed, kind):
    rng = np.random.default_rng(seed)
    levels = _random_levels(rng, kind)
    lookup = _LevelLookup(levels)
    queries = [
        rng.choice(np.concatenate([levels, levels + 1000]), 200),
        rng.integers(-60, 60, 50).astype(np.int32),
        np.array([np.nan, -0.0, 0.0, np.inf, levels[0]]),
        rng.choice(levels, 30).astype(object),  # not searched: cached pandas index
        np.array([], dtype=levels.dtype),
    ]
    for query in queries:
        expected = _level_index(levels, query)
        got = lookup(query)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)
    empty = _LevelLookup(np.array([], dtype=np.int64))
    np.testing.assert_array_equal(empty(np.array([1, 2])), [-1, -1])


@pytest.mark.parametrize("seed", range(6))
def test_id_lookup_equals_pandas_index(seed):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(rng.choice(10_000, 300, replace=False)).astype(np.int64)
    lookup = IdLookup(ids)
    index = pd.Index(ids)
    for query in (
        rng.integers(-5, 10_005, 500),
        rng.choice(ids, 40).astype(np.int32),
        rng.choice(ids, 40).astype(np.float64),  # other query types: pandas path
        np.array([], dtype=np.int64),
        [int(ids[0]), -1],
    ):
        np.testing.assert_array_equal(lookup(query), index.get_indexer(query))
    text = IdLookup(np.array(["a", "c", "b"], dtype=object))
    np.testing.assert_array_equal(text(np.array(["c", "z"], dtype=object)), [1, -1])


def _reference_codes(categories: list, values: np.ndarray, unknown: int, missing: int) -> np.ndarray:
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and v != v):
            out.append(missing)
        else:
            out.append(next((c for c, level in enumerate(categories) if level == v), unknown))
    return np.array(out)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fit_kind", ["int", "float"])
def test_numeric_category_codes_equal_python_equality(seed, fit_kind):
    rng = np.random.default_rng(seed)
    if fit_kind == "int":
        train = rng.integers(0, 12, 300)
    else:
        train = rng.integers(0, 12, 300) / 2.0
        train[::17] = np.nan
    encoder = CategoryEncoder(min_count=5, missing="separate").fit(pd.DataFrame({"x": train}))
    cats = encoder.categories_[0]
    for values in (
        rng.integers(-2, 14, 200),
        rng.integers(-2, 14, 200) / 2.0,
        np.array([np.nan, -0.0, 0.0, 2**60, 3.0, np.inf]),
        np.array([2**60, 2**60 + 1, 4], dtype=np.int64),  # beyond 2**53: exact pandas path
        rng.integers(0, 6, 20).astype(np.int32),
    ):
        got = encoder.transform(pd.DataFrame({"x": values}))[:, 0]
        expected = _reference_codes(cats, values, int(encoder.unknown_code_[0]), int(encoder.missing_code_[0]))
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("size", [1, 300, 5000])  # dict look-ups up to 4,096 rows, a pandas index beyond
def test_string_category_codes_equal_python_equality(seed, size):
    rng = np.random.default_rng(seed)
    levels = np.array([f"v{i}" for i in range(15)], dtype=object)
    weights = 0.7 ** np.arange(levels.size)
    train = rng.choice(levels, 400, p=weights / weights.sum())
    train[::23] = None
    encoder = CategoryEncoder(min_count=10, missing="separate").fit(pd.DataFrame({"x": train}))
    values = rng.choice(np.append(levels, ["unseen", "V1", ""]), size).astype(object)
    for k, missing in enumerate((None, np.nan, pd.NA)):
        values[k::7] = missing
    got = encoder.encode_columns([values])[:, 0]
    kept = list(encoder.categories_[0])
    assert 0 < len(kept) < levels.size  # some levels rare, some kept
    expected = [encoder.missing_code_[0] if v is None or v is pd.NA or v != v
                else kept.index(v) if v in kept else encoder.unknown_code_[0] for v in values.tolist()]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_bins", [3, 10, 40])
def test_bin_codes_equal_quantile_binner(seed, n_bins):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = 500, 7
    X = np.round(rng.exponential(size=(n_rows, n_cols)), 2)
    X[:, 0] = rng.integers(0, 3, n_rows)  # heavy ties: collapsed bins
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 1] = -0.0
    X[0, 1] = 1.0
    binner = QuantileBinner(n_bins=n_bins)
    with pytest.warns(BinCollapseWarning, match="Quantile edges collapsed"):
        binner.fit(X)
    coder = BinCoder.from_binner(binner, np.arange(n_cols), n_cols)
    assert coder.identity and (coder.edges is None) == (n_bins == 40)  # both coding paths run
    query = np.asfortranarray(np.concatenate([X, rng.normal(scale=3, size=(50, n_cols)), X[:3] * 0 + 0.0]))
    out = np.empty(query.shape, dtype=np.int32, order="F")
    coder.codes_into(query, out)
    np.testing.assert_array_equal(out, binner.transform(query))
    # A subset of the columns (non-identity layout): binner features 2 and 0 read block columns 2 and 0.
    sub = BinCoder(
        index=np.array([2, 0]),
        identity=False,
        edges=None if coder.edges is None else coder.edges[:, [2, 0]],
        inner=(coder.inner[2], coder.inner[0]),
        nan_codes=coder.nan_codes[[2, 0]],
    )
    out = np.empty((query.shape[0], 2), dtype=np.int32, order="F")
    sub.codes_into(query, out)
    np.testing.assert_array_equal(out, binner.transform(query)[:, [2, 0]])
    # Features reading other block columns than their own position.
    moved = BinCoder.from_binner(binner, np.arange(n_cols)[::-1], n_cols)
    out = np.empty(query.shape, dtype=np.int32, order="F")
    moved.codes_into(np.asfortranarray(query[:, ::-1]), out)
    np.testing.assert_array_equal(out, binner.transform(query))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_row_block_writer_equals_codes_to_csr(seed, chunk):
    rng = np.random.default_rng(seed)
    n_levels = rng.integers(1, 6, 5)
    n_rows = int(rng.integers(0, 60))
    codes = np.column_stack([rng.integers(0, k, n_rows) for k in n_levels]).astype(np.int32).reshape(n_rows, 5)
    for n_values in (0, 2):
        values = rng.normal(size=(n_rows, n_values)) if n_values else None
        n_features = int(n_levels.sum()) + n_values + 3
        expected = codes_to_csr(codes, n_levels, values, n_features=n_features)
        writer = RowBlockWriter(n_rows, n_levels, n_values, n_features)
        for start in range(0, n_rows, chunk):
            rows = slice(start, min(start + chunk, n_rows))
            writer.write(rows, np.asfortranarray(codes[rows]), None if values is None else values[rows])
        got = writer.finish()
        assert got.shape == expected.shape
        for attr in ("data", "indices", "indptr"):
            a, b = getattr(got, attr), getattr(expected, attr)
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        assert got.has_canonical_format and got.has_sorted_indices


def test_row_block_writer_rejects_non_finite_values():
    writer = RowBlockWriter(3, np.array([2]), 1, 3)
    with pytest.raises(ValueError, match=r"values must be finite. Got nan at row 2"):
        writer.write(slice(1, 3), np.zeros((2, 1), np.int32), np.array([[0.5], [np.nan]]))


@pytest.fixture(scope="module")
def world():
    from ltr.logs import join_samples
    from ltr.simulate import simulate_world

    w = simulate_world(users=120, items=150, days=6, seed=5, candidates_per_request=15)
    return w.logs, join_samples(w.logs).samples


def _rows_bits(features, order: np.ndarray) -> tuple:
    X = features.X.tocsr()[order]
    return X.indices.tobytes(), X.data.tobytes(), np.ascontiguousarray(features.dense[order]).tobytes()


@pytest.mark.parametrize("use_history", [False, True])
@pytest.mark.parametrize("chunk", [13, 200, 1000])
def test_per_day_tables_equal_the_general_path(world, use_history, chunk):
    """Day-sorted chunks (one or two days: per-day key tables) == shuffled rows (general path)."""
    logs, samples = world
    train = samples[samples["day"] <= samples["day"].max() - 2]
    builder = FeatureBuilder(min_count=3, history_len=4).fit(train, items=logs.items, users=logs.users)
    history = samples if use_history else None
    by_day = samples.sort_values(["day", "ts"], kind="stable")
    shuffled = by_day.sample(frac=1.0, random_state=chunk)
    cache = DayTableCache()
    fast = builder.transform(by_day, history=history, chunk_size=chunk, cache=cache)
    # The cache path ran; tables of a history frame live for the call and never enter it.
    assert bool(len(cache)) == (not use_history)
    general = builder.transform(shuffled, history=history, chunk_size=len(shuffled))
    # Row i of by_day is row position_in_shuffled[i] of shuffled.
    position_in_shuffled = pd.Series(np.arange(len(shuffled)), index=shuffled.index)[by_day.index].to_numpy()
    assert _rows_bits(fast, np.arange(len(by_day))) == _rows_bits(general, position_in_shuffled)
    # One request at a time, repeatedly (the serving cache), days going back and forth.
    positions = pd.Series(np.arange(len(shuffled)), index=shuffled.index)
    for day in [int(samples["day"].max()), int(samples["day"].min()) + 1, int(samples["day"].max())]:
        one = by_day[by_day["day"] == day].head(40)
        fast = builder.transform(one, history=history, cache=cache)
        assert _rows_bits(fast, np.arange(len(one))) == _rows_bits(general, positions[one.index].to_numpy())
