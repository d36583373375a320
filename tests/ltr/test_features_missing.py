"""Missing attributes are data: items without a category, items and users absent from their
tables get an explicit missing level in every feature (categoricals and counting keys),
checked against brute-force references on a simulated world made real-like."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ltr.features import FeatureBuilder
from ltr.features._encoding import MISSING_LEVEL, UNKNOWN_LEVEL
from ltr.logs import join_samples
from ltr.simulate import simulate_world
from tests.real_like import with_missing_attributes, without_category


@pytest.fixture(scope="module")
def world():
    base = simulate_world(users=150, items=200, days=6, seed=5, candidates_per_request=20).logs
    missing = with_missing_attributes(base, seed=1)
    samples = join_samples(missing.logs).samples
    train = samples[samples["day"] <= samples["day"].max() - 2].reset_index(drop=True)
    builder = FeatureBuilder(min_count=5, history_len=5).fit(train, items=missing.logs.items,
                                                             users=missing.logs.users)
    return missing, samples, builder


def test_the_world_has_every_kind_of_missing(world):
    missing, samples, _ = world
    assert np.isin(samples["item_id"], missing.blanked).any()
    assert np.isin(samples["item_id"], missing.dropped_items).any()
    assert np.isin(samples["user_id"], missing.dropped_users).any()


def _onehot(features, name):
    return features.X[:, features.feature_names.index(name)].toarray().ravel()


@pytest.mark.parametrize(("feature", "column", "dropped"), [
    ("item_category", "item_id", "items"),
    ("item_city", "item_id", "items"),
    ("user_city", "user_id", "users"),
])
def test_missing_attribute_is_its_own_level(world, feature, column, dropped):
    missing, samples, builder = world
    rows = samples[samples["day"] == samples["day"].max()].reset_index(drop=True)
    features = builder.transform(rows, history=samples)
    table = missing.logs.items if dropped == "items" else missing.logs.users
    attribute = feature.split("_", 1)[1]
    known = pd.Series(table[attribute].to_numpy(dtype=object), index=table[column].to_numpy())
    want = known.reindex(rows[column].to_numpy()).isna().to_numpy()
    assert want.any() and not want.all()
    got = _onehot(features, f"{feature}={MISSING_LEVEL}")
    np.testing.assert_array_equal(got, want.astype(float))
    # Not the unknown slot of rare and unseen levels.
    assert not (_onehot(features, f"{feature}={UNKNOWN_LEVEL}")[want]).any()
    code = features.dense[:, features.dense_names.index(f"{feature}:code")]
    assert np.unique(code[want]).size == 1 and not np.isin(code[~want], code[want]).any()


def _window_counts(samples, keys, rows, window):
    """Brute force: exposures of ``rows``' key in the ``window`` days before each row's day."""
    out = np.empty(len(rows))
    for i, (key, day) in enumerate(zip(keys(rows), rows["day"].to_numpy(), strict=True)):
        inside = (samples["day"] >= day - window) & (samples["day"] < day)
        out[i] = np.count_nonzero(inside.to_numpy() & (keys(samples) == key))
    return out


@pytest.mark.parametrize("family", ["user_category", "category"])
@pytest.mark.parametrize("window", [1, 3])
def test_missing_category_is_counted_as_one_key(world, family, window):
    missing, samples, builder = world
    unknown = without_category(missing.logs, samples["item_id"].to_numpy())
    # The key: the item's category, every unknown one the same level "?".
    category = np.where(unknown, "?", pd.Series(missing.logs.items["category"].to_numpy(dtype=object),
                                                index=missing.logs.items["item_id"].to_numpy())
                        .reindex(samples["item_id"].to_numpy()).to_numpy(dtype=object))
    frame = samples.assign(_cat=category)
    if family == "category":
        def keys(f):
            return f["_cat"].to_numpy()
    else:
        def keys(f):
            return (f["user_id"].astype(str) + "|" + f["_cat"].astype(str)).to_numpy()
    last = frame[frame["day"] == frame["day"].max()]
    rows = pd.concat([last[last["_cat"] == "?"].head(25), last[last["_cat"] != "?"].head(10)])
    features = builder.transform(rows.drop(columns="_cat"), history=samples)
    got = features.dense[:, features.dense_names.index(f"{family}_exp_{window}d")]
    want = _window_counts(frame, keys, rows, window)
    np.testing.assert_array_equal(got, want)
    assert want[:25].any()  # the missing level is counted, not dropped


def test_unseen_item_at_serving_gets_the_missing_level(world):
    _, samples, builder = world
    row = samples.tail(1).assign(item_id=10**9)
    features = builder.transform(row, history=samples)
    assert _onehot(features, f"item_category={MISSING_LEVEL}").tolist() == [1.0]


def test_state_round_trip_keeps_the_missing_levels(world):
    _, samples, builder = world
    meta, arrays = builder.to_state()
    again = FeatureBuilder.from_state(json.loads(json.dumps(meta)), arrays)
    rows = samples[samples["day"] == samples["day"].max()]
    a, b = builder.transform(rows, history=samples), again.transform(rows, history=samples)
    assert a.feature_names == b.feature_names
    assert (a.X != b.X).nnz == 0 and np.array_equal(a.dense, b.dense, equal_nan=True)


def test_world_without_any_missing_attribute_gets_unused_missing_columns():
    logs = simulate_world(users=60, items=80, days=4, seed=2, candidates_per_request=10).logs
    samples = join_samples(logs).samples
    features = FeatureBuilder(min_count=2).fit_transform(samples, items=logs.items, users=logs.users)
    for name in ("item_category", "user_city", "device"):
        assert not _onehot(features, f"{name}={MISSING_LEVEL}").any()
