"""One exit-status convention for every command line of the project (``ltr._cli.command``).

Each CLI: ``--help`` exits 0; a usage error (a missing required argument) exits 2 with
argparse's message; a user error (a missing or broken input, a bad value) exits 1 with a
single ``error: ...`` paragraph on stderr and no traceback. The checks call each module's
``main(argv)`` in-process (it returns the status); a few run ``python -m`` to prove the wiring.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "fixtures" / "world"
BROKEN_LOGS = ROOT / "fixtures" / "broken" / "unknown_request_in_exposures"
DAY = "2026-01-10"


@dataclass(frozen=True)
class Cli:
    """A command line and argument lists for each outcome (``{tmp}`` is a fresh directory)."""

    module: str
    usage_error: tuple[str, ...]
    user_error: tuple[str, ...]
    message: str  # part of the expected error paragraph
    help_args: tuple[str, ...] = ("--help",)


CLIS = [
    Cli("ltr.train", (str(LOGS), "--model", "lr"),
        ("{tmp}/no_logs", "--model", "lr", "--train-end", DAY, "--out", "{tmp}/bundle"), "does not exist"),
    Cli("ltr.score", ("{tmp}/bundle",),
        ("{tmp}/no_bundle", str(LOGS), "--start", DAY, "--end", DAY, "--out", "{tmp}/s.csv"),
        "manifest.json is missing"),
    Cli("ltr.explain", ("{tmp}/bundle", str(LOGS)),
        ("{tmp}/no_bundle", str(LOGS), "--request-id", "1", "--item-id", "1"), "manifest.json is missing"),
    Cli("ltr.logs", ("validate",), ("validate", str(BROKEN_LOGS)),
        "logs table 'exposures', column 'request_id'", help_args=("validate", "--help")),
    Cli("ltr.simulate", ("--users", "10"), ("{tmp}/world", "--users", "0"), "users must be an int in [1, inf)"),
    Cli("recall.train", (str(LOGS), "--model", "hot"),
        ("{tmp}/no_logs", "--model", "hot", "--train-end", DAY, "--out", "{tmp}/hot"), "does not exist"),
    Cli("recall.retrieve", ("{tmp}/hot", str(LOGS)),
        ("{tmp}/no_source", str(LOGS), "--start", DAY, "--end", DAY, "--out", "{tmp}/c.csv"), "no_source"),
    Cli("recall.merge", ("--out", "{tmp}/m.csv"),
        ("{tmp}/missing.parquet", "--quota", "hot=10", "--out", "{tmp}/m.csv"), "missing.parquet"),
    Cli("eval.report", ("--quiet",), ("{tmp}/no_logs", "--quiet"), "does not exist"),
]
IDS = [cli.module for cli in CLIS]


def _main(module: str) -> Callable[[list[str] | None], int]:
    """``main`` of a command module; a package's command line is its ``__main__``."""
    mod = importlib.import_module(module)
    if hasattr(mod, "__path__"):
        mod = importlib.import_module(f"{module}.__main__")
    return mod.main


def _run(module: str, argv: list[str]) -> int:
    try:
        return _main(module)(argv)
    except SystemExit as exc:
        pytest.fail(f"{module}.main raised SystemExit({exc.code!r}) instead of returning the status; "
                    "wrap it with ltr._cli.command")


def _argv(args: tuple[str, ...], tmp: Path) -> list[str]:
    return [arg.replace("{tmp}", str(tmp)) for arg in args]


def _check_user_error(err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"stderr must be one error paragraph, got:\n{err}"
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("cli", CLIS, ids=IDS)
def test_help_exits_0(cli, capsys):
    assert _run(cli.module, list(cli.help_args)) == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("cli", CLIS, ids=IDS)
def test_usage_error_exits_2(cli, capsys, tmp_path):
    assert _run(cli.module, _argv(cli.usage_error, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "error: the following arguments are required" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("cli", CLIS, ids=IDS)
def test_user_error_exits_1_with_one_paragraph(cli, capsys, tmp_path):
    assert _run(cli.module, _argv(cli.user_error, tmp_path)) == 1
    _check_user_error(capsys.readouterr().err, cli.message)


@pytest.mark.parametrize(("module", "kind", "status"), [
    ("ltr.score", "user_error", 1),
    ("ltr.train", "usage_error", 2),
    ("ltr.explain", "help_args", 0),
])
def test_python_m_wiring(module, kind, status, tmp_path):
    cli = next(c for c in CLIS if c.module == module)
    # -W error::RuntimeWarning: runpy warns when ``python -m ltr.x`` would import ltr.x twice.
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", module,
                           *_argv(getattr(cli, kind), tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    if status == 1:
        _check_user_error(proc.stderr, cli.message)
