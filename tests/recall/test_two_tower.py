"""Tests of the two-tower recall source: cosine scores, hnswlib vs exact, artifacts, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ltr.artifacts import ArtifactError
from ltr.logs import day_index
from ltr.simulate import simulate_world
from recall import base
from recall.base import validate_candidates
from recall.neural._two_tower import TwoTowerRecall


@pytest.fixture(scope="module")
def world():
    logs = simulate_world(users=300, items=400, days=6, candidates_per_request=30, seed=2).logs
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    end = int(days.min()) + 4
    return logs, end, logs.requests.loc[days > end].reset_index(drop=True)


@pytest.fixture(scope="module")
def model(world):
    logs, end, _ = world
    return TwoTowerRecall(epochs=1, threads=1).fit(logs, end)


def test_vectors_are_unit(model, world):
    logs, _, requests = world
    np.testing.assert_allclose(np.linalg.norm(model.item_vectors_, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(model.user_vectors(requests, logs), axis=1), 1.0, atol=1e-5)


def test_exact_scores_are_cosine_over_temperature(model, world):
    logs, _, requests = world
    few = requests.iloc[:4]
    out = model.retrieve(few, logs, 25, exact=True)
    users = model.user_vectors(few, logs).astype(np.float64)
    for q, rid in enumerate(few["request_id"]):
        cos = model.item_vectors_.astype(np.float64) @ users[q]
        order = np.lexsort((model.item_table_.item_ids, -cos))[:25]  # slow reference, id tie-break
        got = out.loc[out["request_id"] == rid]
        np.testing.assert_array_equal(got["item_id"].to_numpy(), model.item_table_.item_ids[order])
        np.testing.assert_allclose(got["score"].to_numpy(), cos[order] / model.temperature, rtol=1e-4, atol=1e-4)


def test_hnsw_recall_against_exact(model, world):
    logs, _, requests = world
    graph = validate_candidates(model.retrieve(requests, logs, 50))
    exact = model.retrieve(requests, logs, 50, exact=True)
    assert (graph["source"] == "two_tower").all()
    assert (graph.groupby("request_id")["score"].diff().fillna(0) <= 1e-6).all()
    assert len(graph.merge(exact, on=["request_id", "item_id"])) / len(exact) >= 0.98


def test_user_tower_matches_manual_pooling(model, world):
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
def test_k_larger_than_catalogue_and_cold_user(model, world, exact):
    logs, _, _ = world
    cold = pd.DataFrame({"request_id": [7], "user_id": [10**9], "ts": [0]})
    out = model.retrieve(cold, logs, 5000, exact=exact)
    assert len(out) == logs.items["item_id"].nunique()
    assert np.isfinite(out["score"]).all()


def test_save_load_roundtrip_and_tamper(model, world, tmp_path):
    logs, _, requests = world
    model.save(tmp_path / "tt")
    loaded = base.load(tmp_path / "tt")
    assert isinstance(loaded, TwoTowerRecall)
    pd.testing.assert_frame_equal(model.retrieve(requests, logs, 40), loaded.retrieve(requests, logs, 40))
    for name in ("model.pt", "index.bin", "items.npz"):
        target = tmp_path / f"t_{name}"
        model.save(target)
        data = bytearray((target / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (target / name).write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match="modified|tamper|sha256|checksum"):
            TwoTowerRecall.load(target)


def test_bad_params(world):
    logs, end, _ = world
    with pytest.raises(ValueError, match="max_per_category must be 0 for two_tower"):
        TwoTowerRecall(max_per_category=3).fit(logs, end)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        TwoTowerRecall(batch_size=0).fit(logs, end)
