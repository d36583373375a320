"""Tests of the two-tower recall source: cosine scores, hnswlib vs exact, artifacts, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ltr.logs import events_with_users
from recall import base
from recall.base import validate_candidates
from recall.neural._two_tower import TwoTowerRecall


@pytest.fixture(scope="module")
def model(two_tower_world):
    logs, end, _ = two_tower_world
    return TwoTowerRecall(epochs=1, threads=1).fit(logs, end)


def test_vectors_are_unit(model, two_tower_world):
    logs, _, requests = two_tower_world
    np.testing.assert_allclose(np.linalg.norm(model.item_vectors_, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(model.user_vectors(requests, logs), axis=1), 1.0, atol=1e-5)


def test_exact_scores_are_cosine_over_temperature(model, two_tower_world):
    logs, _, requests = two_tower_world
    few = requests.iloc[:4]
    out = model.retrieve(few, logs, 25, exact=True)
    users = model.user_vectors(few, logs).astype(np.float64)
    clicks = events_with_users(logs, "clicks")
    for q, (rid, uid, ts) in enumerate(few[["request_id", "user_id", "ts"]].itertuples(index=False)):
        cos = model.item_vectors_.astype(np.float64) @ users[q]
        seen = clicks.loc[(clicks["user_id"] == uid) & (clicks["ts"] < ts), "item_id"]
        order = np.lexsort((model.item_table_.item_ids, -cos))  # slow reference, id tie-break
        order = order[~np.isin(model.item_table_.item_ids[order], seen)][:25]  # clicked items excluded
        got = out.loc[out["request_id"] == rid]
        np.testing.assert_array_equal(got["item_id"].to_numpy(), model.item_table_.item_ids[order])
        np.testing.assert_allclose(got["score"].to_numpy(), cos[order] / model.temperature, rtol=1e-4, atol=1e-4)


def test_hnsw_recall_against_exact(model, two_tower_world):
    logs, _, requests = two_tower_world
    graph = validate_candidates(model.retrieve(requests, logs, 50))
    exact = model.retrieve(requests, logs, 50, exact=True)
    assert (graph["source"] == "two_tower").all()
    assert (graph.groupby("request_id")["score"].diff().fillna(0) <= 1e-6).all()
    assert len(graph.merge(exact, on=["request_id", "item_id"])) / len(exact) >= 0.98


def test_user_tower_matches_manual_pooling(model, two_tower_world):
    net = model.net_
    vecs = torch.from_numpy(model.item_vectors_[:3])[None]
    mask = torch.tensor([[True, False, True]])
    prof = torch.zeros((1, len(model.user_vocab_)), dtype=torch.long)
    with torch.no_grad():
        got = net.query_state(vecs, mask, prof)[0]
        pooled = (vecs[0, 0] + vecs[0, 2] + net.empty) / 3.0
        want = net.user_mlp(torch.cat([pooled[None], net.profile(prof)], dim=-1))
    np.testing.assert_allclose(got.numpy(), torch.nn.functional.normalize(want, dim=-1).numpy(), atol=1e-6)


@pytest.mark.parametrize("exact", [False, True])
def test_k_larger_than_catalogue_and_cold_user(model, two_tower_world, exact):
    logs, _, _ = two_tower_world
    cold = pd.DataFrame({"request_id": [7], "user_id": [10**9], "ts": [0]})
    out = model.retrieve(cold, logs, 5000, exact=exact)
    assert len(out) == logs.items["item_id"].nunique()
    assert np.isfinite(out["score"]).all()


def test_save_load_roundtrip(model, two_tower_world, tmp_path):
    """Tampered files are refused by the contract tests (every file of every source)."""
    logs, _, requests = two_tower_world
    model.save(tmp_path / "tt")
    loaded = base.load(tmp_path / "tt")
    assert isinstance(loaded, TwoTowerRecall)
    pd.testing.assert_frame_equal(model.retrieve(requests, logs, 40), loaded.retrieve(requests, logs, 40))


def test_bad_params(two_tower_world):
    logs, end, _ = two_tower_world
    with pytest.raises(ValueError, match="max_per_category must be 0 for two_tower"):
        TwoTowerRecall(max_per_category=3).fit(logs, end)
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, inf\)\. Got 0 instead\."):
        TwoTowerRecall(batch_size=0).fit(logs, end)


class _Refusing:
    """An hnswlib index that refuses every batch of several queries and the query ``bad``
    (as hnswlib does when a query reaches fewer than k items)."""

    def __init__(self, index, bad: np.ndarray) -> None:
        self.index, self.bad = index, bad

    def set_ef(self, ef: int) -> None:
        self.index.set_ef(ef)

    def knn_query(self, users: np.ndarray, k: int, num_threads: int = 1):
        # ``bad`` to float rounding: a user vector computed in another batch may differ in the last bit.
        if len(users) > 1 or np.allclose(users[0], self.bad, rtol=0, atol=1e-5):
            raise RuntimeError("Cannot return the results in a contiguous 2D array. Probably ef or M is too small")
        return self.index.knn_query(users, k=k, num_threads=num_threads)


@pytest.mark.parametrize("k", [20, 10_000])
def test_search_survives_hnswlib_refusals_and_large_k(model, two_tower_world, k):
    logs, _, requests = two_tower_world
    few = requests.iloc[:6]
    users = model.user_vectors(few, logs)
    exact = model.retrieve(few, logs, k, exact=True)
    normal = model.retrieve(few, logs, k)
    refusing = TwoTowerRecall(epochs=1, threads=1)
    refusing.__dict__.update(model.__dict__)
    refusing.index_ = _Refusing(model.index_, users[2])
    got = refusing.retrieve(few, logs, k)
    bad = few["request_id"].iloc[2]
    # Refused query: exact; every other query: what the index gives it on its own (= in a batch).
    want = pd.concat([normal.loc[normal["request_id"] != bad], exact.loc[exact["request_id"] == bad]])
    key = ["request_id", "rank"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True)[["request_id", "item_id", "rank"]],
                                  want.sort_values(key).reset_index(drop=True)[["request_id", "item_id", "rank"]])
    if 2 * k >= model.item_table_.n:  # half the catalogue or more: scored exactly, no search
        pd.testing.assert_frame_equal(normal, exact)
