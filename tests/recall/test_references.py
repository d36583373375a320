"""The textbook references (recall.references) against independent computations, and the
project's item-CF and hot list measured against them (issue 12: at least textbook strength)."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from eval.metrics import hitrate_at_k
from ltr.logs import day_index, events_with_users
from recall.hot import HotRecall
from recall.itemcf import ItemCFRecall
from recall.references import ReferenceRecall
from tests.recall.worlds import DAY0, make_logs, simulated


def test_cosine_matches_a_loop():
    logs = make_logs(3)
    train_end = DAY0 + 3
    ref = ReferenceRecall("cosine").fit(logs, train_end)
    clicks = events_with_users(logs, "clicks")
    clicks = clicks.loc[day_index(clicks["ts"].to_numpy()) <= train_end]
    users_of = defaultdict(set)
    for u, i in clicks[["user_id", "item_id"]].itertuples(index=False):
        users_of[i].add(u)
    dense = ref.similarity_.toarray()
    ids = list(ref.item_ids_)
    for a in ids:
        for b in ids:
            want = 0.0 if a == b else len(users_of[a] & users_of[b]) / math.sqrt(len(users_of[a]) * len(users_of[b]))
            assert dense[ids.index(a), ids.index(b)] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("lam", [1.0, 50.0])
def test_ease_solves_its_constrained_least_squares(lam):
    """B minimises |X - XB|^2 + lam |B|^2 with diag(B) = 0: the gradient (G + lam I) B - G
    vanishes off the diagonal (the diagonal holds the constraint's multipliers)."""
    logs = make_logs(4)
    ref = ReferenceRecall("ease", lam=lam).fit(logs, DAY0 + 3)
    clicks = events_with_users(logs, "clicks")
    clicks = clicks.loc[day_index(clicks["ts"].to_numpy()) <= DAY0 + 3]
    x = pd.crosstab(clicks["user_id"], clicks["item_id"]).clip(upper=1).reindex(columns=ref.item_ids_).to_numpy(float)
    g = x.T @ x
    b = ref.similarity_
    grad = (g + lam * np.eye(len(g))) @ b - g
    np.fill_diagonal(grad, 0.0)
    assert np.abs(grad).max() < 1e-8 and np.all(np.diag(b) == 0)


def test_references_never_return_clicked_items():
    logs, train_end, requests = simulated(seed=5)
    clicks = events_with_users(logs, "clicks")[["user_id", "item_id", "ts"]]
    for kind in ("popularity", "cosine", "ease"):
        out = ReferenceRecall(kind).fit(logs, train_end).retrieve(requests, logs, 30)
        pairs = requests.merge(clicks.rename(columns={"ts": "click_ts"}), on="user_id")
        seen = pairs.loc[pairs["click_ts"] < pairs["ts"], ["request_id", "item_id"]]
        assert not len(out.merge(seen, on=["request_id", "item_id"]))
        assert (out.groupby("request_id").size() == 30).all()


def _next_items(logs, train_end):
    """Each user's first click after the training days (users with clicks before it)."""
    clicks = events_with_users(logs, "clicks").sort_values("ts", kind="stable")
    day = day_index(clicks["ts"].to_numpy(), logs.tz)
    later = clicks.loc[day > train_end].drop_duplicates("user_id")
    first = clicks.groupby("user_id")["ts"].min()
    later = later.loc[first.reindex(later["user_id"]).to_numpy() < later["ts"].to_numpy()]
    requests = logs.requests.loc[logs.requests["request_id"].isin(later["request_id"])]
    return requests, later[["request_id", "item_id"]]


@pytest.fixture(scope="module")
def judged_world():
    logs, train_end, _ = simulated(seed=21, users=3000, items=2000, days=8, candidates_per_request=50)
    requests, targets = _next_items(logs, train_end)
    return logs, train_end, requests, targets


def _hit(candidates, targets, k):
    return float(hitrate_at_k(candidates, targets, k)["hitrate"].iloc[0])


@pytest.mark.parametrize("k", [10, 50])
def test_itemcf_at_least_textbook_cosine_and_hot_at_least_popularity(judged_world, k):
    """Next-item split (each user's first click after training): the defaults of the
    project's item-CF find at least as many next items as cosine item-CF over all history,
    and the hot list at least as many as a plain popularity list."""
    logs, train_end, requests, targets = judged_world
    ours = ItemCFRecall().fit(logs, train_end).retrieve(requests, logs, k)
    cosine = ReferenceRecall("cosine").fit(logs, train_end).retrieve(requests, logs, k)
    assert _hit(ours, targets, k) >= _hit(cosine, targets, k)
    hot = HotRecall().fit(logs, train_end).retrieve(requests, logs, k)
    popular = ReferenceRecall("popularity").fit(logs, train_end).retrieve(requests, logs, k)
    assert _hit(hot, targets, k) >= _hit(popular, targets, k)
