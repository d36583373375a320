"""A FeatureBuilder fitted from disjoint parts of the training rows (the Dask engine's fit) has
the state ``fit`` learns on all rows, bit for bit; partial counting tables sum to the table of
all rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.features import DailyStats, FeatureBuilder, context_candidates, labelled_samples, outcome_columns
from ltr.features._partial import fit_from_parts, refresh_from_parts, sum_tables
from ltr.logs import read_logs
from ltr.train import default_feature_params
from tests.states import assert_same_state

WORLD = Path(__file__).resolve().parents[2] / "fixtures" / "world"


@pytest.fixture(scope="module")
def world():
    logs = read_logs(WORLD)
    return logs, labelled_samples(logs)


def _split(frame: pd.DataFrame, how: str) -> list[pd.DataFrame]:
    if how == "day":
        return [part.reset_index(drop=True) for _, part in frame.groupby("day")]
    rng = np.random.default_rng(3)
    label = rng.integers(0, 3, len(frame))
    return [frame.loc[label == k].reset_index(drop=True) for k in range(3)]


@pytest.mark.parametrize("model", ["lr", "lgbm"])
@pytest.mark.parametrize("how", ["day", "random"])
def test_fit_from_parts_equals_fit(world, model, how):
    logs, samples = world
    train = samples.loc[samples["day"] <= samples["day"].min() + 8].reset_index(drop=True)
    params = {**default_feature_params(model), "context": context_candidates(samples, logs),
              "outcomes": outcome_columns(samples)}
    local = FeatureBuilder(**params).fit(train, items=logs.items, users=logs.users)
    parts = _split(train, how)
    calls = []

    def run(func, *args):
        calls.append(func.__name__)
        return [func(part, *args) for part in parts]

    fitted = fit_from_parts(FeatureBuilder(**params), run, list(train.columns), items=logs.items, users=logs.users)
    assert len(calls) == 3  # levels, tables and categories, bin values: nothing else crosses
    assert_same_state(local, fitted)
    rows = samples.loc[samples["day"] == samples["day"].min() + 9]
    a, b = local.transform(rows), fitted.transform(rows)
    assert (a.X != b.X).nnz == 0 and np.array_equal(a.dense, b.dense, equal_nan=True)
    through = int(samples["day"].max()) - 1
    history = _split(samples, how)
    refreshed = refresh_from_parts(fitted, lambda func, *args: [func(part, *args) for part in history], through)
    assert_same_state(local.refreshed(samples, through), refreshed)


@pytest.mark.parametrize("kind", ["int", "str", "float"])
def test_partial_tables_sum_to_the_table_of_all_rows(kind):
    rng = np.random.default_rng(0)
    n = 4000
    keys = rng.integers(0, 60, n)
    values = {"int": keys * 7 - 100, "str": np.array([f"k{k}" for k in keys], dtype=object),
              "float": keys / 4.0}[kind]
    frame = pd.DataFrame({"a": values, "b": rng.integers(0, 5, n), "day": rng.integers(100, 130, n),
                          "click": rng.integers(0, 2, n), "order": rng.integers(0, 2, n),
                          "w": rng.integers(-50, 500, n)})
    frame.loc[rng.random(n) < 0.05, "a"] = None
    whole = DailyStats.from_samples(frame, ("a", "b"), sums=("w",))
    label = rng.integers(0, 4, n)
    label[frame["a"].isna().to_numpy()] = 3  # one part whose keys are all missing
    parts = [DailyStats.from_samples(frame.loc[label == k], ("a", "b"), sums=("w",)) for k in range(4)]
    summed = sum_tables(parts)
    meta_a, arrays_a = whole.to_state()
    meta_b, arrays_b = summed.to_state()
    assert meta_a == meta_b and sorted(arrays_a) == sorted(arrays_b)
    for name, value in arrays_a.items():
        assert value.dtype == arrays_b[name].dtype and np.array_equal(value, arrays_b[name]), name
    with pytest.raises(ValueError, match="share key columns"):
        sum_tables([whole, DailyStats.from_samples(frame, ("b",))])
