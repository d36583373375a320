"""The NIP scorer's point-in-time popularity input (``popularity_windows``) and the refit after
validation (``refit``), each against an independent reference."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ltr.logs import day_index
from recall import base
from recall.neural._nip import NIPRecall
from recall.neural._popularity import RecentClicks
from recall.neural._two_tower import TwoTowerRecall
from tests.recall.conftest import TINY

WINDOWS = (2, 24)


def _brute_force_counts(times, rows, ts, item, window):
    """Clicks on ``item`` whose hour lies in the ``window`` hours before the hour of ``ts``."""
    hour = ts // 3600
    clicked = (times // 3600 >= hour - window) & (times // 3600 <= hour - 1) & (rows == item)
    return int(clicked.sum())


@pytest.mark.parametrize("windows", [(1,), (3, 24), (5, 1, 72)])
@pytest.mark.parametrize("seed", [0, 1])
def test_recent_clicks_match_brute_force(windows, seed):
    rng = np.random.default_rng(seed)
    times = rng.integers(0, 4 * 86400, 600)
    rows = rng.integers(-1, 12, 600)  # -1: an item outside the catalogue, never counted
    ts = rng.integers(-3600, 5 * 86400, 40)
    items = rng.integers(-1, 14, 40)  # -1: padding, features 0; 12, 13: never clicked
    got = RecentClicks(times, rows, windows).features(ts, items)
    assert got.shape == (40, len(windows)) and got.dtype == np.float32
    want = np.array([[np.log1p(_brute_force_counts(times, rows, t, i, w)) if i >= 0 else 0.0 for w in windows]
                     for t, i in zip(ts, items, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    grid = RecentClicks(times, rows, windows).features(ts[:, None], np.arange(14)[None, :])  # broadcast
    np.testing.assert_allclose(grid[np.arange(40), np.maximum(items, 0)][items >= 0], want[items >= 0])


def test_recent_clicks_without_clicks():
    out = RecentClicks(np.zeros(0, np.int64), np.zeros(0, np.int64), (3,)).features(np.array([7200]), np.array([0]))
    np.testing.assert_array_equal(out, [[0.0]])


@pytest.fixture(scope="module")
def popular(nip_world):
    logs, end, _ = nip_world
    return NIPRecall(**dict(TINY["nip"], epochs=2, popularity_windows=WINDOWS)).fit(logs, end)


def test_exact_search_equals_torch_reference(popular, nip_world):
    """The numpy scorer's exact top 20 with the popularity block is the torch network's order."""
    logs, _, requests = nip_world
    few = requests.iloc[:6]
    result = popular.search(few, logs, 20, exact=True)
    recent = popular._recent_clicks(popular.click_history(logs))
    score = popular._score_fn(popular._query_states(few, logs), popularity=(few["ts"].to_numpy(), recent))
    n = popular.item_table_.n
    for q in range(len(few)):
        s = score(np.full(n, q, dtype=np.int64), np.arange(n, dtype=np.int64))
        np.testing.assert_array_equal(result.labels[q], np.lexsort((np.arange(n), -s))[:20])


def test_popularity_moves_scores(popular, nip_world):
    """The input is used: the same pairs score differently with the features zeroed."""
    logs, _, requests = nip_world
    few = requests.iloc[:4]
    state = popular._query_states(few, logs)
    items = torch.from_numpy(popular.item_vectors_)[None]
    recent = popular._recent_clicks(popular.click_history(logs))
    feats = torch.from_numpy(recent.features(few["ts"].to_numpy()[:, None],
                                             np.arange(popular.item_table_.n)[None]))
    assert float(feats.max()) > 0
    with torch.no_grad():
        moved = popular.net_.score(state, items, popularity=feats)
        flat = popular.net_.score(state, items, popularity=torch.zeros_like(feats))
    assert float((moved - flat).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="popularity must be given"):
        popular.net_.score(state, items)


def test_batch_equals_single_and_graph_recall(popular, nip_world):
    logs, _, requests = nip_world
    batch = popular.retrieve(requests.iloc[:8], logs, 30)
    singles = pd.concat([popular.retrieve(requests.iloc[[i]], logs, 30) for i in range(8)], ignore_index=True)
    pd.testing.assert_frame_equal(batch, singles, check_exact=False, rtol=1e-4, atol=1e-5)
    graph = popular.retrieve(requests, logs, 50)
    exact = popular.retrieve(requests, logs, 50, exact=True)
    assert len(graph.merge(exact, on=["request_id", "item_id"])) / len(exact) >= 0.9


def test_no_click_of_the_request_hour_or_later_is_used(popular, nip_world):
    """Other users' clicks from the requests' hour on change nothing (counts stop an hour
    before, and they are not the requesting user's history)."""
    logs, _, requests = nip_world
    few = requests.iloc[:10]
    start = int(few["ts"].min()) // 3600 * 3600
    user_of = logs.requests.set_index("request_id")["user_id"]
    later = (logs.clicks["ts"].to_numpy() >= start) & ~user_of.reindex(logs.clicks["request_id"]).isin(
        few["user_id"]).to_numpy()
    assert later.any()
    trimmed = logs.replace(clicks=logs.clicks.loc[~later].reset_index(drop=True))
    for exact in (False, True):
        pd.testing.assert_frame_equal(popular.retrieve(few, trimmed, 30, exact=exact),
                                      popular.retrieve(few, logs, 30, exact=exact))


def test_save_load_and_no_training_logs(popular, nip_world, tmp_path):
    logs, end, requests = nip_world
    popular.save(tmp_path / "nip")
    loaded = base.load(tmp_path / "nip")
    assert loaded.popularity_windows == WINDOWS
    pd.testing.assert_frame_equal(loaded.retrieve(requests, logs, 40), popular.retrieve(requests, logs, 40))
    late = day_index(logs.requests["ts"].to_numpy(), logs.tz) > end
    kept = logs.requests.loc[late, "request_id"]
    recent = logs.replace(**{table: getattr(logs, table).loc[getattr(logs, table)["request_id"].isin(kept)]
                             for table in ("requests", "exposures", "clicks", "candidates")})
    pd.testing.assert_frame_equal(loaded.retrieve(requests, recent, 40), popular.retrieve(requests, logs, 40))


@pytest.mark.parametrize("windows", [(0,), (3, -1), (2.5,), "24", (True,)])
def test_bad_windows(nip_world, windows):
    logs, end, _ = nip_world
    with pytest.raises(ValueError, match="popularity_windows must be a tuple of ints"):
        NIPRecall(popularity_windows=windows).fit(logs, end)


def test_two_tower_refuses_a_popularity_input():
    net = TwoTowerRecall(dim=4)._make_net({"n_ids": 3, "n_categories": 2, "n_cities": 1, "n_prices": 1,
                                           "dense_dim": 0, "profile_sizes": []})
    with pytest.raises(ValueError, match="popularity must be None"):
        net.score((torch.ones(1, 4),), torch.ones(1, 2, 4), popularity=torch.ones(1, 2, 1))


@pytest.mark.parametrize(("cls", "windows"), [(NIPRecall, ()), (NIPRecall, WINDOWS), (TwoTowerRecall, ())])
def test_refit_is_a_fresh_run_on_every_day(nip_world, cls, windows):
    """``refit``: the validation curve, then a new network trained on every day for the best
    epoch's number of epochs -- the same network as ``val_k=0`` with that many epochs."""
    logs, end, requests = nip_world
    extra = {"popularity_windows": windows} if windows else {}
    params = dict(TINY["nip"] if cls is NIPRecall else TINY["two_tower"], epochs=3, patience=3, **extra)
    refit = cls(**params, val_k=50, refit=True).fit(logs, end)
    validated = [p for p in refit.curve_ if "refit" not in p]
    rerun = [p for p in refit.curve_ if "refit" in p]
    assert len(validated) == 3 and all("val_hitrate" in p for p in validated)
    best = max(range(3), key=lambda i: (validated[i]["val_hitrate"], -i)) + 1
    assert len(rerun) == best
    plain = cls(**dict(params, epochs=best), val_k=0).fit(logs, end)
    np.testing.assert_array_equal(refit.item_vectors_, plain.item_vectors_)
    assert refit.n_train_positives_ == plain.n_train_positives_
    assert refit.item_vocab_["id"] == plain.item_vocab_["id"]
    held = cls(**params, val_k=50, refit=False).fit(logs, end)
    assert held.n_train_positives_ < refit.n_train_positives_
    pd.testing.assert_frame_equal(refit.retrieve(requests, logs, 20), plain.retrieve(requests, logs, 20))
