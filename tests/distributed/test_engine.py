"""The Dask engine against the single-machine engine on the fixture world written partitioned,
on a LocalCluster of 2 workers: the same join report, readout JSON and recall candidate lists;
bad input, an unreachable scheduler and a dying worker give clear errors."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from eval.ab._table import segment_labels
from eval.report.__main__ import main as report_main
from eval.report._build import build_readout, readout_of_tables
from eval.report._dask import dask_tables
from ltr.distributed import EngineError, EngineOptions, dask_client, open_logs
from ltr.logs import LogValidationError, join_samples, parse_day, read_logs
from recall._dask_counts import fit_on_dask
from recall.hot import HotRecall
from recall.itemcf import ItemCFRecall
from recall.train import main as recall_train

TRAIN_END = parse_day("2026-01-14")


def _address(cluster) -> list[str]:
    return ["--engine", "dask", "--scheduler", cluster.scheduler_address]


def test_join_report_adds_up_to_the_single_machine_one(opened, partitioned, world_logs):
    assert opened.report == join_samples(read_logs(partitioned)).report == join_samples(world_logs).report
    assert opened.rows["exposures"] == len(world_logs.exposures) and len(opened.keys) == 14


def test_readout_json_is_identical(cluster, partitioned, tmp_path):
    local, dask = tmp_path / "local.json", tmp_path / "dask.json"
    common = [str(partitioned), "--format", "json", "--quiet", "--aa-splits", "100"]
    assert report_main([*common, "--out", str(local)]) == 0
    assert report_main([*common, "--out", str(dask), *_address(cluster)]) == 0
    assert dask.read_bytes() == local.read_bytes()
    readout = json.loads(dask.read_text())
    assert readout["join"]["exposures_in"] == 138915 and readout["ab"]["available"]


@pytest.mark.parametrize(("unit", "segment", "options"), [
    ("request", "device", dict(aa_splits=50, cuped=False, sequential=True)),
    ("user", None, dict(aa_splits=20, cuped=True, start_day=parse_day("2026-01-09"), control="control",
                        treatment="treatment", adjust="bh")),
    ("user", "device", dict(aa_splits=0, experiment_start=parse_day("2026-01-10"), cuped=True, alpha=0.1)),
])
def test_readout_from_dask_tables_is_the_single_machine_one(opened, partitioned, unit, segment, options):
    logs = read_logs(partitioned)
    joined = join_samples(logs)
    facts, tables = dask_tables(opened, unit, segment)
    got = readout_of_tables(facts, tables, join_report=opened.report.to_dict(), **options)
    assert got == build_readout(logs, joined.samples, join_report=joined.report.to_dict(), unit=unit,
                                segment=segment, **options)
    assert got["ab"]["unit"] == unit and (got["segments"] is not None) == (segment is not None)
    assert got["ab"]["available"] and got["gauc"]["online"]["users_used"] > 0


class _Recording:
    """A Dask client that keeps every DataFrame it brings to the client (``gather``)."""

    def __init__(self, client) -> None:
        self.client, self.frames = client, []

    def gather(self, futures):
        out = self.client.gather(futures)
        self._collect(out)
        return out

    def _collect(self, value) -> None:
        if isinstance(value, pd.DataFrame):
            self.frames.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                self._collect(item)
        elif dataclasses.is_dataclass(value):
            self._collect(vars(value))

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.mark.parametrize(("unit", "segment"), [("user", None), ("request", "device")])
def test_the_client_gets_one_row_per_unit_day_score_and_user_not_per_exposure(opened, world_logs, unit, segment):
    recording = _Recording(opened.client)
    facts, tables = dask_tables(dataclasses.replace(opened, client=recording), unit, segment)
    days = tables.units.days()
    tables.user_aucs(days)
    tables.scores(days)
    facts.funnel(days)
    samples = join_samples(world_logs).samples.assign(segment=lambda f: segment_labels(f["device"]))
    keys = {"units": [f"{unit}_id", *(["user_id"] if unit == "request" else []), "bucket", "day",
                      *(["segment"] if segment else [])], "users": ["user_id"]}
    expected = {"units": samples.groupby(keys["units"]).ngroups,
                "users": samples.dropna(subset=["rank_score"])["user_id"].nunique()}
    kinds = {"units": [f for f in recording.frames if "first_ts" in f.columns],
             "users": [f for f in recording.frames if "twice_u" in f.columns]}
    for kind, frames in kinds.items():
        gathered = pd.concat(frames, ignore_index=True)
        assert not gathered.duplicated(keys[kind]).any() and len(gathered) == expected[kind], kind
    assert expected["units"] <= len(samples) / 5 and expected["users"] <= len(samples) / 5
    # The funnel's users: one row per (bucket, user) of each partition.
    pairs = [f for f in recording.frames if list(f.columns) == ["bucket", "user_id"]]
    assert pairs and all(not f.duplicated().any() and len(f) <= samples["user_id"].nunique() for f in pairs)
    # The rest: the funnel counts (a row per bucket) and the AUC table (all, each day, each bucket).
    rest = [f for f in recording.frames if all(f is not g for frames in [*kinds.values(), pairs] for g in frames)]
    assert rest and max(len(f) for f in rest) <= 1 + samples["day"].nunique() + samples["bucket"].nunique()


@pytest.mark.parametrize(("cls", "params"),
                         [(ItemCFRecall, {}), (HotRecall, {}), (HotRecall, {"exposure_weight": 0.1})])
def test_recall_sources_give_the_same_candidate_lists(opened, world_logs, cls, params):
    requests = world_logs.requests.loc[world_logs.requests["ts"] >= (TRAIN_END + 1) * 86_400].head(1500)
    local = cls(**params).fit(world_logs, TRAIN_END)
    dask = fit_on_dask(cls(**params), opened, TRAIN_END)
    got, expected = dask.retrieve(requests, world_logs, 50), local.retrieve(requests, world_logs, 50)
    pd.testing.assert_frame_equal(got[["request_id", "item_id", "rank", "source"]],
                                  expected[["request_id", "item_id", "rank", "source"]])
    # Sums over users or partitions in another order: equal up to the last bits of a float.
    np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-12)
    if cls is HotRecall:
        np.testing.assert_array_equal(dask.count_value_, local.count_value_)


def test_recall_train_cli_writes_the_source(cluster, partitioned, tmp_path, capsys):
    out = tmp_path / "hot"
    assert recall_train([str(partitioned), "--model", "hot", "--train-end", "2026-01-14", "--out", str(out),
                         *_address(cluster)]) == 0
    assert (out / "manifest.json").is_file() and not list(tmp_path.glob(".hot*"))
    capsys.readouterr()
    assert recall_train([str(partitioned), "--model", "nip", "--train-end", "2026-01-14", "--out",
                         str(tmp_path / "nip"), *_address(cluster)]) == 1
    assert "NIP and two-tower train on one machine" in capsys.readouterr().err


def test_partition_errors_name_the_partition(client, partitioned, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(partitioned, logs)
    file = sorted((logs / "clicks").rglob("*.parquet"))[4]
    frame = pd.read_parquet(file)
    frame.loc[0, "ts"] = 1_000_000_000  # long before its exposure
    frame.to_parquet(file, index=False)
    key = file.relative_to(logs / "clicks").with_suffix("").as_posix()
    with pytest.raises(LogValidationError, match=rf"'clicks', column 'ts': partition {key}: 1 click\(s\) happen "
                                                 "before their exposure"):
        open_logs(client, logs)


def test_disagreeing_partitions_and_repeated_requests(client, partitioned, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(partitioned, logs)
    files = sorted((logs / "requests").rglob("*.parquet"))
    first = pd.read_parquet(files[0])
    pd.concat([pd.read_parquet(files[1]), first.iloc[:1]]).to_parquet(files[1], index=False)
    with pytest.raises(LogValidationError, match="1 request_id\\(s\\) appear in more than one partition"):
        open_logs(client, logs)
    first.assign(user_id=first["user_id"].astype(float)).to_parquet(files[0], index=False)
    with pytest.raises(LogValidationError, match=r"'requests', column 'user_id'.*disagree on dtypes"):
        open_logs(client, logs)


def test_dask_readout_refuses_what_it_cannot_do_yet(cluster, partitioned, capsys):
    assert report_main([str(partitioned), "--candidates", "x.csv", "--quiet", *_address(cluster)]) == 1
    assert "--candidates is not available with --engine dask" in capsys.readouterr().err
    assert report_main([str(partitioned), "--scheduler", "tcp://127.0.0.1:1", "--quiet"]) == 1
    assert "--scheduler needs --engine dask" in capsys.readouterr().err


def test_unreachable_scheduler_fails_clearly_within_the_timeout(partitioned, capsys):
    start = time.monotonic()
    status = report_main([str(partitioned), "--quiet", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9",
                          "--scheduler-timeout", "2"])
    assert status == 1 and time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert err.startswith("error: --scheduler tcp://127.0.0.1:9: no Dask scheduler answered within 2 s")
    assert "Traceback" not in err


@pytest.mark.parametrize(("raised", "becomes"), [
    (KeyError("tcp://127.0.0.1:40123"), EngineError),   # the scheduler's replicate, worker gone
    (KeyError("tcp://127.0.0.1"), KeyError),             # no port: not a worker's address
    (KeyError("user_id"), KeyError),                     # a column: a bug, not the cluster
    (KeyError(("tcp://127.0.0.1:40123", 1)), KeyError),
    (ValueError("tcp://127.0.0.1:40123"), ValueError),
])
def test_a_worker_gone_during_a_broadcast_is_an_engine_error(cluster, raised, becomes):
    options = EngineOptions(engine="dask", scheduler=cluster.scheduler_address)
    with pytest.raises(becomes) as caught, dask_client(options):
        raise raised
    if becomes is EngineError:
        # The commands' tests (test_ranker.py) recognise a dead worker by this opening.
        assert str(caught.value).startswith("a Dask worker died or left (tcp://127.0.0.1:40123)")
        assert "No output was written" in str(caught.value)
    else:
        assert caught.value is raised


def _die() -> None:
    os._exit(1)


def test_a_worker_dying_mid_run_is_a_clear_error(cluster, tmp_path):
    # Runs last in this file: the nannies restart the killed workers for the next session user.
    options = EngineOptions(engine="dask", scheduler=cluster.scheduler_address)
    with pytest.raises(EngineError, match="a Dask worker died while running"), dask_client(options) as client:
        client.submit(_die, pure=False).result()
    with dask_client(options) as client:
        client.wait_for_workers(2, timeout=60)
