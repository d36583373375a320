"""DailyStats window counts against a brute-force loop, plus storage and errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from ltr.features._pit_stats import COUNT_NAMES, DailyStats


def _random_samples(rng: np.random.Generator, n: int, string_keys: bool) -> pd.DataFrame:
    users = rng.integers(0, 12, n)
    cats = rng.integers(0, 4, n)
    frame = pd.DataFrame(
        {
            "user_id": users,
            "category": np.array([f"c{c}" for c in cats], dtype=object) if string_keys else cats.astype(np.int64),
            "day": rng.integers(100, 112, n).astype(np.int32),
            "click": (rng.random(n) < 0.3).astype(np.int8),
        }
    )
    frame["order"] = ((frame["click"] == 1) & (rng.random(n) < 0.4)).astype(np.int8)
    frame["ts"] = frame["day"].astype(np.int64) * 86400 + rng.integers(0, 86400, n)
    # Missing keys are not counted.
    if string_keys:
        frame.loc[rng.random(n) < 0.05, "category"] = None
    return frame


def _brute(samples, key_columns, time_column, q_keys, q_end, window, span):
    """Obviously-correct reference: one query at a time, filter the rows, add up."""
    out = {name: np.zeros(len(q_end), dtype=np.int64) for name in COUNT_NAMES}
    t = samples[time_column].to_numpy().astype(np.int64)
    for i in range(len(q_end)):
        match = (t >= q_end[i] - window * span) & (t < q_end[i])
        for c in key_columns:
            value = q_keys[c][i]
            column = samples[c]
            match &= column.notna().to_numpy() & (column == value).fillna(False).to_numpy(dtype=bool)
        out["exposures"][i] = int(match.sum())
        out["clicks"][i] = int(samples["click"].to_numpy()[match].sum())
        out["orders"][i] = int(samples["order"].to_numpy()[match].sum())
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("key_columns", [("user_id",), ("category",), ("user_id", "category")])
@pytest.mark.parametrize("string_keys", [False, True])
def test_window_counts_match_brute_force(seed, key_columns, string_keys):
    rng = np.random.default_rng(seed)
    samples = _random_samples(rng, 300, string_keys)
    stats = DailyStats.from_samples(samples, key_columns)
    n_q = 60
    # Queries draw keys from the data and from outside it (unseen ids, missing).
    q = samples.sample(n_q, random_state=seed, replace=True).reset_index(drop=True)
    q.loc[:5, "user_id"] = 999
    q_end = rng.integers(95, 118, n_q)
    windows = (1, 3, 7, 30)
    got = stats.window_counts(stats.key_index(q), q_end, windows)
    for w in windows:
        ref = _brute(samples, key_columns, "day", q, q_end, w, 1)
        for name in COUNT_NAMES:
            np.testing.assert_array_equal(got[(w, name)], ref[name], err_msg=f"{w} {name}")


@pytest.mark.parametrize("seed", [3, 4])
def test_second_resolution_windows_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    samples = _random_samples(rng, 250, string_keys=False)
    stats = DailyStats.from_samples(samples, ("user_id",), time_column="ts")
    q = samples.sample(50, random_state=seed).reset_index(drop=True)
    # Exact ts cut-offs, including one equal to an event's ts (must be excluded).
    q_end = q["ts"].to_numpy() - rng.integers(0, 3 * 86400, 50)
    q_end[0] = samples["ts"].iloc[0]
    got = stats.window_counts(stats.key_index(q), q_end, (1, 2), span=86400)
    for w in (1, 2):
        ref = _brute(samples, ("user_id",), "ts", q, q_end, w, 86400)
        for name in COUNT_NAMES:
            np.testing.assert_array_equal(got[(w, name)], ref[name])


def test_hand_computed_case():
    samples = pd.DataFrame(
        {
            "item_id": [7, 7, 7, 8, 7],
            "day": [10, 10, 12, 12, 13],
            "click": [1, 0, 1, 1, 0],
            "order": [1, 0, 0, 0, 0],
        }
    )
    stats = DailyStats.from_samples(samples, ("item_id",))
    q = pd.DataFrame({"item_id": [7, 7, 7, 8, 9]})
    end = np.array([13, 11, 10, 13, 13])
    got = stats.window_counts(stats.key_index(q), end, (1, 3))
    # item 7 before day 13: day 12 (1 exp, 1 clk) in 1d; days 10-12 (3 exp, 2 clk, 1 ord) in 3d.
    assert got[(1, "exposures")].tolist() == [1, 2, 0, 1, 0]
    assert got[(3, "exposures")].tolist() == [3, 2, 0, 1, 0]
    assert got[(3, "clicks")].tolist() == [2, 1, 0, 1, 0]
    assert got[(3, "orders")].tolist() == [1, 1, 0, 0, 0]


def test_rows_on_or_after_end_never_count():
    rng = np.random.default_rng(5)
    samples = _random_samples(rng, 400, string_keys=False)
    d = 106
    before = samples[samples["day"] < d]
    after = samples[samples["day"] >= d].copy()
    after["click"] = 1 - after["click"]
    after["user_id"] = rng.permutation(after["user_id"].to_numpy())
    perturbed = pd.concat([before, after.iloc[::2]])
    q = pd.DataFrame({"user_id": np.arange(12)})
    end = np.full(12, d)
    a = DailyStats.from_samples(samples, ("user_id",))
    b = DailyStats.from_samples(perturbed, ("user_id",))
    ga = a.window_counts(a.key_index(q), end, (1, 3, 7))
    gb = b.window_counts(b.key_index(q), end, (1, 3, 7))
    for key in ga:
        np.testing.assert_array_equal(ga[key], gb[key])


def test_totals_match_groupby():
    rng = np.random.default_rng(6)
    samples = _random_samples(rng, 500, string_keys=True)
    stats = DailyStats.from_samples(samples, ("user_id", "category"))
    tot = stats.totals()
    ref = samples.dropna(subset=["category"]).groupby(["user_id", "category"]).agg(
        exposures=("click", "size"), clicks=("click", "sum"), orders=("order", "sum")
    )
    assert tot["exposures"].sum() == ref["exposures"].sum()
    keys = ref.index.to_frame(index=False)
    idx = stats.key_index(keys)
    assert (idx >= 0).all()
    for name in COUNT_NAMES:
        np.testing.assert_array_equal(tot[name][idx], ref[name].to_numpy())


def test_round_trip_through_npz_without_pickle():
    rng = np.random.default_rng(7)
    samples = _random_samples(rng, 300, string_keys=True)
    stats = DailyStats.from_samples(samples, ("user_id", "category"))
    meta, arrays = stats.to_state()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    loaded = dict(np.load(buf, allow_pickle=False))
    back = DailyStats.from_state(json.loads(json.dumps(meta)), loaded)
    q = samples.sample(80, random_state=1).reset_index(drop=True)
    end = rng.integers(100, 115, 80)
    a = stats.window_counts(stats.key_index(q), end, (2, 5))
    b = back.window_counts(back.key_index(q), end, (2, 5))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_empty_table_gives_zero_counts():
    empty = pd.DataFrame({"item_id": np.array([], dtype=np.int64), "day": [], "click": []})
    stats = DailyStats.from_samples(empty, ("item_id",))
    q = pd.DataFrame({"item_id": [1, 2]})
    got = stats.window_counts(stats.key_index(q), np.array([5, 6]), (1,))
    assert got[(1, "exposures")].tolist() == [0, 0]


def test_errors():
    frame = pd.DataFrame({"item_id": [1], "day": [3], "click": [0]})
    with pytest.raises(ValueError, match="samples must have a column 'user_id'"):
        DailyStats.from_samples(frame, ("user_id",))
    with pytest.raises(ValueError, match=r"time_column must be one of \['day', 'ts'\]. Got 'hour' instead."):
        DailyStats.from_samples(frame, ("item_id",), time_column="hour")
    with pytest.raises(TypeError, match="key_columns must be a sequence of str"):
        DailyStats.from_samples(frame, "item_id")
    with pytest.raises(ValueError, match="sorted by \\(key, time\\)"):
        DailyStats(("k",), [np.array([1, 2])], np.array([0, 1]), np.array([1, 0]), np.array([0, 0]),
                   np.ones(2), np.zeros(2), np.zeros(2))
    stats = DailyStats.from_samples(frame, ("item_id",))
    with pytest.raises(ValueError, match="query must have a column 'item_id'"):
        stats.key_index(pd.DataFrame({"x": [1]}))
    meta, arrays = stats.to_state()
    with pytest.raises(ValueError, match=r"arrays must hold the table arrays. Got no 'levels0' instead."):
        DailyStats.from_state(meta, {})
    with pytest.raises(ValueError, match=r"state must have format 'ltr.DailyStats'"):
        DailyStats.from_state({"key_columns": ["item_id"], "time_column": "day"}, arrays)


def test_huge_key_space_takes_the_two_sort_path():
    # 2048 x 2048 key combinations times a 2**41-second span exceed 2**62, so the
    # table is built with the rank-then-sort path; results must not change.
    rng = np.random.default_rng(8)
    n = 2048
    samples = pd.DataFrame(
        {
            "a": np.arange(n),
            "b": rng.permutation(n),
            "ts": np.sort(rng.integers(0, 2**41, n)),
            "click": rng.integers(0, 2, n),
            "order": np.zeros(n, dtype=np.int64),
        }
    )
    samples.loc[n - 1, "ts"] = 2**41
    stats = DailyStats.from_samples(samples, ("a", "b"), time_column="ts")
    assert stats.key_codes.size == n
    q = samples.sample(40, random_state=0).reset_index(drop=True)
    end = q["ts"].to_numpy() + 1
    got = stats.window_counts(stats.key_index(q), end, (1,), span=10**12)
    ref = _brute(samples, ("a", "b"), "ts", q, end, 1, 10**12)
    for name in COUNT_NAMES:
        np.testing.assert_array_equal(got[(1, name)], ref[name])
