"""The builder's pieces on their own: click history, per-day tables, plan, attribute tables, frames."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from ltr.features import BetaPrior, DailyStats, DayTableCache
from ltr.features._attributes import MISSING_KEY, AttributeTable
from ltr.features._day_tables import window_columns
from ltr.features._frame import prepare_frame
from ltr.features._plan import FeaturePlan, plan_features
from ltr.features._recent_clicks import recent_click_profiles
from ltr.features._state import export_state, import_state
from ltr.features._tables import ClickHistory, build_tables


def _npz_round_trip(component):
    """``component`` after to_state, JSON, npz (no pickle) and from_state."""
    arrays: dict[str, np.ndarray] = {}
    meta = export_state(component, "x.", arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    loaded = dict(np.load(buf, allow_pickle=False))
    return import_state(type(component), json.loads(json.dumps(meta)), "x.", loaded)


def _click_frame(rng, n: int, string_users: bool) -> dict[str, np.ndarray]:
    day = rng.integers(10, 16, n)
    ts = day * 86400 + rng.integers(0, 86400, n)
    q = n // 4
    ts[:q] = ts[q : 2 * q]  # ties in ts: ordered by item row
    day[:q] = day[q : 2 * q]
    users = rng.integers(0, 8, n)
    return {
        "user_id": np.array([f"u{u}" for u in users], dtype=object) if string_users else users,
        "ts": ts.astype(np.int64),
        "day": day.astype(np.int64),
        "click": rng.integers(0, 2, n),
        "_item_row": rng.integers(-1, 30, n),
    }


def _brute_last(frame, embedding, user, cut, max_len, by_day) -> list[int]:
    """Item rows of ``user``'s last ``max_len`` clicks before ``cut``, oldest first."""
    row = frame["_item_row"]
    ok = (frame["click"] > 0) & (row >= 0) & np.isfinite(embedding[np.maximum(row, 0), 0])
    ok &= frame["user_id"] == user
    ok &= (frame["day"] if by_day else frame["ts"]) < cut
    events = sorted(zip(frame["ts"][ok].tolist(), row[ok].tolist(), strict=True))
    return [item for _, item in events][-max_len:]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("time_column", ["day", "ts"])
def test_click_history_last_clicks_equal_brute_force(seed, time_column):
    rng = np.random.default_rng(seed)
    frame = _click_frame(rng, 400, string_users=seed % 2 == 1)
    embedding = rng.normal(size=(30, 3))
    embedding[::7] = np.nan  # items without an embedding never enter the history
    history = ClickHistory.from_frame(frame, time_column, embedding)
    for loaded in (history, _npz_round_trip(history)):
        users = np.concatenate([rng.choice(frame["user_id"], 60), frame["user_id"][:1] * 0 + frame["user_id"][:1]])
        if time_column == "day":
            cut = rng.integers(9, 18, users.size)
        else:
            cut = rng.integers(9 * 86400, 17 * 86400, users.size)
        lo, hi = loaded.events.bounds(users, loaded.cutoff(cut))
        for i in range(users.size):
            got = loaded.events.item[max(lo[i], hi[i] - 5) : hi[i]].tolist()
            assert got == _brute_last(frame, embedding, users[i], cut[i], 5, time_column == "day")
    nobody = np.array(["nobody"] if seed % 2 else [999])
    unknown_lo, unknown_hi = history.events.bounds(nobody, history.cutoff(np.array([99])))
    assert (unknown_hi - unknown_lo).tolist() == [0]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dim", [3, 16, 64])
def test_one_profile_equals_the_profiles_of_many_bit_for_bit(seed, dim):
    """The one-query shortcut of recent_click_profiles (a serving request) against the general loop."""
    rng = np.random.default_rng(seed)
    frame = _click_frame(rng, 400, string_users=False)
    embedding = rng.normal(size=(30, dim)) * 10.0 ** rng.integers(-3, 4, size=(30, 1))
    embedding /= np.linalg.norm(embedding, axis=1, keepdims=True)
    history = ClickHistory.from_frame(frame, "day", embedding)
    users = np.repeat(np.arange(8), 3)
    cut = np.tile([12, 14, 17], 8)
    for max_len in (1, 5, 20):
        many = recent_click_profiles(history, users, cut, max_len, embedding)
        for i in range(users.size):
            one = recent_click_profiles(history, users[i : i + 1], cut[i : i + 1], max_len, embedding)
            assert one.tobytes() == many[i : i + 1].tobytes()
        # A whole request (one user, one cut-off, many rows) takes the shortcut too.
        rows = recent_click_profiles(history, np.full(7, users[1]), np.full(7, cut[1]), max_len, embedding)
        assert rows.tobytes() == np.repeat(many[1:2], 7, axis=0).tobytes()


def _stats(rng) -> DailyStats:
    n = 300
    frame = pd.DataFrame(
        {"item_id": rng.integers(0, 20, n), "day": rng.integers(0, 8, n), "click": rng.integers(0, 2, n)}
    )
    return DailyStats.from_samples(frame, ("item_id",))


def test_day_table_rows_equal_queries_and_the_cache_trims_old_days():
    rng = np.random.default_rng(0)
    stats = _stats(rng)
    prior = BetaPrior(alpha=1.5, beta=20.0, method="moments", n_keys=20)
    windows = [1, 3]
    cache = DayTableCache()
    for day in range(2, 8):
        values = cache.values("item", stats, prior, day, windows, [day], n_families=1)
        keys = np.append(np.arange(stats.key_codes.size), -1)
        expected = np.column_stack(window_columns(stats, prior, keys, np.full(keys.size, day), windows, 1))
        assert values.tobytes() == expected.tobytes()
        assert cache.values("item", stats, prior, day, windows, [day], n_families=1) is values  # a hit
        assert len(cache) <= 4  # (3 + 1) days for one family
    # Another table (e.g. of a history frame) never reads these entries.
    other = _stats(np.random.default_rng(1))
    mine = cache.values("item", stats, prior, 7, windows, [7], 1)
    assert cache.values("item", other, prior, 7, windows, [7], 1) is not mine
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("days", "expected"),
    [(np.array([5, 5, 5, 5]), 2), (np.repeat([3, 4], 50), 25), (np.repeat([1, 9], 1_000_000), 200_000),
     (np.array([], dtype=np.int64), 0)],
)
def test_cache_for_one_call_sizes_by_rows_per_day(days, expected):
    assert DayTableCache.for_rows(days).max_keys == expected


@pytest.mark.parametrize(
    ("end", "days"), [([4, 4], [4]), ([6, 4, 6], [4, 6]), ([1, 3], [1, 3]), ([1, 4], None), ([], None)]
)
def test_batch_days(end, days):
    assert DayTableCache.batch_days(np.asarray(end, dtype=np.int64)) == days


def _tables() -> tuple[AttributeTable, AttributeTable]:
    items = pd.DataFrame({
        "item_id": [3, 1, 2], "category": ["b", None, "a"], "price": [1.5, np.nan, 2.0],
        "embedding": [[1.0, 0.0], None, [3.0, 4.0]],
    })
    users = pd.DataFrame({"user_id": ["x", "y"], "city": ["p", "q"]})
    return AttributeTable.from_frame(items, "item_id", "items"), AttributeTable.from_frame(users, "user_id", "users")


def test_attribute_table_state_round_trip():
    items, users = _tables()
    for table in (items, users):
        back = _npz_round_trip(table)
        assert back.ids.tolist() == table.ids.tolist()
        for name in table.columns:
            assert back.columns[name].tolist() == pytest.approx(table.columns[name].tolist(), nan_ok=True)
            np.testing.assert_array_equal(back.codes[name], table.codes[name])
        np.testing.assert_array_equal(back.lookup(np.array(table.ids[::-1])), table.lookup(np.array(table.ids[::-1])))
    np.testing.assert_array_equal(_npz_round_trip(items).embedding, items.embedding)
    assert items.numeric_columns() == ["price"] and items.string_columns() == ["category"]
    with pytest.raises(ValueError, match=r"items\.item_id must be unique\. Got 1 twice \(row 1\)"):
        AttributeTable.from_frame(pd.DataFrame({"item_id": [1, 1]}), "item_id", "items")
    ragged = pd.DataFrame({"item_id": [1, 2], "embedding": [[1.0], [1.0, 2.0]]})
    with pytest.raises(ValueError, match=r"items.embedding must have one length for every row. Got lengths \[1, 2\]"):
        AttributeTable.from_frame(ragged, "item_id", "items")


def test_plan_decides_families_and_columns_and_round_trips():
    items, users = _tables()
    plan = plan_features(key_families=("item", "user_category", "category"), extra_keys=(("device", "user_city"),),
                         categorical=None, frame_columns=["device", "bucket"], items=items, users=users)
    assert list(plan.families) == ["item", "user_category", "category", "device__user_city"]
    assert plan.context == ("device", "hour", "position")
    assert plan.item == ("item_category",) and plan.user == ("user_city",)
    assert plan.key_attributes == ("item_category", "user_city")
    assert plan.input_columns == ("device",)  # the bucket is never read
    meta, arrays = plan.to_state()
    assert FeaturePlan.from_state(json.loads(json.dumps(meta)), arrays) == plan
    bare = plan_features(key_families=("item", "user_category"), extra_keys=(), categorical=("hour",),
                         frame_columns=[], items=None, users=None)
    assert list(bare.families) == ["item"] and bare.categorical == ("hour",)


def test_prepared_frame_columns():
    items, users = _tables()
    plan = plan_features(key_families=("category",), extra_keys=(), categorical=None, frame_columns=["device"],
                         items=items, users=users)
    samples = pd.DataFrame({"user_id": ["y", "z"], "item_id": [2, 7], "ts": [86400 * 3 + 7200, 86400 * 4 + 60],
                            "position": [3.0, np.nan], "click": [1, 0]})
    frame = prepare_frame(samples, "history", plan=plan, items=items, users=users, tz="UTC", default_position=1,
                          labels=True)
    assert frame["day"].tolist() == [3, 4] and frame["hour"].tolist() == [2, 0]
    assert frame["position"].tolist() == [3.0, 1.0]
    assert frame["_item_row"].tolist() == [2, -1] and frame["_user_row"].tolist() == [1, -1]
    # An item absent from the items table has the explicit missing level as its key.
    assert frame["item_category"].tolist() == [0.0, MISSING_KEY]
    assert frame["order"].tolist() == [0, 0] and frame["device"].tolist() == [None, None]
    with pytest.raises(ValueError, match=r"history must have columns \['user_id', 'item_id', 'ts', 'click'\]"):
        prepare_frame(samples.drop(columns="click"), "history", plan=plan, items=items, users=users, tz="UTC",
                      default_position=1, labels=True)
    with pytest.raises(TypeError, match=r"samples\.ts must be int64 epoch seconds\. Got dtype float64 instead\."):
        prepare_frame(samples.assign(ts=1.5), "samples", plan=plan, items=items, users=users, tz="UTC",
                      default_position=1, labels=False)


def test_tables_without_embedding_have_no_click_history():
    rng = np.random.default_rng(3)
    frame = _click_frame(rng, 50, string_users=False)
    frame["order"] = np.zeros(50, dtype=np.int64)
    tables = build_tables(frame, {"user": ("user_id",)}, "day", None)
    assert tables.clicks is None and list(tables.stats) == ["user"]
    assert tables.stats["user"].time_column == "day"


@pytest.mark.parametrize("with_clicks", [False, True])
def test_history_tables_state_round_trip(with_clicks):
    rng = np.random.default_rng(4)
    frame = _click_frame(rng, 200, string_users=True)
    frame["order"] = rng.integers(0, 2, 200)
    frame["item_id"] = frame["_item_row"] + 100
    embedding = rng.normal(size=(30, 2)) if with_clicks else None
    tables = build_tables(frame, {"user": ("user_id",), "user_item": ("user_id", "item_id")}, "day", embedding)
    back = _npz_round_trip(tables)
    assert list(back.stats) == ["user", "user_item"]
    query = {"user_id": frame["user_id"][:50], "item_id": frame["item_id"][:50]}
    end = rng.integers(10, 17, 50)
    for family, table in tables.stats.items():
        key = table.key_index(query)
        np.testing.assert_array_equal(back.stats[family].key_index(query), key)
        got = back.stats[family].window_sums(key, end, (1, 3))
        np.testing.assert_array_equal(got, table.window_sums(key, end, (1, 3)))
    assert (back.clicks is None) == (not with_clicks)
    if with_clicks:
        a = tables.clicks.events.bounds(query["user_id"], tables.clicks.cutoff(end))
        b = back.clicks.events.bounds(query["user_id"], back.clicks.cutoff(end))
        np.testing.assert_array_equal(np.stack(a), np.stack(b))
        np.testing.assert_array_equal(back.clicks.events.item, tables.clicks.events.item)
