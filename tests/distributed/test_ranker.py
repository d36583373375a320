"""The ranker on Dask against the single-machine ranker, on the fixture world written partitioned
(LocalCluster of 2 workers): the fitted feature pipeline is bit-identical, the LightGBM model's
held-out AUC within 0.002, LR scikit-learn's lbfgs objective minimised over the workers' sums
(tests/distributed/test_lr_solver.py); the bundles load and serve like
local ones; an unreachable scheduler fails clearly and writes nothing."""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest
from distributed import WorkerPlugin

from ltr import Ranker
from ltr.distributed._lr import SOLVER as LR_SOLVER
from ltr.distributed._score import score_on_dask
from ltr.distributed._train import train_on_dask
from ltr.logs import parse_day
from ltr.refresh import main as refresh_main
from ltr.refresh import refresh_bundle
from ltr.score import main as score_main
from ltr.score import score_logs
from ltr.train import main, train_ranker
from tests.states import assert_same_state

TRAIN_END = parse_day("2026-01-15")


@pytest.fixture(scope="module")
def dask_lgbm(opened):
    return train_on_dask(opened, "lgbm", TRAIN_END)


@pytest.fixture(scope="module")
def local_lgbm(local_logs, local_data):
    return train_ranker(local_logs, "lgbm", data=local_data, leakage_check=False)


def test_feature_pipeline_fitted_on_dask_is_bit_identical(dask_lgbm, local_data):
    assert_same_state(dask_lgbm.features, local_data.builder)
    held_out = local_data.held_out.head(3000)
    a = dask_lgbm.features.transform(local_data.train)
    assert np.array_equal(a.dense, local_data.train_features.dense, equal_nan=True)
    assert (a.X != local_data.train_features.X).nnz == 0
    b = dask_lgbm.features.transform(held_out, history=local_data.samples)
    c = local_data.builder.transform(held_out, history=local_data.samples)
    assert np.array_equal(b.dense, c.dense, equal_nan=True) and (b.X != c.X).nnz == 0


def test_lightgbm_on_dask_is_within_0002_auc_and_serves_like_a_local_bundle(dask_lgbm, local_lgbm, local_data,
                                                                           tmp_path):
    got, expected = dask_lgbm.metadata["metrics"], local_lgbm.metadata["metrics"]
    assert got["rows"] == expected["rows"] == len(local_data.held_out)
    assert abs(got["auc"] - expected["auc"]) < 0.002
    training = dask_lgbm.metadata["training"]
    assert training["engine"]["solver"].startswith("lightgbm.dask.DaskLGBMClassifier")
    assert training["validation"]["chosen"]["num_boost_round"] >= 1
    assert training["train_rows"] == len(local_data.train)
    dask_lgbm.save(tmp_path / "bundle")
    loaded = Ranker.load(tmp_path / "bundle")
    scores = loaded.score(local_data.held_out, history=local_data.samples)
    np.testing.assert_allclose(scores.mean(), got["mean_predicted_ctr"], rtol=1e-12)
    assert loaded.metadata["training"]["engine"] == training["engine"]


def test_train_cli_on_dask_writes_an_lr_bundle_equal_in_auc(cluster, partitioned, local_logs, tmp_path, capsys):
    out = tmp_path / "lr"
    assert main([str(partitioned), "--model", "lr", "--train-end", "2026-01-15", "--out", str(out),
                 "--engine", "dask", "--scheduler", cluster.scheduler_address]) == 0
    assert "bundle written" in capsys.readouterr().out
    ranker = Ranker.load(out)
    local = train_ranker(local_logs, "lr", TRAIN_END, leakage_check=False)
    assert ranker.metadata["training"]["engine"]["solver"] == LR_SOLVER
    # The same objective minimised by the same L-BFGS-B, sums in another order: equal up to lbfgs' tolerance.
    assert ranker.metadata["training"]["validation"]["chosen"] == local.metadata["training"]["validation"]["chosen"]
    assert abs(ranker.metadata["metrics"]["auc"] - local.metadata["metrics"]["auc"]) < 1e-4


def test_train_cli_float32_inputs_on_dask(cluster, partitioned, local_lgbm, tmp_path, capsys):
    out = tmp_path / "lgbm32"
    engine = ["--engine", "dask", "--scheduler", cluster.scheduler_address]
    assert main([str(partitioned), "--model", "lgbm", "--train-end", "2026-01-15", "--out", str(out),
                 "--float32-inputs", "--no-leakage-check", *engine]) == 0
    ranker = Ranker.load(out)
    assert ranker.metadata["training"]["engine"]["inputs_dtype"] == "float32"
    # Other bins than float64's, so other trees: close to the local model, not within the float64 path's 0.002.
    assert abs(ranker.metadata["metrics"]["auc"] - local_lgbm.metadata["metrics"]["auc"]) < 0.005
    capsys.readouterr()
    # Only where it means something: LightGBM on Dask.
    assert main([str(partitioned), "--model", "lr", "--train-end", "2026-01-15", "--out", str(tmp_path / "x"),
                 "--float32-inputs", *engine]) == 2
    assert "--float32-inputs applies to --model lgbm" in capsys.readouterr().err


def test_train_cli_unreachable_scheduler_writes_nothing(partitioned, tmp_path, capsys):
    out = tmp_path / "never"
    start = time.monotonic()
    assert main([str(partitioned), "--model", "lgbm", "--train-end", "2026-01-15", "--out", str(out),
                 "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "2"]) == 1
    assert time.monotonic() - start < 30 and not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("error: --scheduler tcp://127.0.0.1:9: no Dask scheduler answered") and "Traceback" not in err


@pytest.mark.parametrize("trained", ["local", "dask"])
def test_scores_on_dask_are_identical_to_the_local_scorer(trained, dask_lgbm, local_lgbm, local_logs, opened,
                                                          tmp_path):
    ranker = dask_lgbm if trained == "dask" else local_lgbm
    start, end = TRAIN_END + 1, TRAIN_END + 2
    expected = score_logs(ranker, local_logs, start, end)
    out = tmp_path / "scores"
    assert score_on_dask(opened, ranker, start, end, out) == len(expected)
    files = sorted(out.glob("day=*/part-*.parquet"))
    assert [f.parent.name for f in files] == ["day=2026-01-16", "day=2026-01-17"]
    got = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    merged = expected.merge(got, on=["request_id", "item_id"], suffixes=("", "_dask"), validate="one_to_one")
    assert len(merged) == len(expected)
    np.testing.assert_array_equal(merged["score_dask"].to_numpy(), merged["score"].to_numpy())


def test_refresh_cli_on_dask_gives_the_local_refreshed_bundle(cluster, partitioned, local_lgbm, local_logs,
                                                               tmp_path, capsys):
    bundle, out = tmp_path / "bundle", tmp_path / "refreshed"
    local_lgbm.save(bundle)
    through = "2026-01-17"
    assert refresh_main([str(bundle), str(partitioned), "--through", through, "--out", str(out), "--engine",
                         "dask", "--scheduler", cluster.scheduler_address]) == 0
    assert "statistics through 2026-01-17" in capsys.readouterr().out
    got = Ranker.load(out)
    expected = refresh_bundle(Ranker.load(bundle), local_logs, parse_day(through))
    assert_same_state(got.features, expected.features)
    assert got.metadata["statistics"] == expected.metadata["statistics"]


@pytest.mark.parametrize("command", ["train", "score", "refresh"])
def test_ranker_commands_refuse_partitions_that_disagree_on_dtypes(command, cluster, partitioned, local_lgbm,
                                                                   tmp_path, capsys):
    logs, bundle, out = tmp_path / "logs", tmp_path / "bundle", tmp_path / "out"
    shutil.copytree(partitioned, logs)
    first = sorted((logs / "exposures").rglob("*.parquet"))[0]
    frame = pd.read_parquet(first)
    frame.assign(position=frame["position"].astype(float)).to_parquet(first, index=False)
    local_lgbm.save(bundle)
    engine = ["--engine", "dask", "--scheduler", cluster.scheduler_address]
    argv = {"train": (main, [str(logs), "--model", "lr", "--train-end", "2026-01-15", "--out", str(out)]),
            "score": (score_main, [str(bundle), str(logs), "--start", "2026-01-16", "--end", "2026-01-16",
                                   "--out", str(out)]),
            "refresh": (refresh_main, [str(bundle), str(logs), "--through", "2026-01-16", "--out", str(out)])}
    entry, args = argv[command]
    assert entry([*args, *engine]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "'exposures', column 'position'" in err and "disagree on dtypes" in err
    assert "Traceback" not in err and not out.exists()


class _DieWhen(WorkerPlugin):
    """Kills its worker whenever a task whose key names ``function`` starts there."""

    def __init__(self, function: str):
        self.function = function
        self.name = f"die-when-{function}"

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and self.function in str(key):
            os._exit(1)


def _run_with_dying_workers(client, function: str, run) -> int:
    from distributed.comm.core import CommClosedError

    client.register_plugin(_DieWhen(function))
    try:
        return run()
    finally:
        # The scheduler tells every worker to drop the plugin; one still restarting closes the
        # connection: wait for both, and tell them again.
        for attempt in range(3):
            client.wait_for_workers(2, timeout=60)
            try:
                client.unregister_worker_plugin(f"die-when-{function}")
                break
            except CommClosedError:
                if attempt == 2:
                    raise


# Last in this file: the nannies restart the killed workers.
@pytest.mark.parametrize(("command", "function"), [("score", "_write_scores"), ("train", "_round_losses"),
                                                   ("refresh", "labelled_samples_of")])
def test_a_worker_dying_mid_run_leaves_no_output(command, function, client, cluster, partitioned, local_lgbm,
                                                 tmp_path, capsys):
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    local_lgbm.save(bundle)
    engine = ["--engine", "dask", "--scheduler", cluster.scheduler_address]
    argv = {"score": (score_main, [str(bundle), str(partitioned), "--start", "2026-01-16", "--end", "2026-01-17",
                                   "--out", str(out)]),
            "train": (main, [str(partitioned), "--model", "lgbm", "--train-end", "2026-01-15", "--out", str(out)]),
            "refresh": (refresh_main, [str(bundle), str(partitioned), "--through", "2026-01-16", "--out", str(out)])}
    entry, args = argv[command]
    before = sorted(p.name for p in bundle.iterdir())
    status = _run_with_dying_workers(client, function, lambda: entry([*args, *engine]))
    err = capsys.readouterr().err
    # The worker dies in a task, or while the client sends it data (then the connection is lost).
    died = err.startswith(("error: a Dask worker died", "error: the connection to the Dask cluster"))
    assert status == 1 and died and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name not in ("bundle",)]
    assert sorted(p.name for p in bundle.iterdir()) == before  # the input bundle is untouched
