"""The real-log fixture (a KuaiRand-Pure sample): it is what the importer makes of its flat export,
it validates with Shanghai days, and the acceptance run of issue #10 reports the right days."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.logs import join_samples, read_logs
from ltr.logs.__main__ import main as logs_main

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "fixtures" / "real"
FLAT = REAL / "flat"
TZ = "Asia/Shanghai"


def _make_real_fixture():
    """``fixtures/make_real_fixture.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("make_real_fixture", ROOT / "fixtures" / "make_real_fixture.py")
    if spec is None or spec.loader is None:
        raise ImportError("fixtures/make_real_fixture.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m module args`` as a user runs it, with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          check=False)


def shanghai_days(ts: pd.Series) -> pd.Series:
    """Independent reference: the local date string of epoch seconds in Asia/Shanghai."""
    return pd.to_datetime(ts, unit="s", utc=True).dt.tz_convert(TZ).dt.strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The acceptance run's first step: ``python -m ltr.logs import`` of the flat sample."""
    out = tmp_path_factory.mktemp("real") / "logs"
    proc = run("ltr.logs", "import", *_make_real_fixture().import_args(FLAT, out))
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_committed_tables_are_what_the_importer_makes(imported):
    out, text = imported
    committed, fresh = read_logs(REAL, tz=TZ), read_logs(out, tz=TZ)
    assert set(committed.tables()) == {"requests", "exposures", "clicks", "items", "users", "outcomes"}
    for name, frame in fresh.tables().items():
        pd.testing.assert_frame_equal(committed.tables()[name], frame,
                                      obj=f"fixtures/real/{name} (re-run fixtures/make_real_fixture.py if deliberate)")
    assert "ts <- time_ms (epoch milliseconds -> seconds)" in text
    assert "dropped: 22 column(s) no option names: date, hourmin, is_follow," in text
    assert sum(f.stat().st_size for f in REAL.rglob("*") if f.is_file()) < 3_000_000


def test_fixture_validates_with_shanghai_days_and_counts_category_less_items(capsys):
    assert logs_main(["validate", str(REAL), "--tz", TZ]) == 0
    text = capsys.readouterr().out
    logs = read_logs(REAL, tz=TZ)
    days = shanghai_days(logs.exposures["ts"]).value_counts().sort_index()
    assert f"Days in {TZ}: {days.index[0]} .. {days.index[-1]} ({len(days)} days)" in text
    assert (days.index[0], days.index[-1]) == ("2022-04-24", "2022-04-30")
    items = pd.read_csv(FLAT / "items.csv")
    tagless = items.loc[items["tag"].isna(), "video_id"]
    assert f"{len(items):,d} items; {len(tagless)} items have no category: they share the missing level" in text
    samples = join_samples(logs).samples
    n_tagless = int(samples["item_id"].isin(tagless).sum())
    assert 0 < n_tagless < len(samples)
    assert re.search(rf"item without a category +{n_tagless} ", text)
    assert logs.items.loc[logs.items["item_id"].isin(tagless), "category"].isna().all()


def test_flat_milliseconds_without_ts_unit_fail_with_the_unit(tmp_path):
    args = _make_real_fixture().import_args(FLAT, tmp_path / "logs")
    unit = args.index("--ts-unit")
    proc = run("ltr.logs", "import", *args[:unit], *args[unit + 2:])
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: logs table 'interactions', column 'time_ms': 4,493 timestamp(s) lie outside "
                                  "2000-01-01..2100-01-01 when read as epoch seconds; these look like milliseconds: "
                                  "pass --ts-unit ms")
    assert "Traceback" not in proc.stderr


def test_acceptance_import_validate_train_report_shanghai_days(imported, tmp_path):
    out, _ = imported
    validated = run("ltr.logs", "validate", str(out), "--tz", TZ)
    assert validated.returncode == 0, validated.stderr
    assert f"Days in {TZ}: 2022-04-24 .. 2022-04-30 (7 days)" in validated.stdout
    trained = run("ltr.train", str(out), "--model", "lr", "--tz", TZ, "--train-end", "2022-04-28",
                  "--out", str(tmp_path / "lr"))
    assert trained.returncode == 0, trained.stderr
    samples = join_samples(read_logs(out)).samples
    day = shanghai_days(samples["ts"])
    n_train, n_eval = int((day <= "2022-04-28").sum()), int((day > "2022-04-28").sum())
    # The sample's first Shanghai day is 2022-04-24 (exposures after 23:00 that the dataset's own
    # `date` column labels 04-25): training covers 04-24..04-28, evaluation 04-29..04-30.
    assert (f"trained on 2022-04-24..2022-04-28 ({n_train} rows" in trained.stdout
            and f"evaluated on 2022-04-29..2022-04-30 ({n_eval} rows)" in trained.stdout), trained.stdout
    assert np.isin(day.unique(), [f"2022-04-{d}" for d in range(24, 31)]).all()
