"""Tests for eval.funnel: log funnel per bucket and recall funnel against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from eval.funnel import log_funnel, recall_funnel
from ltr.logs import day_index, from_frames, join_samples, parse_day

T0 = parse_day("2026-01-05") * 86400


def make_logs(seed: int, n_requests: int = 60, n_items: int = 40, n_days: int = 3, with_candidates: bool = True,
              buckets=("control", "treatment")):
    """Small random logs: each request logs up to 15 ranked candidates and exposes up to 6 of them."""
    rng = np.random.default_rng(seed)
    req_ids = np.arange(1, n_requests + 1) * 10
    users = rng.integers(0, 15, n_requests)
    requests = pd.DataFrame({
        "request_id": req_ids,
        "ts": T0 + rng.integers(0, n_days * 86400 - 3600, n_requests),
        "user_id": users,
        "bucket": np.asarray(buckets)[users % len(buckets)],
    })
    cand_rows, exp_rows = [], []
    for rid, ts in zip(requests["request_id"], requests["ts"], strict=True):
        m = int(rng.integers(3, 16))
        items = rng.choice(n_items, m, replace=False)
        scores = np.sort(rng.random(m))[::-1]
        cand_rows.append(pd.DataFrame({"request_id": rid, "item_id": items, "rank_pos": np.arange(1, m + 1),
                                       "rank_score": scores, "recall_source": "logged"}))
        n_exp = min(m, int(rng.integers(1, 7)))
        exp_rows.append(pd.DataFrame({"request_id": rid, "item_id": items[:n_exp], "ts": ts + 1,
                                      "position": np.arange(n_exp)}))
    candidates = pd.concat(cand_rows, ignore_index=True)
    exposures = pd.concat(exp_rows, ignore_index=True)
    clicked = exposures.loc[rng.random(len(exposures)) < 0.3]
    clicks = clicked.assign(ts=clicked["ts"] + 5)[["request_id", "item_id", "ts"]]
    ordered = clicked.loc[rng.random(len(clicked)) < 0.4]
    orders = pd.DataFrame({"request_id": pd.array(ordered["request_id"], dtype="Int64"),
                           "user_id": ordered["request_id"].map(requests.set_index("request_id")["user_id"]),
                           "item_id": ordered["item_id"], "ts": ordered["ts"] + 60})
    items = pd.DataFrame({"item_id": np.arange(n_items), "category": "c"})
    return from_frames(requests, exposures, clicks, candidates=candidates if with_candidates else None,
                       orders=orders, items=items)


def recall_candidates(logs, seed: int, share: float = 0.7, max_len: int = 25, n_items: int = 40) -> pd.DataFrame:
    """A recall source's lists for a random subset of the requests of the middle and last days."""
    rng = np.random.default_rng(seed)
    req = logs.requests
    day = day_index(req["ts"].to_numpy(), logs.tz)
    pool = req.loc[day >= day.min() + 1, "request_id"].to_numpy()
    chosen = pool[rng.random(len(pool)) < share]
    rows = []
    for rid in chosen:
        m = int(rng.integers(1, max_len + 1))
        rows.append(pd.DataFrame({"request_id": rid, "item_id": rng.choice(n_items, m, replace=False),
                                  "rank": np.arange(1, m + 1), "score": -np.arange(m, dtype=float),
                                  "source": "rand"}))
    return pd.concat(rows, ignore_index=True)


# ----------------------------------------------------------------------------- log funnel


@pytest.mark.parametrize("seed", [0, 1])
def test_log_funnel_matches_direct_counts(seed):
    logs = make_logs(seed)
    samples = join_samples(logs).samples
    out = log_funnel(logs, samples)
    req = logs.requests
    bucket_of = req.set_index("request_id")["bucket"]
    exposed = logs.exposures.drop_duplicates(["request_id", "item_id"])
    click_keys = set(map(tuple, logs.clicks[["request_id", "item_id"]].to_numpy()))
    order_keys = set(map(tuple, logs.orders[["request_id", "item_id"]].dropna().astype(int).to_numpy()))
    for b in ["control", "treatment"]:
        rq = req.loc[req["bucket"] == b]
        ex = exposed.loc[exposed["request_id"].map(bucket_of) == b]
        keys = list(map(tuple, ex[["request_id", "item_id"]].to_numpy()))
        n_clicks = sum(k in click_keys for k in keys)
        n_orders = sum(k in order_keys for k in keys)
        row = out.loc[b]
        assert row["users"] == rq["user_id"].nunique()
        assert row["requests"] == len(rq)
        assert row["candidates"] == int(logs.candidates["request_id"].isin(rq["request_id"]).sum())
        assert row["exposures"] == len(ex)
        assert row["clicks"] == n_clicks and row["orders"] == n_orders
        assert row["ctr"] == pytest.approx(n_clicks / len(ex), rel=1e-12)
        assert row["cvr"] == pytest.approx(n_orders / n_clicks, rel=1e-12)
        assert row["exposure_rate"] == pytest.approx(len(ex) / row["candidates"], rel=1e-12)
        assert row["order_rate"] == pytest.approx(n_orders / len(ex), rel=1e-12)
    total = out.loc["all"]
    assert total["users"] == req["user_id"].nunique()
    for col in ("requests", "candidates", "exposures", "clicks", "orders"):
        assert total[col] == out.loc[["control", "treatment"], col].sum()


def test_log_funnel_without_candidates_and_one_bucket():
    logs = make_logs(2, with_candidates=False, buckets=("only",))
    out = log_funnel(logs, join_samples(logs).samples)
    assert list(out.index) == ["only"]
    assert "candidates" not in out.columns and "exposure_rate" not in out.columns
    assert out.loc["only", "requests"] == len(logs.requests)


# ----------------------------------------------------------------------------- recall funnel


def _bruteforce(cands: pd.DataFrame, logs, samples: pd.DataFrame, ks, top_ns, n_items: int) -> dict:
    rank = {(r, i): k for r, i, k in cands[["request_id", "item_id", "rank"]].itertuples(index=False)}
    req_day = dict(zip(logs.requests["request_id"], day_index(logs.requests["ts"].to_numpy(), logs.tz), strict=True))
    cand_days = {req_day[r] for r in cands["request_id"]}
    window = {r for r, d in req_day.items() if min(cand_days) <= d <= max(cand_days)}
    out = {"n_requests": len(window)}
    for label in ("click", "order"):
        targets = {(r, i) for r, i, y in samples[["request_id", "item_id", label]].itertuples(index=False)
                   if y == 1 and r in window}
        out[f"n_{label}_targets"] = len(targets)
        out[f"hitrate_{label}"] = {k: sum(rank.get(t, np.inf) <= k for t in targets) / len(targets) for k in ks}
        if label == "click":
            out["mean_hit_position"] = {}
            for k in ks:
                hit = [rank[t] for t in targets if rank.get(t, np.inf) <= k]
                out["mean_hit_position"][k] = float(np.mean(hit)) if hit else None
    out["coverage"] = {k: len({i for (r, i), q in rank.items() if q <= k}) / n_items for k in ks}
    online = logs.candidates
    out["top_n_share"] = {}
    for n in top_ns:
        top = [(r, i) for r, i, p in online[["request_id", "item_id", "rank_pos"]].itertuples(index=False)
               if p <= n and r in window]
        out["top_n_share"][n] = sum(t in rank for t in top) / len(top)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_recall_funnel_matches_bruteforce(seed):
    logs = make_logs(seed)
    samples = join_samples(logs).samples
    cands = recall_candidates(logs, seed + 100)
    ks, top_ns = (1, 3, 10, 50), (2, 5)
    got = recall_funnel(cands, logs, samples, ks=ks, top_ns=top_ns)
    ref = _bruteforce(cands, logs, samples, ks, top_ns, n_items=40)
    assert got["label"] == "rand"
    assert got["n_requests"] == ref["n_requests"]
    assert got["requests_with_candidates"] == cands["request_id"].nunique()
    assert got["catalogue_size"] == 40
    for key in ("n_click_targets", "n_order_targets"):
        assert got[key] == ref[key]
    for key in ("hitrate_click", "hitrate_order", "coverage", "top_n_share"):
        assert set(got[key]) == set(ref[key]), key
        for k, v in ref[key].items():
            assert got[key][k] == pytest.approx(v, rel=1e-12, abs=1e-15), (key, k)
    for k, v in ref["mean_hit_position"].items():
        if v is None:
            assert got["mean_hit_position"][k] is None
        else:
            assert got["mean_hit_position"][k] == pytest.approx(v, rel=1e-12)
    # Invariants: hitrate non-decreasing in K and within [0, 1].
    hr = [got["hitrate_click"][k] for k in ks]
    assert all(0 <= a <= b <= 1 for a, b in itertools.pairwise(hr))


def test_recall_funnel_hand_case():
    logs = make_logs(7, n_requests=20)
    samples = join_samples(logs).samples
    clicked = samples.loc[samples["click"] == 1, ["request_id", "item_id"]]
    # A list that puts every clicked item of every request at rank 1 or 2 (2 with a decoy first).
    first = clicked.drop_duplicates("request_id")
    rest = clicked.loc[~clicked.index.isin(first.index)]
    cands = pd.concat([
        first.assign(rank=1),
        rest.assign(rank=rest.groupby("request_id").cumcount() + 2),
    ], ignore_index=True)
    cands["source"] = "perfect"
    got = recall_funnel(cands, logs, samples, ks=(1, 100), top_ns=(1,))
    window_days = day_index(logs.requests.set_index("request_id").loc[cands["request_id"].unique(), "ts"].to_numpy(),
                            logs.tz)
    all_days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    in_window = clicked["request_id"].map(
        pd.Series((all_days >= window_days.min()) & (all_days <= window_days.max()),
                  index=logs.requests["request_id"]))
    assert got["hitrate_click"][100] == pytest.approx(1.0)
    assert got["hitrate_click"][1] == pytest.approx(len(first) / int(in_window.sum()))
    assert got["mean_hit_position"][1] == 1.0


def test_recall_funnel_without_logged_candidates_has_no_top_n_share():
    logs = make_logs(4, with_candidates=False)
    cands = recall_candidates(logs, 9)
    got = recall_funnel(cands, logs, join_samples(logs).samples, ks=(5,))
    assert got["top_n_share"] == {}
    assert set(got["hitrate_click"]) == {5}


def test_recall_funnel_label_defaults():
    logs = make_logs(5)
    samples = join_samples(logs).samples
    cands = recall_candidates(logs, 3)
    assert recall_funnel(cands, logs, samples, ks=(5,), label="mine")["label"] == "mine"
    mixed = cands.assign(source=np.where(np.arange(len(cands)) % 2, "a", "b"))
    assert recall_funnel(mixed, logs, samples, ks=(5,))["label"] == "candidates"
    assert recall_funnel(cands.drop(columns=["source"]), logs, samples, ks=(5,))["label"] == "candidates"


@pytest.mark.parametrize(("ks", "top_ns", "bad"), [((0, 50), (10,), "ks must be an int in \\[1, inf\\)\\. Got 0"),
                                                   ((50,), (0,), "top_ns must be an int in \\[1, inf\\)\\. Got 0"),
                                                   ((-3,), (10,), "ks must be an int in \\[1, inf\\)\\. Got -3")])
def test_recall_funnel_rejects_k_below_one(ks, top_ns, bad):
    logs = make_logs(0)
    samples = join_samples(logs).samples
    with pytest.raises(ValueError, match=rf"{bad} instead"):
        recall_funnel(recall_candidates(logs, 0), logs, samples, ks=ks, top_ns=top_ns)


def test_recall_funnel_rejects_unknown_requests():
    logs = make_logs(0)
    samples = join_samples(logs).samples
    cands = recall_candidates(logs, 0)
    cands.loc[3, "request_id"] = 999_999
    with pytest.raises(ValueError, match=r"1 row\(s\) have a request_id that is not in the logs.*999999"):
        recall_funnel(cands, logs, samples, ks=(5,))


def test_recall_funnel_rejects_empty_candidates():
    logs = make_logs(0)
    empty = recall_candidates(logs, 0).iloc[:0]
    with pytest.raises(ValueError, match="candidates 'x' must have at least one row"):
        recall_funnel(empty, logs, join_samples(logs).samples, ks=(5,), label="x")


def test_recall_funnel_rejects_duplicate_pairs_and_bad_ranks():
    logs = make_logs(0)
    samples = join_samples(logs).samples
    cands = recall_candidates(logs, 0)
    dup = pd.concat([cands, cands.iloc[[5]]], ignore_index=True)
    rid, iid = cands.iloc[5][["request_id", "item_id"]]
    with pytest.raises(ValueError, match=rf"one row per \(request_id, item_id\)\. Got 1 duplicate\(s\), "
                                         rf"e\.g\. request_id {rid}, item_id {iid}"):
        recall_funnel(dup, logs, samples, ks=(5,))
    with pytest.raises(ValueError, match=r"candidates.rank must hold ints >= 1\. Got dtype float64"):
        recall_funnel(cands.assign(rank=cands["rank"] + 0.5), logs, samples, ks=(5,))
    with pytest.raises(ValueError, match=r"minimum 0 instead"):
        recall_funnel(cands.assign(rank=cands["rank"] - 1), logs, samples, ks=(5,))
