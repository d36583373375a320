"""Tests for the ltr.train, ltr.score and ltr.explain command lines."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr import explain, score, train
from ltr.artifacts import ArtifactError
from ltr.logs import format_day, read_logs
from ltr.serving import Ranker
from ltr.simulate import simulate_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    sim = simulate_world(users=250, items=300, days=5, seed=11)
    sim.save(root / "logs")
    first = int(sim.logs.requests["ts"].min() // 86_400)
    return root, first


@pytest.fixture(scope="module")
def bundle(world):
    root, first = world
    out = root / "lr_bundle"
    code = train.main([str(root / "logs"), "--model", "lr", "--train-end", format_day(first + 3), "--out", str(out)])
    assert code == 0
    return out


def test_train_prints_both_aucs(world, bundle, capsys):
    root, first = world
    out = root / "lgbm_bundle"
    code = train.main([str(root / "logs"), "--model", "lgbm", "--train-end", format_day(first + 3), "--out", str(out),
                       "--set", "num_boost_round=10", "--set", "min_data_in_leaf=20", "--set", "num_threads=2"])
    text = capsys.readouterr().out
    assert code == 0
    assert "offline AUC (lgbm)" in text and "online AUC (rank_score, same rows)" in text
    assert "mean predicted CTR" in text and f"bundle written to {out}" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metadata"]["model_params"]["num_boost_round"] == 10
    assert manifest["metadata"]["training"]["eval_start"] == format_day(first + 4)
    assert Ranker.load(bundle).metadata["training"]["converged"] is True


def test_score_writes_point_in_time_scores(world, bundle, capsys):
    root, first = world
    day = format_day(first + 4)
    out = root / "scores.csv"
    assert score.main([str(bundle), str(root / "logs"), "--start", day, "--end", day, "--out", str(out)]) == 0
    assert "scored" in capsys.readouterr().out
    written = pd.read_csv(out)
    assert list(written.columns) == ["request_id", "item_id", "score"]
    expected = score.score_logs(Ranker.load(bundle), read_logs(root / "logs"), day, day)
    assert len(written) == len(expected) > 0
    np.testing.assert_array_equal(written["score"].to_numpy(), expected["score"].to_numpy())
    assert score.main([str(bundle), str(root / "logs"), "--start", day, "--end", day,
                       "--out", str(root / "scores.parquet")]) == 0
    np.testing.assert_array_equal(pd.read_parquet(root / "scores.parquet")["score"], expected["score"])


def test_explain_prints_top_contributions(world, bundle, capsys):
    root, _ = world
    logs = read_logs(root / "logs")
    row = logs.exposures.iloc[-1]
    code = explain.main([str(bundle), str(root / "logs"), "--request-id", str(row["request_id"]),
                         "--item-id", str(row["item_id"]), "--top", "4"])
    text = capsys.readouterr().out
    assert code == 0
    assert f"request {row['request_id']} item {row['item_id']}" in text and "score" in text
    lines = [line for line in text.splitlines()[2:] if line.strip()]
    assert 1 <= len(lines) <= 4
    table = explain.explain_sample(Ranker.load(bundle), logs, row["request_id"], row["item_id"], top=4)
    assert table["feature"].iloc[0] in text


def _run(main, argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def test_train_bad_inputs(world, capsys, tmp_path):
    root, first = world
    logs = str(root / "logs")
    end = format_day(first + 3)
    cases = [
        (["--model", "xgb", "--train-end", end], "error: model must be one of ['lgbm', 'lr']. Got 'xgb' instead."),
        (["--model", "lr", "--train-end", "2030-01-01"], "error: train_end must be a day from"),
        (["--model", "lr", "--train-end", format_day(first + 4)], f"Got {format_day(first + 4)} instead."),
        (["--model", "lr", "--train-end", "17/01/2026"],
         "error: train_end must be a date like 2026-01-31. Got '17/01/2026'"),
        (["--model", "lr", "--train-end", end, "--set", "C"], "error: --set must look like name=value"),
        (["--model", "lr", "--train-end", end, "--inputs", "both"],
         "error: inputs must be 'onehot' for model 'lr'"),
    ]
    for extra, message in cases:
        code, err = _run(train.main, [logs, *extra, "--out", str(tmp_path / "b")], capsys)
        assert code == 1, extra
        assert message in err and "Traceback" not in err
    code, err = _run(train.main, [logs, "--model", "lr"], capsys)
    assert code == 2 and "error: the following arguments are required" in err
    code, err = _run(train.main, [str(tmp_path / "no_logs"), "--model", "lr", "--train-end", "2026-01-05",
                                  "--out", str(tmp_path / "b")], capsys)
    assert code == 1 and err.startswith("error: ")


def test_score_and_explain_bad_inputs(world, bundle, capsys, tmp_path):
    root, first = world
    logs = str(root / "logs")
    newer = tmp_path / "newer"
    shutil.copytree(bundle, newer)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["format_version"] += 1
    (newer / "manifest.json").write_text(json.dumps(manifest))
    day = format_day(first + 4)
    code, err = _run(score.main, [str(newer), logs, "--start", day, "--end", day, "--out", str(tmp_path / "s.csv")],
                     capsys)
    assert code == 1 and "newer than this library supports" in err and "Traceback" not in err
    code, err = _run(score.main, [str(bundle), logs, "--start", day, "--end", format_day(first + 2),
                                  "--out", str(tmp_path / "s.csv")], capsys)
    assert code == 1 and f"error: end must be on or after start ({day})" in err
    code, err = _run(score.main, [str(bundle), logs, "--start", "2030-01-01", "--end", "2030-01-02",
                                  "--out", str(tmp_path / "s.csv")], capsys)
    assert code == 1 and "error: start..end must contain exposures" in err
    code, err = _run(explain.main, [str(bundle), logs, "--request-id", "-5", "--item-id", "1"], capsys)
    assert code == 1 and "error: request_id and item_id must identify an exposure" in err
    code, err = _run(explain.main, [str(bundle), logs, "--request-id", "abc", "--item-id", "1"], capsys)
    assert code == 1 and "error: request_id must be an integer id like the logs'. Got 'abc'" in err
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    with open(tampered / "model" / "params.json", "a") as handle:
        handle.write(" ")
    code, err = _run(explain.main, [str(tampered), logs, "--request-id", "1", "--item-id", "1"], capsys)
    assert code == 1 and "checksum mismatch for 'model/params.json'" in err
    with pytest.raises(ArtifactError):
        Ranker.load(tampered)


def test_module_runs_without_traceback(world, tmp_path):
    root, _ = world
    proc = subprocess.run(
        [sys.executable, "-m", "ltr.train", str(root / "logs"), "--model", "svm", "--train-end", "2026-01-06",
         "--out", str(tmp_path / "b")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: model must be one of ['lgbm', 'lr']. Got 'svm' instead.")
    assert "Traceback" not in proc.stderr


def test_non_convergence_is_reported(world, capsys, tmp_path):
    root, first = world
    code = train.main([str(root / "logs"), "--model", "lr", "--train-end", format_day(first + 3),
                       "--out", str(tmp_path / "b"), "--set", "max_iter=2"])
    captured = capsys.readouterr()
    assert code == 0
    assert "warning: LogisticRegressionRanker did not converge in max_iter=2" in captured.err
    assert "warning: lbfgs did not converge in 2 iterations" in captured.out
    assert Ranker.load(tmp_path / "b").metadata["training"]["converged"] is False
