"""The recall command lines: ``python -m recall.train``, ``recall.retrieve`` and ``recall.merge``.

One exit-status convention (``ltr._cli``): 0 on success (``--help`` included), 2 for an
argparse usage error, 1 for bad input with a one-paragraph ``error: ...`` and no traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.logs import format_day, write_logs
from recall import merge as merge_cli
from recall import retrieve as retrieve_cli
from recall import train as train_cli
from recall.itemcf import ItemCFRecall
from recall.merge import merge
from recall.neural import TwoTowerRecall
from tests.recall.worlds import simulated

ROOT = Path(__file__).resolve().parents[2]
MAINS = {"recall.train": train_cli.main, "recall.retrieve": retrieve_cli.main, "recall.merge": merge_cli.main}


@pytest.fixture(scope="module")
def saved(contract_world, fitted, tmp_path_factory):
    """The contract world's logs and its fitted item-CF and NIP sources, on disk."""
    root = tmp_path_factory.mktemp("cli")
    write_logs(contract_world.logs, root / "logs")
    for name in ("itemcf", "nip"):
        fitted(name).save(root / name)
    return root


def _user_error(capsys, pattern: str) -> None:
    """stderr holds one ``error:`` paragraph matching ``pattern`` and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert pd.Series([lines[0]]).str.contains(pattern).all(), err


@pytest.mark.parametrize("module", sorted(MAINS))
def test_help_exits_0_through_python_m(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: python -m {module}" in proc.stdout


@pytest.mark.parametrize(("module", "argv"), [
    ("recall.train", ["logs", "--model", "itemcf"]),  # --train-end and --out missing
    ("recall.retrieve", ["source", "logs", "--start", "2026-01-01", "--out", "x.csv"]),  # --end missing
    ("recall.retrieve", ["source", "logs", "--start", "2026-01-01", "--end", "2026-01-01", "--k", "many",
                         "--out", "x.csv"]),
    ("recall.merge", ["a.csv", "--out", "m.csv"]),  # --quota missing
])
def test_usage_errors_exit_2(module, argv, capsys):
    assert MAINS[module](argv) == 2
    err = capsys.readouterr().err
    assert f"usage: python -m {module}" in err and "Traceback" not in err


def test_train_then_retrieve(saved, contract_world, fitted, tmp_path, capsys):
    logs, train_end, _ = contract_world
    assert train_cli.main([str(saved / "logs"), "--model", "itemcf", "--train-end", format_day(train_end),
                           "--out", str(tmp_path / "m"), "--set", "alpha=0.4"]) == 0
    assert ItemCFRecall.load(tmp_path / "m").alpha == 0.4
    day = format_day(train_end + 1)
    out = tmp_path / "c.parquet"
    assert retrieve_cli.main([str(saved / "nip"), str(saved / "logs"), "--start", day, "--end", day, "--k", "7",
                              "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    requests = logs.requests.loc[logs.requests["request_id"].isin(pd.read_parquet(out)["request_id"])]
    assert len(requests) == (np.floor_divide(logs.requests["ts"], 86_400) == train_end + 1).sum()
    pd.testing.assert_frame_equal(pd.read_parquet(out), fitted("nip").retrieve(requests, logs, 7))


@pytest.mark.parametrize(("logs_dir", "args", "pattern"), [
    ("logs", ["--model", "nope"], r"model must be one of \['hot', 'itemcf', 'nip', 'two_tower'\]\. Got 'nope'"),
    ("logs", ["--model", "itemcf", "--set", "alpha=high"], r"--set alpha must be a float\. Got 'high' instead\."),
    ("logs", ["--model", "itemcf", "--set", "alpha=2"], r"alpha must be a float in \[0\.0, 1\.0\]\. Got 2\.0"),
    ("logs", ["--model", "itemcf", "--set", "beta=1"], r"ItemCFRecall has no parameter 'beta'"),
    ("logs", ["--model", "itemcf", "--train-end", "yesterday"], r"--train-end must be a date like 2026-01-31"),
    ("missing", ["--model", "itemcf"], r"log directory '.*missing' does not exist"),
])
def test_train_bad_input_exits_1(saved, contract_world, tmp_path, capsys, logs_dir, args, pattern):
    argv = [str(saved / logs_dir), "--train-end", format_day(contract_world.train_end), "--out", str(tmp_path / "m"),
            *args]
    assert train_cli.main(argv) == 1
    _user_error(capsys, pattern)


@pytest.mark.parametrize(("source", "args", "pattern"), [
    ("itemcf", ["--k", "0"], r"--k must be an int in \[1, inf\)\. Got 0 instead\."),
    ("itemcf", ["--exact"], r"--exact applies to graph-searched sources \(nip, two_tower\), not 'itemcf'"),
    ("itemcf", ["--end", "2000-01-01"], r"--end must not be before --start"),
    ("itemcf", ["--start", "1999-01-01", "--end", "1999-01-02"], r"no requests between 1999-01-01 and 1999-01-02"),
    ("logs", [], r"not a recall directory: manifest\.json is missing"),
    ("tampered", [], r"checksum mismatch"),
])
def test_retrieve_bad_input_exits_1(saved, contract_world, tmp_path, capsys, source, args, pattern):
    directory = saved / source
    if source == "tampered":
        directory = tmp_path / "itemcf"
        ItemCFRecall.load(saved / "itemcf").save(directory)
        with open(directory / "itemcf.npz", "ab") as handle:
            handle.write(b"\0")
    day = format_day(contract_world.train_end + 1)
    # argparse keeps the last of repeated options, so ``args`` override the default days.
    argv = [str(directory), str(saved / "logs"), "--out", str(tmp_path / "c.csv"), "--start", day, "--end", day,
            *args]
    assert retrieve_cli.main(argv) == 1
    _user_error(capsys, pattern)


def _frame(name, pairs):
    return pd.DataFrame({"request_id": [r for r, _ in pairs], "item_id": [i for _, i in pairs],
                         "score": np.linspace(1, 0, len(pairs)),
                         "rank": pd.Series([i for _, i in pairs]).groupby([r for r, _ in pairs]).cumcount() + 1,
                         "source": name})


def test_merge(tmp_path, capsys):
    a = _frame("itemcf", [(1, 10), (1, 11), (2, 12)])
    b = _frame("hot", [(1, 11), (1, 20), (2, 30)])
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_parquet(tmp_path / "b.parquet", index=False)
    out = tmp_path / "m.csv"
    assert merge_cli.main([str(tmp_path / "a.csv"), str(tmp_path / "b.parquet"), "--quota", "itemcf=1",
                           "--quota", "hot=1", "--out", str(out)]) == 0
    merged = pd.read_csv(out)
    pd.testing.assert_frame_equal(merged, merge([a, b], {"itemcf": 1, "hot": 1}), check_dtype=False)


@pytest.mark.parametrize(("files", "quotas", "pattern"), [
    (["a.csv"], ["hot=1"], r"quotas name an unknown source 'hot'"),
    (["a.csv"], ["itemcf=0"], r"quotas must sum to more than 0"),
    (["dup.csv"], ["itemcf=2"], r"duplicate \(request_id, item_id\)"),
    (["a.csv"], ["itemcf"], r"--quota must look like source=INT"),
    (["a.csv"], ["itemcf=1", "itemcf=2"], r"--quota must name each source once\. Got 'itemcf' twice\."),
    (["missing.csv"], ["itemcf=1"], r"candidates file must exist"),
])
def test_merge_bad_input_exits_1(tmp_path, capsys, files, quotas, pattern):
    a = _frame("itemcf", [(1, 10), (1, 11), (2, 12)])
    a.to_csv(tmp_path / "a.csv", index=False)
    pd.concat([a, a.iloc[[0]]]).to_csv(tmp_path / "dup.csv", index=False)
    argv = [str(tmp_path / f) for f in files] + [x for q in quotas for x in ("--quota", q)]
    assert merge_cli.main([*argv, "--out", str(tmp_path / "m.csv")]) == 1
    _user_error(capsys, pattern)


def test_retrieve_refuses_ef_below_k(tmp_path, capsys):
    """``--ef`` narrower than ``--k`` is a user error naming both (never silently widened)."""
    logs, train_end, _ = simulated(seed=3, users=100, items=120, days=3)
    logs_dir = tmp_path / "logs"
    write_logs(logs, logs_dir)
    TwoTowerRecall(epochs=1, val_k=0, dim=8, hidden=(8,)).fit(logs, train_end).save(tmp_path / "tt")
    day = format_day(train_end + 1)
    argv = [str(tmp_path / "tt"), str(logs_dir), "--start", day, "--end", day, "--k", "30", "--ef", "20",
            "--out", str(tmp_path / "c.csv")]
    assert MAINS["recall.retrieve"](argv) == 1
    assert "k must be <= ef_search (20)" in capsys.readouterr().err
    assert MAINS["recall.retrieve"]([*argv[:-4], "--ef", "40", "--out", str(tmp_path / "c.csv")]) == 0
