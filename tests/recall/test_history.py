"""recall._history (users' click histories on ltr.logs.UserHistory) against a loop reference."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recall._history import click_events, extend_history, history_of, split_clicks
from tests.recall.worlds import DAY0, make_logs

MAX_LEN = 4


def reference_last_before(clicks: pd.DataFrame, codes: np.ndarray, user, ts: int, keep_unknown: bool) -> list:
    """The user's clicks strictly before ``ts``: log order, stably sorted by time, the last ones."""
    rows = [(t, c) for u, t, c in zip(clicks["user_id"], clicks["ts"], codes, strict=True)
            if u == user and t < ts and (keep_unknown or c >= 0)]
    rows.sort(key=lambda row: row[0])  # stable: same-second clicks keep the log's order
    codes_kept = [c for _, c in rows][-MAX_LEN:]
    return [-1] * (MAX_LEN - len(codes_kept)) + codes_kept


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("keep_unknown", [False, True])
def test_history_matches_loop_reference(seed, keep_unknown):
    logs = make_logs(seed, tie_ts=True)  # same-second clicks of a user exist
    clicks = click_events(logs)
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, 6, len(clicks))  # -1: an item the caller does not know
    history = history_of(clicks, codes, keep_unknown)
    requests = logs.requests
    got, _, counts = history.last_before(requests["user_id"].to_numpy(), requests["ts"].to_numpy(), MAX_LEN)
    for row, (user, ts) in enumerate(zip(requests["user_id"], requests["ts"], strict=True)):
        want = reference_last_before(clicks, codes, user, ts, keep_unknown)
        assert got[row].tolist() == want
        if not keep_unknown:
            assert counts[row] == sum(c >= 0 for c in want)


def test_same_second_clicks_keep_log_order():
    logs = make_logs(0, tie_ts=True)
    clicks = click_events(logs)
    ties = clicks.duplicated(["user_id", "ts"], keep=False).to_numpy()
    assert ties.any()
    codes = np.arange(len(clicks))[::-1]  # against the log order, so item-code ties would reorder them
    history = history_of(clicks, codes)
    user, ts = clicks.loc[ties, ["user_id", "ts"]].iloc[0]
    got = history.last_before([user], [ts + 1], 50)[0][0]
    same = clicks.index[(clicks["user_id"] == user).to_numpy() & (clicks["ts"] == ts).to_numpy()]
    np.testing.assert_array_equal(got[-len(same):], codes[same])


@pytest.mark.parametrize("train_end", [DAY0, DAY0 + 2, DAY0 + 10])
def test_stored_plus_later_clicks_equal_all_clicks(train_end):
    logs = make_logs(3, tie_ts=True)
    clicks = click_events(logs)
    codes_of = {item: code for code, item in enumerate(sorted(clicks["item_id"].unique()))}
    early, late = split_clicks(logs, train_end)
    assert len(early) + len(late) == len(clicks)
    stored = history_of(early, early["item_id"].map(codes_of).to_numpy())
    both = extend_history(stored, late, late["item_id"].map(codes_of).to_numpy())
    whole = history_of(clicks, clicks["item_id"].map(codes_of).to_numpy())
    for name in ("user", "time", "item"):
        np.testing.assert_array_equal(getattr(both, name), getattr(whole, name))
    np.testing.assert_array_equal(both.user_levels, whole.user_levels)


def test_string_users_and_a_stored_state_extend_alike():
    logs = make_logs(4)
    clicks = click_events(logs)
    clicks["user_id"] = "u" + clicks["user_id"].astype(str)
    early, late = clicks.iloc[: len(clicks) // 2], clicks.iloc[len(clicks) // 2:]
    stored = history_of(early, np.zeros(len(early), dtype=np.int64))
    reloaded = type(stored).from_state(*stored.to_state())  # user levels come back as numpy str
    codes = np.ones(len(late), dtype=np.int64)
    a, b = extend_history(stored, late, codes), extend_history(reloaded, late, codes)
    queries = clicks["user_id"].unique()
    np.testing.assert_array_equal(a.last_before(queries, np.full(len(queries), 10**12), 8)[0],
                                  b.last_before(queries, np.full(len(queries), 10**12), 8)[0])
