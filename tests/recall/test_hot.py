"""Hot-list recall against a slow reference, point-in-time properties, and the acceptance checks."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.logs import SECONDS_PER_DAY, day_index, read_logs
from recall.hot import HotRecall
from recall.itemcf import ItemCFRecall
from tests.recall.worlds import DAY0, make_logs, simulated

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "world"


def reference_heat(model, logs, ts):
    """item_id -> heat for a request at ``ts``, by looping over every event row."""
    p = model.get_params()
    width = 3600 * p["bin_hours"]
    heat = defaultdict(float)
    tables = ((logs.clicks, p["click_weight"]), (logs.exposures, p["exposure_weight"]),
              (logs.orders, p["order_weight"]))
    for table, weight in tables:
        if table is None:
            continue
        for item, event_ts in zip(table["item_id"], table["ts"], strict=True):
            lag = int(ts // width) - 1 - int(event_ts // width)
            if 0 <= lag < p["window_days"] * 24 // p["bin_hours"]:
                age = lag * p["bin_hours"] / 24
                decay = 0.5 ** (age / p["half_life_days"]) if p["half_life_days"] > 0 else 1.0
                heat[item] += weight * decay
    return heat


def reference_retrieve(model, logs, requests, k):
    p = model.get_params()
    overall, category, city_weight = model.weights_
    items = logs.items.sort_values("item_id")
    cat = dict(zip(items["item_id"], items["category"], strict=True))
    city = dict(zip(items["item_id"], items["city"], strict=True))
    user_city = dict(zip(logs.users["user_id"], logs.users["city"], strict=True))
    user_of = dict(zip(logs.requests["request_id"], logs.requests["user_id"], strict=True))
    clicks = logs.clicks.assign(user_id=[user_of[r] for r in logs.clicks["request_id"]])
    rows = []
    for rid, uid, ts in requests[["request_id", "user_id", "ts"]].itertuples(index=False):
        heat = reference_heat(model, logs, ts)
        h = {i: heat.get(i, 0.0) for i in items["item_id"]}
        top_all = max(h.values())
        top_cat, top_city = defaultdict(float), defaultdict(float)
        for i, v in h.items():
            top_cat[cat[i]] = max(top_cat[cat[i]], v)
            top_city[city[i]] = max(top_city[city[i]], v)
        hist = clicks[(clicks["user_id"] == uid) & (clicks["ts"] < ts)].sort_values("ts").tail(p["history_len"])
        pref = defaultdict(float)
        for i in hist["item_id"]:
            pref[cat[i]] += 1.0 / len(hist)
        seen = set()
        if p["exclude_seen"] != "none":
            seen = set(clicks.loc[(clicks["user_id"] == uid) & (clicks["ts"] < ts), "item_id"])
        if p["exclude_seen"] == "exposures":
            exposed = logs.exposures.assign(user_id=[user_of[r] for r in logs.exposures["request_id"]])
            seen |= set(exposed.loc[(exposed["user_id"] == uid) & (exposed["ts"] < ts), "item_id"])
        scores = {}
        for i, v in h.items():
            if i in seen:
                continue
            s = overall * (v / top_all if top_all > 0 else 0.0)
            s += category * pref[cat[i]] * (v / top_cat[cat[i]] if top_cat[cat[i]] > 0 else 0.0)
            if user_city.get(uid) == city[i]:
                s += city_weight * (v / top_city[city[i]] if top_city[city[i]] > 0 else 0.0)
            scores[i] = s
        for rank, (i, s) in enumerate(sorted(scores.items(), key=lambda t: (-t[1], t[0]))[:k], start=1):
            rows.append((rid, i, s, rank))
    return pd.DataFrame(rows, columns=["request_id", "item_id", "score", "rank"])


PARAMS = [
    {},
    {"half_life_days": 0.0, "window_days": 2, "exposure_weight": 0.5, "order_weight": 0.0},
    {"bin_hours": 24, "half_life_days": 3.0, "learn_mix": False},
    {"overall_weight": 0.0, "city_weight": 0.0, "history_len": 2, "exclude_seen": "none"},
    {"category_weight": 0.0, "click_weight": 0.0, "exposure_weight": 1.0, "exclude_seen": "exposures"},
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("k", [1, 7, 100])
def test_retrieve_matches_reference(seed, params, k):
    logs = make_logs(seed, tie_ts=False)
    train_end = DAY0 + 2
    requests = logs.requests.iloc[::7]  # every day, including days before and after train_end
    model = HotRecall(**params).fit(logs, train_end)
    got = model.retrieve(requests, logs, k)
    ref = reference_retrieve(model, logs, requests, k)
    assert (got["source"] == "hot").all()
    pd.testing.assert_frame_equal(got[["request_id", "item_id", "rank"]], ref[["request_id", "item_id", "rank"]],
                                  check_dtype=False)
    np.testing.assert_allclose(got["score"].to_numpy(), ref["score"].to_numpy(), rtol=1e-10, atol=1e-15)


def test_hand_computed_heat():
    logs = make_logs(0)
    model = HotRecall(half_life_days=1.0, window_days=2, bin_hours=24, click_weight=1.0, exposure_weight=0.0,
                      order_weight=0.0).fit(logs, DAY0 + 4)
    day = DAY0 + 3
    clicks_day = day_index(logs.clicks["ts"].to_numpy())
    item = logs.clicks["item_id"].to_numpy()
    # Yesterday counts fully, the day before half, older days not at all.
    expected = (np.bincount(item[clicks_day == day - 1], minlength=31)
                + 0.5 * np.bincount(item[clicks_day == day - 2], minlength=31))[1:]
    ids, heat = model.heat(np.array([day * SECONDS_PER_DAY + 3600]), logs)
    np.testing.assert_array_equal(ids, np.arange(1, 31))
    np.testing.assert_allclose(heat[0], expected)


def test_heat_ignores_the_request_day_and_later():
    logs = make_logs(3)
    model = HotRecall(exposure_weight=0.3).fit(logs, DAY0 + 4)
    day = DAY0 + 2
    late = day_index(logs.clicks["ts"].to_numpy()) >= day
    clicks = logs.clicks.copy()
    clicks.loc[late, "item_id"] = np.random.default_rng(1).permutation(clicks.loc[late, "item_id"].to_numpy())
    late_exp = day_index(logs.exposures["ts"].to_numpy()) >= day
    changed = logs.replace(clicks=clicks, exposures=logs.exposures.loc[~late_exp])
    start = np.array([day * SECONDS_PER_DAY])
    a = HotRecall(exposure_weight=0.3).fit(changed, DAY0 + 4).heat(start, changed)[1]
    np.testing.assert_array_equal(model.heat(start, logs)[1], a)


def test_stored_daily_tables_serve_later_days():
    logs = make_logs(4)
    days = np.arange(DAY0, DAY0 + 6) * SECONDS_PER_DAY + 5000
    early = HotRecall().fit(logs, DAY0 + 1)
    late = HotRecall().fit(logs, DAY0 + 4)
    np.testing.assert_allclose(early.heat(days, logs)[1], late.heat(days, logs)[1])
    # Training days come from the stored table: retrieval logs holding only later rows give the same heat.
    after = day_index(logs.clicks["ts"].to_numpy()) > DAY0 + 1
    recent = logs.replace(clicks=logs.clicks.loc[after],
                          exposures=logs.exposures.loc[day_index(logs.exposures["ts"].to_numpy()) > DAY0 + 1])
    np.testing.assert_allclose(early.heat(days, recent)[1], early.heat(days, logs)[1])


def test_cold_user_gets_overall_and_city_list():
    logs = make_logs(5)
    model = HotRecall().fit(logs, DAY0 + 4)
    ts = (DAY0 + 3) * SECONDS_PER_DAY + 100
    cold = pd.DataFrame({"request_id": [10_001, 10_002], "user_id": [999, 0], "ts": [ts, ts]})
    out = model.retrieve(cold, logs, 12)
    assert out.groupby("request_id").size().tolist() == [12, 12]
    _, heat = model.heat(np.array([ts]), logs)
    unknown = out.loc[out["request_id"] == 10_001]
    # A user with no profile and no clicks: the overall list, in heat order.
    expected = np.lexsort((np.arange(30), -heat[0]))[:12] + 1
    np.testing.assert_array_equal(unknown["item_id"].to_numpy(), expected)


def test_save_load_and_errors(tmp_path):
    logs = make_logs(6)
    model = HotRecall().fit(logs, DAY0 + 3)
    model.save(tmp_path / "h")
    again = HotRecall.load(tmp_path / "h")
    pd.testing.assert_frame_equal(model.retrieve(logs.requests, logs, 9), again.retrieve(logs.requests, logs, 9))
    with pytest.raises(ValueError, match=r"window_days must be an int in \[1, inf\)\. Got 0 instead\."):
        HotRecall(window_days=0).fit(logs, DAY0)
    with pytest.raises(ValueError, match="must not all be 0"):
        HotRecall(click_weight=0.0, order_weight=0.0).fit(logs, DAY0)
    with pytest.raises(ValueError, match="not fitted"):
        HotRecall().retrieve(logs.requests, logs, 3)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, inf\)\. Got -1 instead\."):
        model.retrieve(logs.requests, logs, -1)


def test_without_items_table():
    logs = make_logs(7)
    bare = logs.replace(items=None, users=None)
    model = HotRecall().fit(bare, DAY0 + 3)
    out = model.retrieve(bare.requests.tail(10), bare, 5)
    assert len(out) == 50 and out["item_id"].isin(bare.clicks["item_id"]).all()


# ----------------------------------------------------------------------------- acceptance


@pytest.fixture(scope="module")
def fixture_world():
    logs = read_logs(FIXTURE)
    day = day_index(logs.requests["ts"].to_numpy())
    train_end = int(day.max()) - 2
    test = logs.requests.loc[day > train_end]
    targets = logs.clicks.loc[logs.clicks["request_id"].isin(test["request_id"]), ["request_id", "item_id"]]
    targets = targets.drop_duplicates()
    user_of = logs.requests.set_index("request_id")["user_id"]
    click_user = user_of.reindex(logs.clicks["request_id"].to_numpy()).to_numpy()
    first_click = pd.Series(logs.clicks["ts"].to_numpy()).groupby(click_user).min()
    t_ts = logs.requests.set_index("request_id")["ts"].reindex(targets["request_id"]).to_numpy()
    t_user = user_of.reindex(targets["request_id"]).to_numpy()
    warm = first_click.reindex(t_user).to_numpy(float, na_value=np.inf) < t_ts
    return logs, train_end, test, targets, warm


def _hitrate(cands, targets, k):
    hit = targets.merge(cands.loc[cands["rank"] <= k, ["request_id", "item_id"]], how="left", indicator=True)
    return float((hit["_merge"] == "both").mean())


def test_itemcf_beats_hot_for_users_with_history(fixture_world):
    logs, train_end, test, targets, warm = fixture_world
    # Users of the simulated fixture click the same items again, so nothing is excluded here.
    cf = ItemCFRecall(exclude_seen="none").fit(logs, train_end).retrieve(test, logs, 100)
    hot = HotRecall(exclude_seen="none").fit(logs, train_end).retrieve(test, logs, 100)
    assert _hitrate(cf, targets[warm], 100) > _hitrate(hot, targets[warm], 100)


def test_hot_serves_cold_users(fixture_world):
    logs, train_end, test, targets, warm = fixture_world
    cold_requests = test.loc[test["request_id"].isin(targets.loc[~warm, "request_id"])]
    assert len(cold_requests) > 10
    hot = HotRecall().fit(logs, train_end).retrieve(cold_requests, logs, 100)
    assert (hot.groupby("request_id").size() == 100).all()
    assert hot["request_id"].nunique() == len(cold_requests)
    # Far better than a random list of 100 out of 3000 items (hitrate 1/30).
    assert _hitrate(hot, targets[~warm], 100) > 5 * 100 / len(logs.items)


def test_learned_mix_and_given_mix():
    """learn_mix picks the mix whose lists find most clicks of the last training day; users of
    simulated worlds follow their categories, so the category list gets weight. Without it the
    given weights are used as they are."""
    logs, train_end, _ = simulated(seed=21, users=800, items=600, days=5, candidates_per_request=30)
    learned = HotRecall().fit(logs, train_end)
    assert learned.weights_[1] > 0
    given = HotRecall(learn_mix=False, overall_weight=0.5, category_weight=0.0, city_weight=0.0)
    assert given.fit(logs, train_end).weights_ == (0.5, 0.0, 0.0)
