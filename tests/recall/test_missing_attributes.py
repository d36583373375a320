"""Missing attributes are data for every recall source: items without a category, items absent
from the items table and users absent from the users table are in the catalogue with an
explicit missing level (never dropped, never a crash)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recall import base
from recall._catalogue import catalogue, catalogue_ids
from recall.base import validate_candidates
from recall.hot import HotRecall
from recall.itemcf import ItemCFRecall
from recall.neural._vocab import encode_profiles
from tests.real_like import with_missing_attributes, without_category
from tests.recall.conftest import NAMES, World, fitted_on, make_source
from tests.recall.worlds import simulated

K = 30


@pytest.fixture(scope="module")
def missing():
    logs, train_end, requests = simulated(seed=21)
    made = with_missing_attributes(logs, seed=4)
    return made, World(made.logs, train_end, requests.head(40).reset_index(drop=True))


@pytest.fixture(scope="module")
def fitted_missing(missing):
    return fitted_on(missing[1])


def test_catalogue_is_the_items_table_then_the_items_it_lacks(missing):
    made, world = missing
    logs = world.logs
    frame = catalogue(logs)
    ids = catalogue_ids(logs)
    np.testing.assert_array_equal(frame["item_id"].to_numpy(), ids)
    n = len(logs.items)
    np.testing.assert_array_equal(ids[:n], logs.items["item_id"].to_numpy())
    events = pd.unique(pd.concat([logs.exposures["item_id"], logs.candidates["item_id"], logs.clicks["item_id"],
                                  logs.orders["item_id"]]))
    assert set(ids[n:]) == set(events) - set(logs.items["item_id"]) == set(made.dropped_items) & set(events)
    assert frame.iloc[n:].drop(columns="item_id").isna().all().all()


@pytest.mark.parametrize("name", NAMES)
def test_every_source_retrieves_on_real_like_logs(name, missing, fitted_missing, tmp_path):
    _, world = missing
    source = fitted_missing(name)
    out = validate_candidates(source.retrieve(world.requests, world.logs, K))
    assert out["request_id"].nunique() == len(world.requests)
    source.save(tmp_path / name)
    pd.testing.assert_frame_equal(base.load(tmp_path / name).retrieve(world.requests, world.logs, K), out)


@pytest.mark.parametrize("name", ["nip", "two_tower"])
def test_neural_sources_index_items_without_a_row_with_the_missing_level(name, missing, fitted_missing):
    made, world = missing
    model = fitted_missing(name)
    table = model.item_table_
    np.testing.assert_array_equal(table.item_ids, catalogue_ids(world.logs))
    vocab = model.item_vocab_
    na_category, na_city = vocab["category"].index("<na>") + 1, vocab["city"].index("<na>") + 1
    unknown = without_category(world.logs, table.item_ids)
    np.testing.assert_array_equal(table.categories == na_category, unknown)
    assert (table.cities[unknown] == na_city).all()
    # Every catalogue item can be retrieved, those without a row in the items table included.
    everything = model.retrieve(world.requests.head(2), world.logs, table.n, exact=True)
    assert set(everything["item_id"]) == set(table.item_ids)
    assert set(made.dropped_items) & set(table.item_ids)


@pytest.mark.parametrize("name", ["nip", "two_tower"])
def test_users_without_a_row_get_the_missing_profile_level(name, missing, fitted_missing):
    made, world = missing
    model = fitted_missing(name)
    columns = list(model.user_vocab_)
    users = np.concatenate([made.dropped_users[:3], made.blanked_users[:3]])
    codes = encode_profiles(world.logs, model.user_vocab_, users)
    city = columns.index("city")
    assert (codes[:, city] == model.user_vocab_["city"].index("<na>") + 1).all()
    other = [j for j, c in enumerate(columns) if c != "city"]
    # A user absent from the table misses every attribute; "<na>" is unseen in those columns: 0.
    assert (codes[:3][:, other] == 0).all() and (codes[3:][:, other] > 0).all()


def test_hot_missing_category_is_its_own_trending_list(missing):
    _, world = missing
    logs = world.logs
    # The category list alone (a fixed mix) and nothing excluded, so the expected list is the
    # category's heat order.
    model = HotRecall(overall_weight=0.0, city_weight=0.0, category_weight=1.0, history_len=1, learn_mix=False,
                      exclude_seen="none").fit(logs, world.train_end)
    ids, category, _ = model._catalogue(logs)
    np.testing.assert_array_equal(category == "", without_category(logs, ids))
    # Users whose last click before the request was on an item without a category.
    clicks = logs.clicks.merge(logs.requests[["request_id", "user_id"]], on="request_id")
    requests = logs.requests.loc[logs.requests["ts"] > logs.requests["ts"].quantile(0.8)]
    last = pd.merge_asof(requests.sort_values("ts"), clicks[["user_id", "item_id", "ts"]].sort_values("ts"),
                         on="ts", by="user_id", allow_exact_matches=False).dropna(subset=["item_id"])
    chosen = last.loc[without_category(logs, last["item_id"].to_numpy())].head(5)
    assert len(chosen) == 5
    out = model.retrieve(chosen[["request_id", "user_id", "ts"]], logs, 20)
    for request_id, ts in zip(chosen["request_id"], chosen["ts"].to_numpy(dtype=np.int64), strict=True):
        heat = model.heat(np.array([ts]), logs)[1][0]
        hot_missing = (category == "") & (heat > 0)
        order = np.lexsort((np.arange(ids.size), -heat))
        want = ids[order[hot_missing[order]]][:20]
        assert want.size
        got = out.loc[out["request_id"] == request_id, "item_id"].to_numpy()
        np.testing.assert_array_equal(got[: want.size], want)


def test_itemcf_learns_and_returns_items_without_a_row(missing):
    made, world = missing
    model = ItemCFRecall().fit(world.logs, world.train_end)
    rows = pd.Index(model.item_ids_).get_indexer(made.dropped_items)
    clicked = rows[(rows >= 0) & (np.diff(model.similarity_.indptr)[np.maximum(rows, 0)] > 0)]
    assert clicked.size  # items the items table lacks have co-click neighbours
    out = model.retrieve(world.logs.requests, world.logs, K)
    assert np.isin(out["item_id"], made.dropped_items).any()


@pytest.mark.parametrize("name", NAMES)
def test_every_source_works_without_items_and_users_tables(name, missing):
    """Without the tables every attribute is missing: the catalogue is the items of the logs."""
    _, world = missing
    bare = world.logs.replace(items=None, users=None)
    source = make_source(name).fit(bare, world.train_end)
    out = validate_candidates(source.retrieve(world.requests, bare, K))
    assert len(out) and out["item_id"].isin(catalogue_ids(bare)).all()
