"""Every ``--tz`` path of the ltr command lines (validate, train, score, explain) on real epochs.

The real fixture's times are Kuaishou's (Asia/Shanghai, UTC+8): a day there starts at 16:00 UTC
the day before, so Shanghai and UTC days differ for a third of the rows and every check below
would catch days counted in the wrong zone (or from a resolution-dependent integer view of
datetimes, the bug that made every day 1970-01-20). References use pandas' own tz_convert.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ltr.explain import main as explain_main
from ltr.logs import join_samples, read_logs
from ltr.logs.__main__ import main as logs_main
from ltr.score import main as score_main
from ltr.serving import Ranker
from ltr.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]
REAL = str(ROOT / "fixtures" / "real")
ZONES = ["Asia/Shanghai", "UTC", "America/New_York"]


def local_days(ts: pd.Series, tz: str) -> pd.Series:
    return pd.to_datetime(ts, unit="s", utc=True).dt.tz_convert(tz).dt.strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def samples():
    return join_samples(read_logs(REAL)).samples


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """An LR bundle trained with days counted in each zone (train end 2022-04-28)."""
    root = tmp_path_factory.mktemp("bundles")
    out = {}
    for tz in ZONES[:2]:
        assert train_main([REAL, "--model", "lr", "--tz", tz, "--train-end", "2022-04-28",
                           "--out", str(root / tz.replace("/", "_"))]) == 0
        out[tz] = root / tz.replace("/", "_")
    return out


@pytest.mark.parametrize("tz", ZONES)
def test_validate_counts_rows_per_local_day(tz, capsys):
    assert logs_main(["validate", REAL, "--tz", tz]) == 0
    text = capsys.readouterr().out
    logs = read_logs(REAL)
    expected = local_days(logs.exposures["ts"], tz).value_counts().sort_index()
    assert f"Days in {tz}: {expected.index[0]} .. {expected.index[-1]} ({len(expected)} days)" in text
    for day, n in expected.items():
        assert re.search(rf"^{day} +\d+ +{n} +\d+$", text, flags=re.MULTILINE), (day, n)


@pytest.mark.parametrize("tz", ZONES[:2])
def test_train_splits_on_local_days(tz, bundles, samples):
    training = Ranker.load(bundles[tz]).metadata["training"]
    day = local_days(samples["ts"], tz)
    assert training["tz"] == tz
    assert (training["train_start"], training["train_end"]) == (day.min(), "2022-04-28")
    assert (training["eval_start"], training["eval_end"]) == ("2022-04-29", day.max())
    assert training["train_rows"] == int((day <= "2022-04-28").sum())


@pytest.mark.parametrize("tz", ZONES[:2])
def test_score_selects_local_days(tz, bundles, samples, tmp_path):
    out = tmp_path / "scores.csv"
    assert score_main([str(bundles[tz]), REAL, "--start", "2022-04-30", "--end", "2022-04-30", "--tz", tz,
                       "--out", str(out)]) == 0
    scores = pd.read_csv(out)
    expected = samples.loc[local_days(samples["ts"], tz) == "2022-04-30", ["request_id", "item_id"]]
    assert sorted(map(tuple, scores[["request_id", "item_id"]].to_numpy())) == sorted(map(tuple, expected.to_numpy()))


def test_explain_with_tz_scores_as_score_does(bundles, samples, tmp_path, capsys):
    tz = "Asia/Shanghai"
    # An exposure after Shanghai midnight but before UTC midnight: its day differs between the zones.
    hour = pd.to_datetime(samples["ts"], unit="s", utc=True).dt.tz_convert(tz).dt.hour
    row = samples.loc[(local_days(samples["ts"], tz) == "2022-04-30") & (hour < 8)].iloc[0]
    out = tmp_path / "scores.csv"
    assert score_main([str(bundles[tz]), REAL, "--start", "2022-04-30", "--end", "2022-04-30", "--tz", tz,
                       "--out", str(out)]) == 0
    scores = pd.read_csv(out).set_index(["request_id", "item_id"])["score"]
    capsys.readouterr()
    assert explain_main([str(bundles[tz]), REAL, "--request-id", str(row["request_id"]),
                         "--item-id", str(row["item_id"]), "--tz", tz]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    score = float(re.search(r"score (\S+)", head).group(1))
    assert score == pytest.approx(scores[(row["request_id"], row["item_id"])], abs=1e-6)
