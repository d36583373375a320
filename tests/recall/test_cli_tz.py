"""``--tz`` of ``recall.train`` and ``recall.retrieve`` on real epochs: day boundaries are local.

The logs (:mod:`tests.straddle`) have requests at 02:00, 10:00, 17:00 and 20:00 UTC, which fall
on different calendar days in UTC, Asia/Shanghai and America/New_York; references come from
pandas' ``tz_convert``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltr.logs import read_logs, write_logs
from recall.base import SOURCES, load
from recall.retrieve import main as retrieve_main
from recall.train import main as train_main
from tests.straddle import PLANTED_AT, PROBE, ZONES, Z, local_days, straddling_logs

TRAIN_END = "2022-04-28"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The straddling logs on disk and every source trained up to 2022-04-28 in every zone."""
    root = tmp_path_factory.mktemp("tz")
    write_logs(straddling_logs(), root / "logs")
    for tz in ZONES:
        for source in sorted(SOURCES):
            assert train_main([str(root / "logs"), "--model", source, "--train-end", TRAIN_END, "--tz", tz,
                               "--out", str(root / _name(source, tz))]) == 0
    return root


def _name(source: str, tz: str) -> str:
    return f"{source}_{tz.replace('/', '_')}"


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_train_end_is_the_end_of_the_local_day(trained, source, tz):
    logs = read_logs(trained / "logs")
    fitted: Any = load(trained / _name(source, tz))
    if source == "hot":
        rows = [(logs.clicks, fitted.click_weight), (logs.exposures, fitted.exposure_weight)]
        weights = pd.concat([pd.Series(weight, index=local_days(table["ts"], tz)) for table, weight in rows])
        expected = weights.groupby(level=0).sum()
        # Counts are kept in hourly bins (whole hours in every zone here): a bin's start hour
        # falls on the local day of its events.
        assert fitted.bin_hours == 1
        start = fitted.count_bin_ * 3600 * fitted.bin_hours
        got = pd.Series(fitted.count_value_).groupby(local_days(start, tz).to_numpy()).sum()
    else:
        expected = local_days(logs.clicks["ts"], tz).value_counts().astype(float)
        got = local_days(fitted.history_.time, tz).value_counts().astype(float)
    expected = expected.loc[expected.index <= TRAIN_END].sort_index()
    pd.testing.assert_series_equal(got.sort_index(), expected, check_names=False, check_index_type=False)


@pytest.mark.parametrize("tz", ZONES)
def test_itemcf_similarity_comes_from_clicks_up_to_the_local_train_end(trained, tz, tmp_path):
    # X and Z are co-clicked only at 2022-04-28 17:30 UTC: a training day in UTC and New York,
    # the day after the training window in Shanghai.
    out = tmp_path / "c.parquet"
    assert retrieve_main([str(trained / _name("itemcf", tz)), str(trained / "logs"), "--start", "2022-04-30",
                          "--end", "2022-04-30", "--k", "14", "--tz", tz, "--out", str(out)]) == 0
    requests = read_logs(trained / "logs").requests
    probe = requests.loc[requests["user_id"] == PROBE, "request_id"]
    cands = pd.read_parquet(out)
    z_scores = cands.loc[cands["request_id"].isin(probe) & (cands["item_id"] == Z), "score"]
    planted_day = local_days(np.array([PLANTED_AT.timestamp()], dtype=np.int64), tz).iloc[0]
    if planted_day <= TRAIN_END:
        assert len(z_scores) and (z_scores > 0).all()  # a co-click neighbour, not a popular filler
    else:
        assert z_scores.empty


@pytest.mark.parametrize("day", ["2022-04-30", "2022-05-01"])
@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_retrieve_selects_the_requests_of_local_days(trained, source, tz, day, tmp_path, capsys):
    requests = read_logs(trained / "logs").requests
    expected = set(requests.loc[local_days(requests["ts"], tz).to_numpy() == day, "request_id"])
    out = tmp_path / "c.parquet"
    status = retrieve_main([str(trained / _name(source, tz)), str(trained / "logs"), "--start", day, "--end", day,
                            "--k", "5", "--tz", tz, "--out", str(out)])
    if expected:
        assert status == 0
        cands = pd.read_parquet(out)
        got = set(cands["request_id"])
        # Item-CF returns only co-click neighbours and training-clicked fillers, all of which a
        # user of these tiny logs may have clicked already (excluded): such a request gets none.
        assert got <= expected and (got == expected or source == "itemcf")
        # Up to 5: the catalogue has 14 items and exclude_seen (clicks, the default) drops the
        # ones the user clicked before, which can leave fewer.
        assert cands.groupby("request_id").size().between(1, 5).all()
    else:  # 2022-05-01 is a day of the logs only in Shanghai
        assert status == 1
        assert f"no requests between {day} and {day}" in capsys.readouterr().err
