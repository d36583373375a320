"""``python -m eval.report --tz`` on real epochs: the readout's days are local calendar days.

The logs (:mod:`tests.straddle`) have requests at 02:00, 10:00, 17:00 and 20:00 UTC, which fall
on different days in UTC, Asia/Shanghai and America/New_York; every expectation comes from
pandas' ``tz_convert`` of the logged epochs.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from eval.report.__main__ import main
from ltr.logs import join_samples, write_logs
from tests.straddle import ZONES, local_days, straddling_logs


@pytest.fixture(scope="module")
def logs_dir(tmp_path_factory):
    logs = straddling_logs()
    path = tmp_path_factory.mktemp("tz") / "logs"
    write_logs(logs, path)
    samples = join_samples(logs).samples
    return path, logs, samples


def _readout(path, tz, tmp_path, *extra):
    out = tmp_path / "readout.json"
    assert main([str(path), "--tz", tz, "--format", "json", "--quiet", "--aa-splits", "0", "--out", str(out),
                 *extra]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("tz", ZONES)
def test_window_and_daily_rows_are_local_days(logs_dir, tz, tmp_path):
    path, logs, samples = logs_dir
    readout = _readout(path, tz, tmp_path)
    days = local_days(logs.requests["ts"], tz)
    assert readout["window"] == [days.min(), days.max()]
    sample_day = local_days(samples["ts"], tz)
    per_day = {r["value"]: r["n"] for r in readout["auc"]["rows"] if r["segment"] == "day"}
    assert per_day == sample_day.value_counts().sort_index().to_dict()
    daily = readout["daily"]["by_treatment"][0]["rows"]
    assert [r["day"] for r in daily] == sorted(days.unique())
    for row in daily:
        today = samples.loc[(sample_day == row["day"]).to_numpy() & (samples["bucket"] == "control").to_numpy()]
        assert row["control"] == pytest.approx(today["click"].sum() / len(today), rel=1e-12)


@pytest.mark.parametrize("day", ["2022-04-24", "2022-04-30", "2022-05-01"])
@pytest.mark.parametrize("tz", ZONES)
def test_start_and_end_select_the_requests_of_local_days(logs_dir, tz, day, tmp_path, capsys):
    path, _, samples = logs_dir
    in_day = (local_days(samples["ts"], tz) == day).to_numpy()
    if not in_day.any():  # 04-24 is a day of the logs only in New York, 05-01 only in Shanghai
        assert main([str(path), "--tz", tz, "--start", day, "--end", day, "--quiet", "--format", "json"]) == 1
        assert f"error: no exposures between {day} and {day}." in capsys.readouterr().err
    else:
        readout = _readout(path, tz, tmp_path, "--start", day, "--end", day)
        assert readout["window"] == [day, day]
        expected = samples.loc[in_day].groupby("bucket").agg(requests=("request_id", "nunique"),
                                                                exposures=("item_id", "size"), clicks=("click", "sum"))
        got = pd.DataFrame(readout["funnel"]).set_index("bucket").loc[expected.index, list(expected.columns)]
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        assert [r["value"] for r in readout["auc"]["rows"] if r["segment"] == "day"] == [day]
