"""Item-CF recall against a slow reference (loops over users, pairs and requests)."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from ltr.logs import SECONDS_PER_DAY, day_index, from_frames
from recall.itemcf import ItemCFRecall
from tests.recall.worlds import DAY0, make_logs


def _user_clicks(logs):
    user = logs.requests.set_index("request_id")["user_id"]
    return pd.DataFrame({"user_id": user.reindex(logs.clicks["request_id"]).to_numpy(),
                         "item_id": logs.clicks["item_id"].to_numpy(), "ts": logs.clicks["ts"].to_numpy()})


def reference_similarity(logs, train_end, p):
    """Brute force: dict (i, j) -> sim over item ids, plus ordered item ids."""
    clicks = _user_clicks(logs)
    clicks = clicks[day_index(clicks["ts"].to_numpy()) <= train_end]
    end_ts = (train_end + 1) * SECONDS_PER_DAY
    best = {}
    users_of = defaultdict(set)
    for u, grp in clicks.groupby("user_id"):
        seq = sorted(zip(grp["ts"], grp["item_id"], strict=True))
        iuf = 1.0 / math.log(2 + len(seq)) if p["iuf"] else 1.0
        for _, it in seq:
            users_of[it].add(u)
        for b in range(len(seq)):
            for a in range(b):
                (ta, ia), (tb, ib) = seq[a], seq[b]
                too_far = (p["window_clicks"] and b - a > p["window_clicks"]) or (
                    p["window_days"] and tb - ta > p["window_days"] * SECONDS_PER_DAY)
                if too_far or ia == ib:
                    continue
                w = iuf
                if p["half_life_days"] > 0:
                    w *= 0.5 ** ((end_ts - tb) / SECONDS_PER_DAY / p["half_life_days"])
                key = (u, min(ia, ib), max(ia, ib))
                best[key] = max(best.get(key, 0.0), w)
    co = defaultdict(float)
    for (_, i, j), w in best.items():
        co[(i, j)] += w
        co[(j, i)] += w
    sim = {}
    for (i, j), c in co.items():
        sim[(i, j)] = c / (len(users_of[i]) ** p["alpha"] * len(users_of[j]) ** (1 - p["alpha"]))
    rows = defaultdict(list)
    for (i, j), s in sim.items():
        rows[i].append((-s, j))
    kept = {}
    for i, lst in rows.items():
        for neg, j in sorted(lst)[: p["neighbours"]]:
            kept[(i, j)] = -neg
    popularity = clicks["item_id"].value_counts()
    return kept, popularity


def reference_retrieve(model, logs, requests, k, train_end):
    p = model.get_params()
    sim, pop = reference_similarity(logs, train_end, p)
    pop_order = sorted(pop.items(), key=lambda t: (-t[1], t[0]))
    clicks = _user_clicks(logs)
    exposed = logs.exposures.merge(logs.requests[["request_id", "user_id"]], on="request_id")
    rows = []
    for rid, uid, ts in requests[["request_id", "user_id", "ts"]].itertuples(index=False):
        hist = clicks[(clicks["user_id"] == uid) & (clicks["ts"] < ts)].sort_values("ts").tail(p["history_len"])
        scores = defaultdict(float)
        for h, hts in zip(hist["item_id"], hist["ts"], strict=True):
            half = p["history_half_life_days"]
            w = 0.5 ** ((ts - hts) / SECONDS_PER_DAY / half) if half > 0 else 1.0
            for (i, j), s in sim.items():
                if i == h:
                    scores[j] += w * s
            scores[h] += p["repeat_weight"] * w
        seen = set()
        if p["exclude_seen"] in ("clicks", "exposures"):
            seen = set(clicks.loc[(clicks["user_id"] == uid) & (clicks["ts"] < ts), "item_id"])
        if p["exclude_seen"] == "exposures":
            seen |= set(exposed.loc[(exposed["user_id"] == uid) & (exposed["ts"] < ts), "item_id"])
        scores = {j: s for j, s in scores.items() if s > 0 and j not in seen}
        if p["fill_popular"] and len(scores) < k:
            for j, c in pop_order:
                if j not in scores and j not in seen:
                    scores[j] = -1.0 / (1.0 + c)
        for rank, (j, s) in enumerate(sorted(scores.items(), key=lambda t: (-t[1], t[0]))[:k], start=1):
            rows.append((rid, j, s, rank))
    return pd.DataFrame(rows, columns=["request_id", "item_id", "score", "rank"])


PARAMS = [
    {},
    {"alpha": 0.5, "window_days": 0.5, "window_clicks": 2, "half_life_days": 0.0, "iuf": False},
    {"alpha": 0.0, "neighbours": 3, "half_life_days": 1.5, "history_len": 3, "history_half_life_days": 0.0,
     "exclude_seen": "none", "repeat_weight": 1.0},
    {"alpha": 0.7, "window_days": 14.0, "window_clicks": 50, "half_life_days": 7.0, "iuf": True,
     "history_half_life_days": 7.0, "exclude_seen": "exposures", "fill_popular": False},
    {"half_life_days": 2.0, "exclude_seen": "exposures"},
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("params", PARAMS)
def test_similarity_matches_reference(seed, params):
    logs = make_logs(seed)
    train_end = DAY0 + 3
    model = ItemCFRecall(**params).fit(logs, train_end)
    ref, _ = reference_similarity(logs, train_end, model.get_params())
    sim = model.similarity_.tocoo()
    got = {(model.item_ids_[i], model.item_ids_[j]): v for i, j, v in zip(sim.row, sim.col, sim.data, strict=True)}
    assert set(got) == set(ref)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-12)
    assert (np.diff(model.similarity_.indptr) <= model.neighbours).all()


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("k", [1, 5, 40])
def test_retrieve_matches_reference(seed, params, k):
    logs = make_logs(seed, tie_ts=False)
    train_end = DAY0 + 2
    requests = logs.requests[day_index(logs.requests["ts"].to_numpy()) > train_end]
    model = ItemCFRecall(**params).fit(logs, train_end)
    got = model.retrieve(requests, logs, k)
    ref = reference_retrieve(model, logs, requests, k, train_end)
    assert (got["source"] == "itemcf").all()
    np.testing.assert_allclose(got["score"].to_numpy(), ref["score"].to_numpy(), rtol=1e-10)
    np.testing.assert_array_equal(got["request_id"].to_numpy(), ref["request_id"].to_numpy())
    # Scores equal in exact arithmetic may differ in the last bit (summation order), so items
    # are compared as sets per (request, score); a tie cut at k may keep either item.
    assert _tied_sets(got) == _tied_sets(ref)


def _tied_sets(frame):
    key = frame.assign(score=frame["score"].round(9))
    last = key.groupby("request_id")["score"].transform("min")
    key = key.loc[key["score"] > last]
    return {name: set(group["item_id"]) for name, group in key.groupby(["request_id", "score"])}


def test_hand_computed_cosine():
    # Users 0 and 1 both click 1 then 2; user 1 also clicks 3. With no decay and no IUF:
    # co(1,2)=2, co(1,3)=co(2,3)=1; n1=n2=2, n3=1; cosine sim(1,2)=2/2=1, sim(1,3)=1/sqrt(2).
    t = DAY0 * SECONDS_PER_DAY
    requests = pd.DataFrame({"request_id": [1, 2, 3], "ts": [t, t + 10, t + 20], "user_id": [0, 1, 1]})
    exposures = pd.DataFrame({"request_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 2, 3],
                              "ts": [t, t, t + 10, t + 10, t + 20], "position": [1, 2, 1, 2, 1]})
    clicks = pd.DataFrame({"request_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 2, 3],
                           "ts": [t + 1, t + 2, t + 11, t + 12, t + 21]})
    logs = from_frames(requests=requests, exposures=exposures, clicks=clicks)
    model = ItemCFRecall(alpha=0.5, half_life_days=0.0, iuf=False).fit(logs, DAY0)
    dense = model.similarity_.toarray()
    expected = np.array([[0, 1, 1 / math.sqrt(2)], [1, 0, 1 / math.sqrt(2)], [1 / math.sqrt(2), 1 / math.sqrt(2), 0]])
    np.testing.assert_allclose(dense, expected)


def test_only_training_days_shape_the_similarity():
    logs = make_logs(5)
    train_end = DAY0 + 2
    base = ItemCFRecall().fit(logs, train_end).similarity_
    late = day_index(logs.clicks["ts"].to_numpy()) > train_end
    shuffled = logs.clicks.copy()
    shuffled.loc[late, "item_id"] = np.random.default_rng(0).permutation(shuffled.loc[late, "item_id"].to_numpy())
    other = ItemCFRecall().fit(logs.replace(clicks=shuffled), train_end).similarity_
    assert (base != other).nnz == 0


def test_history_strictly_before_request():
    logs = make_logs(6, tie_ts=False)
    train_end = DAY0 + 2
    model = ItemCFRecall().fit(logs, train_end)
    requests = logs.requests[day_index(logs.requests["ts"].to_numpy()) > train_end]
    full = model.retrieve(requests, logs, 20)
    for pos in (0, 7, len(requests) - 1):
        one = requests.iloc[[pos]]
        # Dropping every click at or after the request's ts changes nothing for it.
        past = logs.replace(clicks=logs.clicks.loc[logs.clicks["ts"] < one["ts"].iloc[0]])
        expected = full.loc[full["request_id"] == one["request_id"].iloc[0]].reset_index(drop=True)
        pd.testing.assert_frame_equal(model.retrieve(one, past, 20), expected)


def test_string_item_ids_and_save_load(tmp_path):
    logs = make_logs(2, str_items=True)
    model = ItemCFRecall().fit(logs, DAY0 + 2)
    out = model.retrieve(logs.requests.tail(20), logs, 10)
    assert out["item_id"].str.startswith("i").all()
    model.save(tmp_path / "m")
    again = ItemCFRecall.load(tmp_path / "m").retrieve(logs.requests.tail(20), logs, 10)
    pd.testing.assert_frame_equal(out, again)


def test_catalogue_is_the_items_of_the_retrieval_logs():
    logs = make_logs(4)
    model = ItemCFRecall().fit(logs, DAY0 + 2)
    requests = logs.requests.tail(30)
    # An item the items table lacks is an item without attributes, still retrieved ...
    partial = logs.replace(items=logs.items.loc[logs.items["item_id"] <= 10])
    pd.testing.assert_frame_equal(model.retrieve(requests, partial, 50), model.retrieve(requests, logs, 50))
    # ... but an item the retrieval logs never show is not in the catalogue.
    small = partial.replace(**{name: getattr(logs, name).loc[getattr(logs, name)["item_id"] <= 10]
                               for name in ("exposures", "clicks")})
    out = model.retrieve(requests, small, 50)
    assert out["item_id"].le(10).all() and len(out)


@pytest.mark.parametrize(("name", "value", "error", "match"), [
    ("alpha", 1.5, ValueError, r"alpha must be a float in \[0\.0, 1\.0\]\. Got 1\.5 instead\."),
    ("window_clicks", -1, ValueError, r"window_clicks must be an int in \[0, inf\)\. Got -1 instead\."),
    ("exclude_seen", True, ValueError, r"exclude_seen must be one of \['clicks', 'exposures', 'none'\]\. Got True"),
    ("neighbours", 2.5, TypeError, r"neighbours must be an int\. Got 2\.5 instead\."),
    ("half_life_days", -1.0, ValueError, r"half_life_days must be a float in \[0\.0, inf\)\. Got -1\.0 instead\."),
    ("iuf", 1, TypeError, r"iuf must be a bool\. Got 1 instead\."),
])
def test_bad_params(name, value, error, match):
    with pytest.raises(error, match=match):
        ItemCFRecall(**{name: value}).fit(make_logs(0), DAY0 + 2)


def test_bad_inputs():
    logs = make_logs(0)
    with pytest.raises(ValueError, match="not fitted"):
        ItemCFRecall().retrieve(logs.requests, logs, 5)
    model = ItemCFRecall().fit(logs, DAY0 + 2)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, inf\)\. Got 0 instead\."):
        model.retrieve(logs.requests, logs, 0)
    with pytest.raises(ValueError, match=r"requests must have columns \['request_id', 'user_id', 'ts'\]\. "
                                         r"Got .* instead \(missing \['ts'\]\)"):
        model.retrieve(logs.requests.drop(columns="ts"), logs, 5)
    with pytest.raises(ValueError, match="clicks on or before train_end_day"):
        ItemCFRecall().fit(logs, DAY0 - 5)
