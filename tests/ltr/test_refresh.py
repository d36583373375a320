"""Tests for ltr.refresh: a refreshed bundle scores the next day exactly as ltr.score on the full logs."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.features import labelled_samples
from ltr.logs import format_day, parse_day, read_logs
from ltr.refresh import main as refresh_main
from ltr.refresh import refresh_bundle
from ltr.score import score_logs
from ltr.serving import Ranker, StaleStatisticsWarning
from ltr.train import train_ranker

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "fixtures" / "real"
TZ = "Asia/Shanghai"
TRAIN_END = "2022-04-27"


@pytest.fixture(scope="module")
def logs():
    return read_logs(REAL, tz=TZ)


@pytest.fixture(scope="module")
def rankers(logs):
    lgbm = {"num_boost_round": 20, "num_threads": 1, "min_data_in_leaf": 20}
    return {
        "lr": train_ranker(logs, "lr", TRAIN_END, tz=TZ, leakage_check=False),
        "lgbm": train_ranker(logs, "lgbm", TRAIN_END, tz=TZ, model_params=lgbm, leakage_check=False),
    }


@pytest.mark.parametrize("model", ["lr", "lgbm"])
@pytest.mark.parametrize("through", ["2022-04-28", "2022-04-29"])
def test_refreshed_bundle_scores_next_day_as_score_on_full_logs(rankers, logs, model, through):
    ranker = rankers[model]
    refreshed = refresh_bundle(ranker, logs, through)
    day = format_day(parse_day(through) + 1)
    reference = score_logs(ranker, logs, day, day, tz=TZ)
    samples = labelled_samples(logs, TZ)
    rows = samples.loc[samples["day"] == parse_day(day)].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleStatisticsWarning)  # the day after the statistics is fresh
        scores = refreshed.score(rows)
    np.testing.assert_array_equal(rows["request_id"].to_numpy(), reference["request_id"].to_numpy())
    np.testing.assert_allclose(scores, reference["score"].to_numpy(), rtol=0, atol=1e-12)
    # The model is untouched; only the statistics moved.
    assert refreshed.model is ranker.model
    assert refreshed.metadata["training"] == ranker.metadata["training"]
    assert refreshed.metadata["statistics"]["end"] == through
    assert ranker.metadata["statistics"]["end"] == TRAIN_END


def test_refresh_cli_writes_manifest_with_window_and_statistics_end(rankers, tmp_path, capsys):
    rankers["lgbm"].save(tmp_path / "bundle")
    out = tmp_path / "refreshed"
    assert refresh_main([str(tmp_path / "bundle"), str(REAL), "--through", "2022-04-29", "--out", str(out)]) == 0
    assert "statistics through 2022-04-29" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())["metadata"]
    assert manifest["training"]["train_end"] == TRAIN_END
    assert manifest["training"]["train_start"] == rankers["lgbm"].metadata["training"]["train_start"]
    assert manifest["statistics"]["end"] == "2022-04-29"
    assert manifest["statistics"]["refreshed"] is True
    assert manifest["statistics"]["frozen_through"] == TRAIN_END
    assert Ranker.load(out).statistics_end == "2022-04-29"


def test_score_warns_when_request_is_past_the_statistics(rankers, logs):
    ranker = rankers["lr"]
    samples = labelled_samples(logs, TZ)
    end = parse_day(TRAIN_END)
    next_day = samples.loc[samples["day"] == end + 1].head(5)
    later = samples.loc[samples["day"] == end + 2].head(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleStatisticsWarning)
        ranker.score(next_day)
    with pytest.warns(StaleStatisticsWarning, match="past the end of the bundle's statistics"):
        ranker.score(later)


@pytest.mark.parametrize("through", ["2022-04-01", "bad"])
def test_refresh_rejects_days_without_logs(rankers, logs, through):
    with pytest.raises((ValueError, TypeError)):
        refresh_bundle(rankers["lr"], logs, through)


@pytest.mark.parametrize(("offset", "stale"), [(-1, False), (0, True)])
def test_stale_warning_starts_at_local_midnight(rankers, logs, offset, stale):
    # Statistics through 2022-04-27: a request is stale from 2022-04-29 00:00 Asia/Shanghai.
    midnight = int(pd.Timestamp("2022-04-29", tz=TZ).timestamp())
    row = labelled_samples(logs, TZ).head(1).drop(columns="day").assign(ts=midnight + offset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rankers["lr"].score(row)
    assert any(issubclass(w.category, StaleStatisticsWarning) for w in caught) is stale
