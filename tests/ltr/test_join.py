"""join_samples against a slow, obviously-correct reference join on random logs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.logs import from_frames, join_samples, parse_day

WINDOW_DAYS = 0.01  # 864 s, small enough that some orders fall outside it
T0 = parse_day("2026-01-05") * 86_400


def random_logs(seed: int, with_candidates: bool, with_user_orders: bool):
    rng = np.random.default_rng(seed)
    n_req = int(rng.integers(5, 40))
    requests = pd.DataFrame({"request_id": np.arange(1, n_req + 1), "ts": T0 + np.sort(rng.integers(0, 5000, n_req)),
                             "user_id": rng.integers(1, 6, n_req)})
    n_exp = int(rng.integers(1, 80))
    exp_req = rng.integers(1, n_req + 1, n_exp)
    exposures = pd.DataFrame({"request_id": exp_req, "item_id": rng.integers(1, 9, n_exp),
                              "ts": (requests.set_index("request_id").loc[exp_req, "ts"].to_numpy()
                                     + rng.integers(0, 3, n_exp)),
                              "position": rng.integers(1, 6, n_exp)})
    first_ts = exposures.groupby(["request_id", "item_id"])["ts"].min()
    n_click = int(rng.integers(1, 40))
    pick = rng.integers(0, len(first_ts), n_click)
    keys = first_ts.index[pick]
    # Unique click timestamps keep "the latest click" unambiguous for the reference.
    offsets = rng.permutation(100_000)[:n_click] + 1
    clicks = pd.DataFrame({"request_id": keys.get_level_values(0), "item_id": keys.get_level_values(1),
                           "ts": first_ts.to_numpy()[pick] + offsets})
    n_orphan = int(rng.integers(0, 5))
    orphan_req = rng.integers(1, n_req + 1, n_orphan)
    orphans = pd.DataFrame({"request_id": orphan_req, "item_id": rng.integers(20, 25, n_orphan),
                            "ts": T0 + 200_000 + np.arange(n_orphan)})
    clicks = pd.concat([clicks, orphans], ignore_index=True)
    n_ord = int(rng.integers(1, 30))
    src = clicks.sample(n=n_ord, replace=True, random_state=seed).reset_index(drop=True)
    user_of = requests.set_index("request_id")["user_id"]
    orders = pd.DataFrame({
        "request_id": pd.array(src["request_id"].to_numpy(), dtype="Int64"),
        "user_id": user_of.loc[src["request_id"]].to_numpy(),
        "item_id": np.where(rng.random(n_ord) < 0.8, src["item_id"], rng.integers(1, 9, n_ord)),
        "ts": src["ts"].to_numpy() + rng.integers(0, 1500, n_ord),
    })
    drop = rng.random(n_ord) < 0.5
    orders.loc[drop, "request_id"] = pd.NA
    if not with_user_orders:
        orders = orders.loc[~drop].drop(columns="user_id").reset_index(drop=True)
    candidates = None
    if with_candidates:
        uniq = exposures[["request_id", "item_id"]].drop_duplicates()
        keep = uniq.sample(frac=0.8, random_state=seed)
        extra = pd.DataFrame({"request_id": rng.integers(1, n_req + 1, 10), "item_id": rng.integers(30, 40, 10)})
        candidates = pd.concat([keep, extra]).drop_duplicates(["request_id", "item_id"]).reset_index(drop=True)
        candidates["rank_pos"] = np.arange(len(candidates)) % 7 + 1
    # Real attributes are incomplete: some items lack a category, some items and users lack a row.
    item_ids = np.arange(1, 40)
    item_ids = item_ids[rng.random(len(item_ids)) < 0.8]
    items = pd.DataFrame({"item_id": item_ids,
                          "category": np.where(rng.random(len(item_ids)) < 0.3, None,
                                               np.char.add("c", (item_ids % 3).astype(str)))})
    users = pd.DataFrame({"user_id": [1] + [u for u in range(2, 6) if rng.random() < 0.7]})
    return from_frames(requests=requests, exposures=exposures, clicks=clicks, orders=orders, candidates=candidates,
                       items=items, users=users)


def reference_join(logs, window_days):
    """Row-by-row join with plain Python containers."""
    exp = logs.exposures.reset_index(drop=True)
    order = sorted(range(len(exp)), key=lambda i: (exp.ts[i], exp.position[i], i))
    seen, kept, dup = set(), [], 0
    for i in order:
        key = (exp.request_id[i], exp.item_id[i])
        if key in seen:
            dup += 1
            continue
        seen.add(key)
        kept.append(key)
    no_cand = 0
    if logs.candidates is not None:
        cand = set(zip(logs.candidates.request_id, logs.candidates.item_id, strict=True))
        no_cand = sum(k not in cand for k in kept)
        kept = [k for k in kept if k in cand]
    kept_set = set(kept)
    user_of = dict(zip(logs.requests.request_id, logs.requests.user_id, strict=True))
    clicks = logs.clicks
    matched_clicks = [(r, i, t) for r, i, t in zip(clicks.request_id, clicks.item_id, clicks.ts, strict=True)
                      if (r, i) in kept_set]
    clicked = {(r, i) for r, i, _ in matched_clicks}
    by_req = by_click = 0
    ordered = set()
    for _, row in logs.orders.iterrows():
        rid = row.get("request_id", pd.NA)
        if not pd.isna(rid) and (int(rid), row.item_id) in kept_set:
            by_req += 1
            ordered.add((int(rid), row.item_id))
            continue
        if "user_id" in row and not pd.isna(row["user_id"]):
            user = row["user_id"]
        else:
            user = None if pd.isna(rid) else user_of.get(int(rid))
        best = None
        for r, i, t in matched_clicks:
            in_window = t <= row.ts and row.ts - t <= window_days * 86400
            if user_of[r] == user and i == row.item_id and in_window and (best is None or t > best[2]):
                best = (r, i, t)
        if best is not None:
            by_click += 1
            ordered.add(best[:2])
    labels = {k: (int(k in clicked), int(k in ordered)) for k in kept}
    category = dict(zip(logs.items.item_id, logs.items.category, strict=True))
    users = set(logs.users.user_id)
    counts = dict(samples_item_not_in_items=sum(i not in category for _, i in kept),
                  samples_item_without_category=sum(i in category and pd.isna(category[i]) for _, i in kept),
                  samples_user_not_in_users=sum(user_of[r] not in users for r, _ in kept),
                  exposures_duplicate=dup, exposures_without_candidate=no_cand, exposures_kept=len(kept),
                  clicks_matched=len(matched_clicks), clicks_unmatched=len(logs.clicks) - len(matched_clicks),
                  orders_by_request=by_req, orders_by_click=by_click,
                  orders_unattributed=len(logs.orders) - by_req - by_click)
    return labels, counts


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("with_candidates", [False, True])
def test_join_matches_reference_and_report_sums(seed, with_candidates):
    logs = random_logs(seed, with_candidates, with_user_orders=seed % 2 == 0)
    result = join_samples(logs, attribution_window_days=WINDOW_DAYS)
    labels, counts = reference_join(logs, WINDOW_DAYS)
    samples = result.samples
    got = {(r, i): (c, o) for r, i, c, o in zip(samples.request_id, samples.item_id, samples.click, samples.order,
                                               strict=True)}
    assert got == labels
    report = result.report
    for name, value in counts.items():
        assert getattr(report, name) == value, name
    assert report.exposures_in == len(logs.exposures) == (
        report.exposures_kept + report.exposures_duplicate + report.exposures_without_candidate)
    assert report.clicks_in == len(logs.clicks) == report.clicks_matched + report.clicks_unmatched
    assert report.orders_in == len(logs.orders) == (
        report.orders_by_request + report.orders_by_click + report.orders_unattributed)
    if with_candidates:
        assert report.candidates_in == len(logs.candidates) == report.candidates_exposed + report.candidates_not_exposed
    assert report.table()["rows"].ge(0).all()


def test_samples_carry_request_and_candidate_columns():
    logs = random_logs(3, with_candidates=True, with_user_orders=True)
    samples = join_samples(logs).samples
    for col in ("request_id", "user_id", "item_id", "ts", "day", "position", "request_ts", "rank_pos", "click",
                "order"):
        assert col in samples.columns
    assert samples["ts"].is_monotonic_increasing
    assert samples.duplicated(["request_id", "item_id"]).sum() == 0


def test_bad_window_is_rejected():
    logs = random_logs(0, False, True)
    with pytest.raises(ValueError, match=r"attribution_window_days must be a float in \[0, inf\)\. Got -1 instead\."):
        join_samples(logs, attribution_window_days=-1)
