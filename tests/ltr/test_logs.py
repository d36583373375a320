"""Log contract: malformed logs give a clear error naming table, column and an example row."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.logs import (
    LogValidationError,
    as_day,
    attribute_coverage,
    format_day,
    from_frames,
    join_samples,
    parse_day,
    read_logs,
    write_logs,
)
from ltr.logs.__main__ import main as logs_main

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "fixtures" / "broken").iterdir())
T0 = parse_day("2026-01-05") * 86_400  # timestamps must be plausible dates (2000..2100)


def base() -> dict[str, pd.DataFrame]:
    return {
        "requests": pd.DataFrame({"request_id": [1, 2, 3], "ts": [T0 + 1000, T0 + 2000, T0 + 3000],
                                  "user_id": [10, 11, 10], "bucket": ["control", "treatment", "control"],
                                  "device": ["ios", "web", "ios"]}),
        "exposures": pd.DataFrame({"request_id": [1, 1, 2, 3], "item_id": [100, 101, 100, 102],
                                   "ts": [T0 + 1000, T0 + 1000, T0 + 2000, T0 + 3000], "position": [1, 2, 1, 1]}),
        "clicks": pd.DataFrame({"request_id": [1, 2], "item_id": [101, 100], "ts": [T0 + 1010, T0 + 2030]}),
        "candidates": pd.DataFrame({"request_id": [1, 1, 2, 3], "item_id": [100, 101, 100, 102],
                                    "rank_pos": [1, 2, 1, 1], "rank_score": [0.3, 0.2, 0.4, 0.2]}),
        "orders": pd.DataFrame({"request_id": [1], "item_id": [101], "ts": [T0 + 1100]}),
        "items": pd.DataFrame({"item_id": [100, 101, 102], "category": ["a", "b", "a"]}),
        "users": pd.DataFrame({"user_id": [10, 11], "city": ["x", "y"]}),
    }


def spoil(table: str, column: str, row: int, value) -> dict:
    tables = base()
    frame = tables[table].astype({column: object})
    frame.loc[row, column] = value
    tables[table] = frame
    return tables


def without(table: str, column: str | None = None) -> dict:
    tables = base()
    if column is None:
        tables[table] = tables[table].iloc[:0]
    else:
        tables[table] = tables[table].drop(columns=column)
    return tables


def appended(table: str, row: dict) -> dict:
    tables = base()
    tables[table] = pd.concat([tables[table], pd.DataFrame([row])], ignore_index=True)
    return tables


CASES = {
    "missing user_id": (without("requests", "user_id"), r"'requests', column 'user_id': required column is missing"),
    "missing item_id": (without("exposures", "item_id"), r"'exposures', column 'item_id': required column"),
    "missing click ts": (without("clicks", "ts"), r"'clicks', column 'ts': required column"),
    "missing category": (without("items", "category"), r"'items', column 'category': required column"),
    "empty requests": (without("requests"), r"'requests': table is empty"),
    "empty clicks": (without("clicks"), r"'clicks': table is empty"),
    "nan request id": (spoil("requests", "request_id", 1, np.nan),
                       r"'requests', column 'request_id': 1 row\(s\) have a missing \(NaN\) id"),
    "nan user id": (spoil("requests", "user_id", 0, None), r"'requests', column 'user_id'.*missing"),
    "nan item id": (spoil("clicks", "item_id", 0, np.nan), r"'clicks', column 'item_id'.*missing"),
    "float id": (spoil("exposures", "item_id", 1, 101.5), r"'exposures', column 'item_id'.*non-integral floats"),
    "mixed id types": (spoil("exposures", "item_id", 1, "abc"), r"'exposures', column 'item_id'.*mixed types"),
    "duplicate request": (spoil("requests", "request_id", 2, 1),
                          r"'requests', column 'request_id': 1 duplicate request_id"),
    "unknown request": (spoil("exposures", "request_id", 0, 42),
                        r"'exposures', column 'request_id'.*not in table 'requests'.*'request_id': 42"),
    "unknown click request": (spoil("clicks", "request_id", 0, 42),
                              r"'clicks', column 'request_id'.*not in table 'requests'"),
    "unknown candidate request": (spoil("candidates", "request_id", 0, 42),
                                  r"'candidates', column 'request_id'.*not in table"),
    "unknown order request": (spoil("orders", "request_id", 0, 42), r"'orders', column 'request_id'.*not in table"),
    "text timestamp": (spoil("exposures", "ts", 0, "noon"), r"'exposures', column 'ts': timestamps must be numeric"),
    "bool timestamp": ({**base(), "clicks": base()["clicks"].assign(ts=[True, False])},
                       r"'clicks', column 'ts'.*booleans"),
    "nan timestamp": (spoil("requests", "ts", 0, np.nan), r"'requests', column 'ts'.*non-finite"),
    "naive datetime": ({**base(), "requests": base()["requests"].assign(ts=pd.to_datetime(T0 + np.arange(3),
                                                                                            unit="s"))},
                       r"'requests', column 'ts': timestamps are naive datetimes"),
    "click before exposure": (spoil("clicks", "ts", 1, T0 + 1500),
                              r"'clicks', column 'ts': 1 click\(s\) happen before their exposure"),
    "negative position": (spoil("exposures", "position", 0, -2), r"'exposures', column 'position'.*integers >= 0"),
    "fractional position": (spoil("exposures", "position", 0, 1.5), r"'exposures', column 'position'"),
    "duplicate candidate": (appended("candidates", {"request_id": 1, "item_id": 100, "rank_pos": 3, "rank_score": 0.1}),
                            r"'candidates', column 'item_id': 1 duplicate request_id x item_id"),
    "nan rank score": (spoil("candidates", "rank_score", 0, np.nan), r"'candidates', column 'rank_score'"),
    "rank pos zero": (spoil("candidates", "rank_pos", 0, 0), r"'candidates', column 'rank_pos'.*integers >= 1"),
    "missing bucket": (spoil("requests", "bucket", 1, None),
                       r"'requests', column 'bucket': 1 request\(s\) have no bucket"),
    "duplicate item": (appended("items", {"item_id": 100, "category": "z"}), r"'items', column 'item_id': 1 duplicate"),
    "duplicate user": (appended("users", {"user_id": 10, "city": "z"}), r"'users', column 'user_id': 1 duplicate"),
    "order without keys": (without("orders", "request_id"),
                           r"'orders', column 'request_id': orders need a request_id or a user_id"),
    "id types differ": ({**base(), "clicks": base()["clicks"].assign(item_id=["101", "100"])}, r"id types differ"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_logs_raise_naming_table_and_column(name):
    tables, pattern = CASES[name]
    with pytest.raises(LogValidationError, match=pattern):
        from_frames(**tables)


def test_error_carries_table_column_and_example():
    with pytest.raises(LogValidationError) as info:
        from_frames(**spoil("exposures", "request_id", 3, 99))
    err = info.value
    assert (err.table, err.column) == ("exposures", "request_id")
    assert err.example == {"row": 3, "request_id": 99, "item_id": 102, "ts": T0 + 3000, "position": 1}


def test_valid_logs_normalise_and_keep_extra_columns():
    logs = from_frames(**base())
    assert logs.requests["device"].tolist() == ["ios", "web", "ios"]
    assert logs.exposures["ts"].dtype == np.int64
    assert set(logs.tables()) == {"requests", "exposures", "clicks", "candidates", "orders", "items", "users"}


def test_timezone_aware_datetimes_and_iso_strings_become_epoch_seconds():
    tables = base()
    tables["requests"] = tables["requests"].assign(
        ts=pd.to_datetime(T0 + np.array([1000, 2000, 3000]), unit="s", utc=True).tz_convert("Asia/Shanghai"))
    tables["clicks"] = tables["clicks"].assign(ts=["2026-01-05T00:16:50+00:00", "2026-01-05T08:33:50+08:00"])
    logs = from_frames(**tables)
    assert logs.requests["ts"].tolist() == [T0 + 1000, T0 + 2000, T0 + 3000]
    assert logs.clicks["ts"].tolist() == [T0 + 1010, T0 + 2030]


def test_orders_may_have_request_or_user_per_row():
    tables = base()
    tables["orders"] = pd.DataFrame({"request_id": pd.array([1, None], dtype="Int64"), "user_id": [10, 11],
                                     "item_id": [101, 100], "ts": [T0 + 1100, T0 + 2100]})
    logs = from_frames(**tables)
    assert logs.orders["request_id"].isna().tolist() == [False, True]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_logs_round_trip(tmp_path, fmt):
    logs = from_frames(**base())
    write_logs(logs, tmp_path, fmt=fmt)
    again = read_logs(tmp_path)
    for name, frame in logs.tables().items():
        pd.testing.assert_frame_equal(again.tables()[name], frame, check_dtype=False)


def test_both_formats_of_one_table_is_an_error(tmp_path):
    logs = from_frames(**base())
    write_logs(logs, tmp_path, fmt="parquet")
    logs.requests.to_csv(tmp_path / "requests.csv", index=False)
    with pytest.raises(LogValidationError, match=r"'requests': both requests.parquet and requests.csv"):
        read_logs(tmp_path)


def test_missing_directory():
    with pytest.raises(LogValidationError, match="does not exist"):
        read_logs("/nonexistent/logs")


@pytest.mark.parametrize("case", BROKEN, ids=[p.name for p in BROKEN])
def test_cli_exits_1_naming_table_and_column(case, capsys):
    expected = json.loads((case / "EXPECTED.json").read_text())
    assert logs_main(["validate", str(case)]) == 1
    err = capsys.readouterr().err
    assert f"logs table '{expected['table']}'" in err
    if expected["column"]:
        assert f"column '{expected['column']}'" in err
    assert "Traceback" not in err


def test_cli_subprocess_has_no_traceback():
    case = ROOT / "fixtures" / "broken" / "unknown_request_in_exposures"
    proc = subprocess.run([sys.executable, "-m", "ltr.logs", "validate", str(case)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: logs table 'exposures', column 'request_id'")
    assert "Traceback" not in proc.stderr


def test_cli_validates_the_fixture_world(capsys):
    assert logs_main(["validate", str(ROOT / "fixtures" / "world")]) == 0
    out = capsys.readouterr().out
    assert "Join report" in out and "Funnel per bucket" in out and "treatment" in out


# ----------------------------------------------------------------------------- calendar days


@pytest.mark.parametrize(("value", "expected"), [("2026-01-31", 20484), (20484, 20484), (np.int64(3), 3)])
def test_as_day_accepts_dates_and_day_indexes(value, expected):
    assert as_day(value, "end") == expected
    assert format_day(as_day(value)) == format_day(expected)
    assert parse_day("1970-01-01") == 0


@pytest.mark.parametrize(("value", "error", "match"), [
    ("31/01/2026", ValueError, r"^end must be a date like 2026-01-31\. Got '31/01/2026' instead\.$"),
    (True, TypeError, r"^end must be a 'YYYY-MM-DD' string or a day index\. Got True instead\.$"),
    (1.5, TypeError, r"^end must be a 'YYYY-MM-DD' string or a day index\. Got 1\.5 instead\.$"),
])
def test_as_day_rejects_other_values(value, error, match):
    with pytest.raises(error, match=match):
        as_day(value, "end")


# ----------------------------------------------------------------------------- missing attributes


@pytest.mark.parametrize(("categories", "expected"), [
    (["a", None, "b"], ["a", None, "b"]),
    ([3, None, 7], ["3", None, "7"]),  # an integer column with a blank (CSV: floats)
    ([3.0, np.nan, 7.5], ["3", None, "7.5"]),
    (pd.array([3, None, 7], dtype="Int64"), ["3", None, "7"]),
    (pd.array(["a", None, "b"], dtype="string"), ["a", None, "b"]),
])
def test_missing_categories_are_kept_missing_and_the_rest_become_strings(categories, expected):
    tables = base()
    tables["items"] = pd.DataFrame({"item_id": [100, 101, 102], "category": categories})
    category = from_frames(**tables).items["category"]
    assert category.dtype == object
    assert [None if pd.isna(v) else v for v in category] == expected
    assert category.isna().tolist() == [v is None for v in expected]


def test_missing_attributes_are_accepted_and_counted(capsys):
    tables = base()
    tables["items"] = pd.DataFrame({"item_id": [100, 102, 200], "category": [None, "a", None],
                                    "price": [1.0, None, 2.0], "embedding": [np.ones(2), None, np.zeros(2)]})
    tables["users"] = pd.DataFrame({"user_id": [10, 99], "city": [None, "x"]})
    logs = from_frames(**tables)
    coverage = attribute_coverage(logs)
    assert coverage.to_dict() == {
        "items_in_table": 3, "items_without_category": 2, "items_missing_by_column": {"price": 1, "embedding": 1},
        "items_referenced": 3, "items_not_in_table": 1, "users_in_table": 2, "users_missing_by_column": {"city": 1},
        "users_referenced": 2, "users_not_in_table": 1,
    }
    assert "3 items; 2 items have no category: they share the missing level" in coverage.to_text()
    report = join_samples(logs).report
    # Samples: (1,100) (1,101) (2,100) (3,102); item 101 has no row, 100 no category; user 11 has no row.
    assert (report.samples_item_not_in_items, report.samples_item_without_category,
            report.samples_user_not_in_users) == (1, 2, 1)
    assert "item without a category" in report.to_text()


def test_without_items_or_users_every_sample_lacks_them():
    tables = {name: frame for name, frame in base().items() if name not in ("items", "users")}
    logs = from_frames(**tables)
    coverage = attribute_coverage(logs)
    assert (coverage.items_in_table, coverage.items_not_in_table, coverage.users_not_in_table) == (None, 3, 2)
    assert "no items table" in coverage.to_text() and "no users table" in coverage.to_text()
    report = join_samples(logs).report
    assert report.samples_item_not_in_items == report.samples_user_not_in_users == report.exposures_kept


def test_outcomes_table_is_validated_and_round_trips(tmp_path):
    tables = base()
    tables["outcomes"] = pd.DataFrame({"request_id": [1, 2], "item_id": [101, 100], "ts": [T0 + 1000, T0 + 2000],
                                       "watch_seconds": [3.5, np.nan], "liked": [True, False]})
    logs = from_frames(**tables)
    write_logs(logs, tmp_path)
    pd.testing.assert_frame_equal(read_logs(tmp_path).outcomes, logs.outcomes)
    assert "watch_seconds" not in join_samples(logs).samples.columns
    tables["outcomes"] = tables["outcomes"].assign(liked=["yes", "no"])
    with pytest.raises(LogValidationError, match=r"'outcomes', column 'liked': outcomes must be numbers or booleans"):
        from_frames(**tables)


def test_cli_prints_days_and_attributes(capsys):
    assert logs_main(["validate", str(ROOT / "fixtures" / "world"), "--tz", "Asia/Shanghai"]) == 0
    out = capsys.readouterr().out
    assert "Days in Asia/Shanghai: 2026-01-05 .. 2026-01-19 (15 days)" in out
    assert "items table: 3,000 items; 0 items have no category" in out
    assert "user not in the users table" in out


def test_cli_ts_unit_reads_millisecond_logs(capsys):
    case = str(ROOT / "fixtures" / "broken" / "millisecond_timestamps")
    assert logs_main(["validate", case]) == 1
    assert "these look like milliseconds: pass --ts-unit ms" in capsys.readouterr().err
    assert logs_main(["validate", case, "--ts-unit", "ms"]) == 0
