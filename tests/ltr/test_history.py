"""ltr.logs.UserHistory and events_with_users against slow loop references."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.logs import UserHistory, events_with_users, read_logs

ROOT = Path(__file__).resolve().parents[2]


def _reference(users, times, items, queries, before, max_len):
    out_items, out_counts = [], []
    for u, t in zip(queries, before, strict=True):
        rows = sorted((times[i], items[i]) for i in range(len(users)) if users[i] == u and times[i] < t)
        last = [item for _, item in rows[-max_len:]]
        out_counts.append(len(last))
        out_items.append([-1] * (max_len - len(last)) + last)
    return np.array(out_items, dtype=np.int64).reshape(len(queries), max_len), np.array(out_counts)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("id_kind", ["int", "str"])
def test_last_before_matches_loop(seed, id_kind):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    users = rng.integers(0, 20, n)
    times = rng.integers(0, 50, n)  # many ties in time
    items = rng.integers(0, 40, n)
    queries = rng.integers(0, 25, 80)  # some users have no events
    before = rng.integers(-5, 60, 80)
    if id_kind == "str":
        users = np.array([f"u{u}" for u in users], dtype=object)
        queries = np.array([f"u{u}" for u in queries], dtype=object)
    max_len = int(rng.integers(1, 6))
    history = UserHistory(users, times, items)
    got_items, got_times, counts = history.last_before(queries, before, max_len)
    ref_items, ref_counts = _reference(list(users), times, items, list(queries), before, max_len)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(got_items, ref_items)
    assert np.all(got_times[got_items == -1] == np.iinfo(np.int64).min)
    assert np.all(got_times[:, -1][counts > 0] < before[counts > 0])

    # the index does not depend on row order, and round-trips through plain arrays
    perm = rng.permutation(n)
    shuffled = UserHistory(users[perm], times[perm], items[perm])
    np.testing.assert_array_equal(shuffled.last_before(queries, before, max_len)[0], got_items)
    back = UserHistory.from_state(*history.to_state())
    np.testing.assert_array_equal(back.last_before(queries, before, max_len)[0], got_items)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", ["int", "str"])
def test_user_codes_equal_a_pandas_index(seed, kind):
    rng = np.random.default_rng(seed)
    users = rng.integers(-50, 50, 300)
    query = np.append(rng.integers(-80, 80, 60), [users.min(), users.max()])
    if kind == "str":
        users, query = users.astype(str).astype(object), query.astype(str).astype(object)
    history = UserHistory(users, rng.integers(0, 100, 300), rng.integers(0, 9, 300))
    expected = pd.Index(pd.unique(np.sort(users))).get_indexer(query)
    np.testing.assert_array_equal(history.user_codes(query), expected)
    np.testing.assert_array_equal(history.user_levels[expected[expected >= 0]], query[expected >= 0])


def test_last_before_rejects_bad_length():
    with pytest.raises(ValueError, match=r"max_len must be an int in \[1, inf\)\. Got 0 instead\."):
        UserHistory([1], [1], [1]).last_before([1], [2], 0)
    with pytest.raises(ValueError, match="same length"):
        UserHistory([1, 2], [1], [1])


def test_events_with_users_attaches_the_request_user():
    logs = read_logs(ROOT / "fixtures" / "world")
    clicks = events_with_users(logs, "clicks")
    owner = dict(zip(logs.requests["request_id"], logs.requests["user_id"], strict=True))
    assert len(clicks) == len(logs.clicks)
    assert clicks["user_id"].tolist() == [owner[r] for r in logs.clicks["request_id"]]
    with pytest.raises(ValueError, match=r"table must be one of \['clicks', 'exposures'\]\. Got 'orders' instead\."):
        events_with_users(logs, "orders")
