"""The hive-partitioned layout: ``python -m ltr.logs partition``, reading it whole, and its bad input."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from ltr.logs import LogValidationError, join_samples, read_logs, write_partitioned
from ltr.logs.__main__ import main as logs_main
from ltr.logs._partitioned import atomic_directory

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "fixtures" / "world"


@pytest.fixture(scope="module")
def world():
    return read_logs(WORLD)


@pytest.fixture(scope="module")
def plogs(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "plogs"
    assert logs_main(["partition", str(WORLD), "--out", str(out), "--parts-per-day", "2"]) == 0
    return out


def _copy(plogs: Path, tmp_path: Path) -> Path:
    target = tmp_path / "logs"
    shutil.copytree(plogs, target)
    return target


def test_layout_is_hive_partitioned_and_colocated(world, plogs):
    days = sorted(p.name for p in (plogs / "exposures").iterdir())
    assert days[0].startswith("day=") and len(days) == 14
    assert sorted(p.name for p in (plogs / "exposures" / days[0]).iterdir()) == ["part-00000.parquet",
                                                                               "part-00001.parquet"]
    assert (plogs / "items" / "part-00000.parquet").is_file()
    # Each request's exposures and clicks sit in the request's own partition.
    part = pd.read_parquet(plogs / "requests" / days[3] / "part-00001.parquet")
    exposed = pd.read_parquet(plogs / "exposures" / days[3] / "part-00001.parquet")
    assert set(exposed["request_id"]) <= set(part["request_id"])


@pytest.mark.parametrize("table", ["requests", "exposures", "clicks", "candidates", "orders", "items", "users"])
def test_read_whole_gives_the_same_tables(world, plogs, table):
    got = getattr(read_logs(plogs), table)
    expected = getattr(world, table)
    key = [c for c in ("request_id", "item_id", "user_id", "ts") if c in expected.columns]
    pd.testing.assert_frame_equal(got.sort_values(key, kind="stable").reset_index(drop=True),
                                  expected.sort_values(key, kind="stable").reset_index(drop=True))


def test_join_report_and_samples_equal_the_flat_logs(world, plogs):
    flat, part = join_samples(world), join_samples(read_logs(plogs))
    assert part.report == flat.report
    pd.testing.assert_frame_equal(part.samples, flat.samples)


def test_validate_prints_the_same_report(plogs, capsys):
    assert logs_main(["validate", str(WORLD)]) == 0
    flat = capsys.readouterr().out.splitlines()[1:]
    assert logs_main(["validate", str(plogs)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == flat


def _first(plogs: Path, table: str) -> Path:
    return sorted((plogs / table).rglob("*.parquet"))[0]


def test_partitions_disagreeing_on_dtype_name_table_partition_and_column(plogs, tmp_path):
    logs = _copy(plogs, tmp_path)
    file = _first(logs, "clicks")
    frame = pd.read_parquet(file)
    frame["item_id"] = frame["item_id"].astype(str)
    frame.to_parquet(file, index=False)
    with pytest.raises(LogValidationError, match=r"'clicks', column 'item_id'.*disagree on dtypes.*day=") as err:
        read_logs(logs)
    assert err.value.table == "clicks" and err.value.column == "item_id"


def test_partitions_disagreeing_on_columns(plogs, tmp_path):
    logs = _copy(plogs, tmp_path)
    file = sorted((logs / "exposures").rglob("*.parquet"))[5]
    pd.read_parquet(file).assign(extra=1.0).to_parquet(file, index=False)
    with pytest.raises(LogValidationError, match=r"'exposures', column 'extra'.*disagree on columns.*partition day="):
        read_logs(logs)


def test_row_outside_its_requests_partition_is_refused(plogs, tmp_path):
    logs = _copy(plogs, tmp_path)
    files = sorted((logs / "clicks").rglob("*.parquet"))
    moved, target = pd.read_parquet(files[0]), pd.read_parquet(files[3])
    pd.concat([target, moved.iloc[:1]]).to_parquet(files[3], index=False)
    moved.iloc[1:].to_parquet(files[0], index=False)
    with pytest.raises(LogValidationError, match=r"'clicks', column 'request_id'.*another partition than their "
                                                 r"request.*ltr.logs partition"):
        read_logs(logs)


def test_partition_cli_bad_input_and_nothing_half_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert logs_main(["partition", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err and not out.exists()
    assert logs_main(["partition", str(WORLD), "--out", str(out), "--parts-per-day", "0"]) == 1
    assert "parts_per_day must be an int in [1, inf). Got 0 instead." in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_atomic_directory_keeps_the_old_output_on_failure(tmp_path):
    target = tmp_path / "dir"
    target.mkdir()
    (target / "old.txt").write_text("old")
    def fail_half_way() -> None:
        with atomic_directory(target) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_half_way()
    assert [p.name for p in target.iterdir()] == ["old.txt"] and not list(tmp_path.glob(".dir*"))
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_write_partitioned_one_part_per_day(world, tmp_path):
    written = write_partitioned(world, tmp_path / "one")
    assert written["requests"] == 14 and written["items"] == 1
    assert read_logs(tmp_path / "one").exposures.shape == world.exposures.shape
