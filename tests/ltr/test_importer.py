"""The flat-log importer (``ltr.logs.from_interactions`` and ``python -m ltr.logs import``)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ltr.logs import (
    LogValidationError,
    attribute_coverage,
    from_interactions,
    join_samples,
    parse_day,
    read_logs,
)
from ltr.logs.__main__ import main as logs_main

T0_MS = parse_day("2022-04-25") * 86_400_000


def random_flat(seed: int, str_users: bool) -> pd.DataFrame:
    """One row per exposure; item ``i`` is row ``i``, so a row can be found again by its item."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    users = rng.integers(0, 6, n)
    # Clustered times with ties (same millisecond) and sub-second differences.
    ms = T0_MS + rng.integers(0, 4, n) * 3_600_000 + rng.integers(0, 40, n) * rng.choice([1, 500, 20_000], n)
    return pd.DataFrame({
        "uid": np.char.add("u", users.astype(str)) if str_users else users,
        "vid": np.arange(n),
        "time_ms": ms,
        "tab": rng.integers(0, 3, n),
        "clicked": rng.integers(0, 2, n),
        "watch_ms": rng.integers(0, 60_000, n),
    })


def reference_requests(flat: pd.DataFrame, gap_ms: float) -> list[list[int]]:
    """Requests as lists of input rows in position order, listed by start time: a plain loop."""
    rows_by_key: dict = {}
    for row in range(len(flat)):
        rows_by_key.setdefault((flat["uid"][row], flat["tab"][row]), []).append(row)
    requests = []
    for rows in rows_by_key.values():
        rows.sort(key=lambda r: (flat["time_ms"][r], r))
        current = [rows[0]]
        for prev, row in itertools.pairwise(rows):
            if flat["time_ms"][row] - flat["time_ms"][prev] > gap_ms:
                requests.append(current)
                current = []
            current.append(row)
        requests.append(current)
    return sorted(requests, key=lambda rows: (flat["time_ms"][rows[0]], requests.index(rows)))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("str_users", [False, True])
def test_requests_positions_and_labels_match_a_reference(seed, str_users):
    flat = random_flat(seed, str_users)
    gap = [0.5, 30, 600][seed % 3]
    logs = from_interactions(flat, user_col="uid", item_col="vid", ts_col="time_ms", ts_unit="ms", click_col="clicked",
                             context_cols=["tab"], request_by=["tab"], gap_seconds=gap)
    expected = reference_requests(flat, gap * 1000)
    exposures = logs.exposures.sort_values(["request_id", "position"])
    got = [group["item_id"].tolist() for _, group in exposures.groupby("request_id", sort=True)]
    assert sorted(map(tuple, got)) == sorted(map(tuple, expected))
    # Request ids follow start times; positions are 1..n in time order.
    starts = logs.requests.set_index("request_id")["ts"].sort_index()
    assert starts.is_monotonic_increasing
    assert (exposures.groupby("request_id")["position"].apply(list)
            == exposures.groupby("request_id")["position"].size().map(lambda n: list(range(1, n + 1)))).all()
    request = logs.requests.set_index("request_id")
    first_rows = {rows[0] for rows in expected}
    for rid, row in zip(exposures["request_id"], exposures["item_id"], strict=True):
        if row in first_rows:  # the request's columns come from its first row
            assert request.loc[rid, "ts"] == flat["time_ms"][row] // 1000
            assert request.loc[rid, "tab"] == flat["tab"][row]
            assert request.loc[rid, "user_id"] == flat["uid"][row]
    assert sorted(logs.clicks["item_id"]) == sorted(flat.loc[flat["clicked"] == 1, "vid"])
    assert (logs.exposures.set_index("item_id")["ts"].sort_index() == flat["time_ms"] // 1000).all()


def test_hand_made_export():
    flat = pd.DataFrame({
        "user_id": [1, 1, 1, 2, 1],
        "item_id": [10, 11, 12, 10, 13],
        "ts": [0, 5, 10_000, 3, 10_010],
        "click": [0, 1, 0, 1, 1],
        "order": [0, 1, 0, 0, 0],
        "category": ["a", "b", "a", "a", "c"],
        "bucket": ["A", "A", "A", "B", "A"],
        "score": [0.1, 0.3, 0.2, 0.5, 0.4],
    }).assign(ts=lambda f: f["ts"] + T0_MS // 1000)
    logs = from_interactions(flat, gap_seconds=1800, order_col="order", category_col="category", bucket_col="bucket",
                             score_col="score")
    assert len(logs.requests) == 3  # user 1: two sessions; user 2: one
    assert logs.requests["request_id"].tolist() == [0, 1, 2]
    assert logs.requests["user_id"].tolist() == [1, 2, 1]  # numbered by start time
    assert logs.requests["bucket"].tolist() == ["A", "B", "A"]
    assert sorted(logs.clicks["item_id"].tolist()) == [10, 11, 13]
    assert logs.orders["item_id"].tolist() == [11]
    assert logs.items.set_index("item_id")["category"].to_dict() == {10: "a", 11: "b", 12: "a", 13: "c"}
    second = logs.exposures.loc[logs.exposures["request_id"] == 2].sort_values("position")
    assert second["item_id"].tolist() == [12, 13]
    first = logs.candidates.loc[logs.candidates["request_id"] == 0].sort_values("rank_pos")
    assert first["item_id"].tolist() == [11, 10]
    assert logs.outcomes is None and logs.users is None


def test_outcomes_are_kept_apart_and_unnamed_columns_dropped():
    flat = random_flat(0, False).assign(secret=1.0)
    logs = from_interactions(flat, user_col="uid", item_col="vid", ts_col="time_ms", ts_unit="ms",
                             click_col="clicked", outcome_cols=["watch_ms"])
    assert list(logs.outcomes.columns) == ["request_id", "item_id", "ts", "watch_ms"]
    by_item = logs.outcomes.set_index("item_id")["watch_ms"].sort_index()
    assert by_item.tolist() == flat["watch_ms"].tolist()
    samples = join_samples(logs).samples
    for frame in (*logs.tables().values(), samples):
        assert "secret" not in frame.columns and "tab" not in frame.columns
    assert "watch_ms" not in samples.columns  # outcomes are never features of their exposure


def test_items_and_users_files_are_joined_and_gaps_counted():
    flat = random_flat(1, False)
    items = pd.DataFrame({"vid": np.arange(0, len(flat) - 3), "tag": ["x", None, "7"] * ((len(flat) - 3) // 3)
                          + ["x"] * ((len(flat) - 3) % 3), "duration": 1.5})
    users = pd.DataFrame({"uid": [0, 1, 2, 3, 99], "age": [1, None, 3, 4, 5]})
    logs = from_interactions(flat, user_col="uid", item_col="vid", ts_col="time_ms", ts_unit="ms", click_col="clicked",
                             items=items, category_col="tag", users=users)
    assert list(logs.items.columns) == ["item_id", "category", "duration"]
    assert logs.items["category"].isna().sum() == items["tag"].isna().sum()
    assert set(logs.items["category"].dropna()) == {"x", "7"}
    coverage = attribute_coverage(logs)
    assert coverage.items_without_category == items["tag"].isna().sum()
    assert coverage.items_not_in_table == 3
    assert coverage.users_not_in_table == len(set(flat["uid"]) - {0, 1, 2, 3, 99})
    assert coverage.users_missing_by_column == {"age": 1}
    report = join_samples(logs).report
    assert report.samples_item_not_in_items == 3
    assert report.samples_user_not_in_users == int((~flat["uid"].isin(users["uid"])).sum())


@pytest.mark.parametrize(("change", "match"), [
    (dict(click_col="nope"), r"'interactions', column 'nope': named column is missing"),
    (dict(context_cols=["tab"]), (r"'interactions', column 'tab': changes within \d+ request\(s\); add it to "
                                  r"--request-by")),
    (dict(gap_seconds=-1), r"gap_seconds must be a float in \[0, inf\)\. Got -1 instead\."),
    (dict(ts_unit="s"), r"these look like milliseconds: pass --ts-unit ms"),
    (dict(items=pd.DataFrame({"vid": [1]})), r"'items', column 'category': named column is missing"),
    (dict(items=pd.DataFrame({"item_id": [1], "category": ["a"]})), r"'items', column 'vid': named column is missing"),
    (dict(items=pd.DataFrame({"vid": [1], "item_id": [1], "category": ["a"]})),
     r"'items', column 'item_id': both 'vid' \(the key\) and 'item_id' exist"),
    (dict(users=pd.DataFrame({"uid": [1, 1]})), r"'users', column 'user_id': 1 duplicate"),
])
def test_bad_arguments_and_columns(change, match):
    kwargs = dict(user_col="uid", item_col="vid", ts_col="time_ms", ts_unit="ms", click_col="clicked",
                  gap_seconds=3600)
    with pytest.raises((LogValidationError, ValueError), match=match):
        from_interactions(random_flat(2, False), **{**kwargs, **change})


def test_values_that_must_be_constant_are_checked():
    flat = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5], "ts": T0_MS // 1000 + np.array([0, 1, 2]),
                         "click": [1, 0, 0], "bucket": ["A", "B", "A"], "category": ["x", "y", "z"]})
    with pytest.raises(LogValidationError, match=r"'interactions', column 'bucket': changes within 1 request\(s\).*"
                                                 r"'row': 0"):
        from_interactions(flat, bucket_col="bucket")
    with pytest.raises(LogValidationError, match=r"'interactions', column 'category': the category of an item "
                                                 r"changes between rows; pass an items table instead\..*'row': 0"):
        from_interactions(flat, category_col="category")
    logs = from_interactions(flat.assign(category=["x", "y", "x"]), category_col="category")
    assert logs.items.to_dict("list") == {"item_id": [5, 6], "category": ["x", "y"]}


@pytest.mark.parametrize(("column", "value", "match"), [
    ("clicked", 2, r"'interactions', column 'clicked': 1 row\(s\) have a label that is not 0 or 1"),
    ("clicked", np.nan, r"'interactions', column 'clicked': 1 row\(s\) have a label that is not 0 or 1"),
    ("uid", np.nan, r"'interactions', column 'uid': 1 row\(s\) have a missing \(NaN\) id"),
    ("time_ms", np.nan, r"'interactions', column 'time_ms': missing or non-finite timestamps"),
])
def test_broken_rows_are_errors_naming_the_row(column, value, match):
    flat = random_flat(3, False)
    flat = flat.astype({column: float})
    flat.loc[4, column] = value
    with pytest.raises(LogValidationError, match=match + r".*'row': 4"):
        from_interactions(flat, user_col="uid", item_col="vid", ts_col="time_ms", ts_unit="ms", click_col="clicked")


# ----------------------------------------------------------------------------- command line


def write_flat(tmp_path):
    flat = random_flat(4, True).assign(extra="x")
    flat.to_csv(tmp_path / "flat.csv", index=False)
    pd.DataFrame({"vid": np.arange(len(flat)), "kind": np.where(np.arange(len(flat)) % 4 == 0, None, "k")}).to_csv(
        tmp_path / "items.csv", index=False)
    pd.DataFrame({"uid": ["u0", "u1"], "age": [30, 40]}).to_parquet(tmp_path / "users.parquet")
    return flat


BASE_ARGS = ["--user-col", "uid", "--item-col", "vid", "--ts-col", "time_ms", "--click-col", "clicked"]


def test_cli_imports_prints_what_it_did_and_validates(tmp_path, capsys):
    flat = write_flat(tmp_path)
    out = tmp_path / "logs"
    argv = ["import", str(tmp_path / "flat.csv"), "--out", str(out), *BASE_ARGS, "--ts-unit", "ms",
            "--context-col", "tab", "--request-by", "tab", "--gap", "60", "--outcome-col", "watch_ms",
            "--items", str(tmp_path / "items.csv"), "--category-col", "kind",
            "--users", str(tmp_path / "users.parquet"),
            "--tz", "Asia/Shanghai"]
    assert logs_main(argv) == 0
    text = capsys.readouterr().out
    assert "ts <- time_ms (epoch milliseconds -> seconds)" in text
    assert "requests.tab <- tab" in text and "outcomes.watch_ms <- watch_ms" in text
    assert "requests: rows of one user and tab, at most 60 s apart" in text
    assert "dropped: 1 column(s) no option names: extra" in text
    assert f"items table: {len(flat):,d} items; {len(range(0, len(flat), 4))} items have no category" in text
    assert "Days in Asia/Shanghai: 2022-04-25 .. 2022-04-25 (1 days)" in text
    assert "logs OK" in text and "Join report" in text
    logs = read_logs(out, tz="Asia/Shanghai")
    expected = from_interactions(flat, user_col="uid", item_col="vid", ts_col="time_ms", ts_unit="ms",
                                 click_col="clicked", context_cols=["tab"], request_by=["tab"], gap_seconds=60,
                                 outcome_cols=["watch_ms"])
    for name in ("requests", "exposures", "clicks", "outcomes"):
        pd.testing.assert_frame_equal(logs.tables()[name], expected.tables()[name], check_dtype=False)


def test_cli_refuses_milliseconds_without_ts_unit(tmp_path, capsys):
    write_flat(tmp_path)
    assert logs_main(["import", str(tmp_path / "flat.csv"), "--out", str(tmp_path / "logs"), *BASE_ARGS]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: logs table 'interactions', column 'time_ms': ")
    assert "these look like milliseconds: pass --ts-unit ms" in err
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(("args", "status", "message"), [
    (["--items", "{tmp}/none.csv"], 1, "error: logs table 'items': file '{tmp}/none.csv' does not exist."),
    (["--ts-unit", "sec"], 2, "argument --ts-unit: invalid choice: 'sec'"),
    (["--tz", "Mars/Base"], 1, "tz must be an IANA time zone name"),
])
def test_cli_bad_options(tmp_path, capsys, args, status, message):
    write_flat(tmp_path)
    argv = ["import", str(tmp_path / "flat.csv"), "--out", str(tmp_path / "logs"), *BASE_ARGS, "--ts-unit", "ms"]
    assert logs_main(argv + [a.format(tmp=tmp_path) for a in args]) == status
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
