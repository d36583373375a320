"""Hive-partitioned log tables: a directory per table, ``<table>/day=YYYY-MM-DD/part-NNNNN.parquet``.

The layout
----------
A log directory may hold any table as a directory instead of a file. The event tables
(``requests``, ``exposures``, ``clicks``, ``candidates``, ``orders``, ``outcomes``) are split
by day: ``exposures/day=2024-05-01/part-00000.parquet``; ``items`` and ``users`` are not
(``items/part-00000.parquet``). Every file of a table has the same columns and dtypes.

One rule makes partitions independent: **a row keyed by a request lives in the partition of
its request** (same relative path in every table). The day of a partition is the calendar day
of its requests (in the zone given to ``python -m ltr.logs partition``); an exposure or click
just after midnight stays with its request. Orders without a request_id sit in the partition
of their own day. With that rule every check and join that follows a request_id stays inside
one partition, so validation and the join report run per partition and add up
(:mod:`ltr.distributed` does it in parallel); the single-machine engine reads all partitions
into one frame and checks the rule (:func:`check_colocated`).

:func:`write_partitioned` writes the layout (``python -m ltr.logs partition``), into a
temporary directory renamed on success.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ltr._validation import check_int
from ltr.logs._columns import example_row
from ltr.logs._contract import TABLE_SPECS, Logs, LogValidationError
from ltr.logs._time import day_index, format_day

__all__ = [
    "DIMENSION_TABLES",
    "EVENT_TABLES",
    "REQUEST_KEYED",
    "Partition",
    "atomic_directory",
    "check_colocated",
    "empty_frame",
    "is_partitioned",
    "partitions",
    "read_files",
    "table_files",
    "table_schema",
    "write_partitioned",
]

#: Tables split by day; every other table is one set of part files.
EVENT_TABLES = ("requests", "exposures", "clicks", "candidates", "orders", "outcomes")
#: Tables read whole on every partition's behalf (attributes).
DIMENSION_TABLES = ("items", "users")
#: Tables whose rows follow their request into its partition.
REQUEST_KEYED = ("exposures", "clicks", "candidates", "orders", "outcomes")

_PART = "part-{:05d}.parquet"


@dataclass(frozen=True)
class Partition:
    """One unit of work: the files of each event table at one relative path (``day=.../part-...``).

    ``files`` maps a table name to its file; a table without rows there has no entry.
    """

    key: str
    files: dict[str, Path]


def is_partitioned(root: str | Path) -> bool:
    """Whether any table of the log directory ``root`` is a directory."""
    base = Path(root)
    return any((base / name).is_dir() for name in TABLE_SPECS)


def table_files(root: Path, name: str) -> dict[str, Path]:
    """Relative key (``day=.../part-00000``) -> file of a partitioned table, sorted by key.

    Raises
    ------
    LogValidationError
        The directory holds no Parquet file.
    """
    base = root / name
    files = {file.relative_to(base).with_suffix("").as_posix(): file for file in sorted(base.rglob("*.parquet"))}
    if not files:
        raise LogValidationError(name, None, f"directory {base} holds no .parquet file.")
    return dict(sorted(files.items()))


def _type_name(field_type: object) -> str | None:
    """A comparable name of an Arrow type; None for the all-null type (compatible with any)."""
    text = str(field_type)
    if text == "null":
        return None
    return {"large_string": "string", "large_binary": "binary"}.get(text, text)


def table_schema(name: str, files: dict[str, Path]) -> dict[str, str | None]:
    """Column -> Arrow type name shared by every file of a partitioned table (metadata only).

    Raises
    ------
    LogValidationError
        Two partitions disagree on the columns or on a column's dtype; the error names the
        table, the partition and the column.
    """
    import pyarrow.parquet as pq

    reference: dict[str, str | None] = {}
    first = ""
    for key, file in files.items():
        try:
            schema = pq.read_schema(file)
        except Exception as exc:  # any reader failure is a problem of the logs
            raise LogValidationError(name, None, f"partition {key}: cannot read {file}: {exc}") from None
        columns = {field.name: _type_name(field.type) for field in schema if not field.name.startswith("__")}
        if not first:
            first, reference = key, columns
            continue
        _compare_schema(name, key, columns, first, reference)
    return reference


def _compare_schema(name: str, key: str, columns: dict[str, str | None], first: str,
                    reference: dict[str, str | None]) -> None:
    for column in sorted(set(reference) ^ set(columns)):
        where, other = (key, first) if column in columns else (first, key)
        raise LogValidationError(name, column, f"partitions disagree on columns: partition {where} has this column, "
                                 f"partition {other} does not.")
    for column, kind in columns.items():
        known = reference[column]
        if kind is not None and known is not None and kind != known:
            raise LogValidationError(name, column, f"partitions disagree on dtypes: partition {key} has {kind}, "
                                     f"partition {first} has {known}.")
        if known is None:
            reference[column] = kind


def empty_frame(file: Path) -> pd.DataFrame:
    """A frame without rows with the columns and dtypes of the Parquet ``file`` (for a table
    absent from a partition: the schema of another partition of the same table)."""
    import pyarrow.parquet as pq

    return pq.read_schema(file).empty_table().to_pandas()


def read_files(name: str, files: list[Path]) -> pd.DataFrame:
    """The rows of ``files`` (Parquet parts of table ``name``) in order, as one frame."""
    frames = []
    for file in files:
        try:
            frames.append(pd.read_parquet(file))
        except Exception as exc:  # any reader failure is a problem of the logs
            raise LogValidationError(name, None, f"cannot read {file}: {exc}") from None
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def partitions(root: str | Path, tables: tuple[str, ...] = EVENT_TABLES) -> list[Partition]:
    """The units of work of a partitioned log directory: one per relative path of ``requests``.

    Raises
    ------
    LogValidationError
        A request-keyed table has a partition that ``requests`` lacks (its rows could not
        reference a request of their partition).
    """
    base = Path(root)
    present = {name: table_files(base, name) for name in tables if (base / name).is_dir()}
    keys = list(present.get("requests", {}))
    for name, files in present.items():
        stray = [key for key in files if key not in present.get("requests", {}) and name != "orders"]
        if stray:
            raise LogValidationError(name, "request_id", f"partition {stray[0]} has no requests partition: rows keyed "
                                     "by a request live in the partition of their request.")
        keys += [key for key in files if key not in keys]
    ordered = sorted(set(keys))
    return [Partition(key, {name: files[key] for name, files in present.items() if key in files}) for key in ordered]


def check_colocated(frames: dict[str, pd.DataFrame], codes: dict[str, np.ndarray], keys: list[str]) -> None:
    """Every request-keyed row sits in the partition of its request (``codes``: partition per row).

    Raises
    ------
    LogValidationError
        Names the table, ``request_id``, the two partitions and an example row.
    """
    requests = frames["requests"]
    where = pd.Series(codes["requests"], index=requests["request_id"].to_numpy())
    where = where[~where.index.duplicated()]
    for name in REQUEST_KEYED:
        if name not in frames or name not in codes:
            continue
        frame = frames[name]
        has = frame["request_id"].notna().to_numpy()
        home = where.reindex(frame["request_id"].to_numpy()).to_numpy(dtype=np.float64, na_value=np.nan)
        wrong = has & ~np.isnan(home) & (home != codes[name])
        if wrong.any():
            first = int(np.flatnonzero(wrong)[0])
            raise LogValidationError(
                name, "request_id",
                f"{int(wrong.sum())} row(s) sit in another partition than their request (e.g. partition "
                f"{keys[int(codes[name][first])]}, request in {keys[int(home[first])]}): rows keyed by a request "
                "live in the partition of their request (python -m ltr.logs partition writes that layout).",
                example_row(frame, wrong))


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write into; on success it replaces ``path``.

    On an error the temporary directory is removed and ``path`` is left as it was, so a failed
    run never leaves output that looks complete.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def _partition_of_requests(logs: Logs, parts_per_day: int) -> pd.Series:
    """request_id -> relative key ``day=YYYY-MM-DD/part-NNNNN`` (day of the request in ``logs.tz``)."""
    requests = logs.requests
    day = day_index(requests["ts"].to_numpy(), logs.tz)
    part = np.zeros(len(requests), dtype=np.int64)
    if parts_per_day > 1:
        hashed = pd.util.hash_pandas_object(requests["request_id"], index=False).to_numpy()
        part = (hashed % np.uint64(parts_per_day)).astype(np.int64)
    labels = {d: f"day={format_day(int(d))}" for d in np.unique(day)}
    keys = [f"{labels[d]}/{_PART.format(p)[:-8]}" for d, p in zip(day.tolist(), part.tolist(), strict=True)]
    return pd.Series(keys, index=requests["request_id"].to_numpy())


def _row_keys(name: str, frame: pd.DataFrame, of_request: pd.Series, tz: str) -> np.ndarray:
    """Partition key of each row: its request's, else (orders without one) its own day's first part."""
    keys = np.full(len(frame), "", dtype=object)
    if "request_id" in frame.columns:
        has = frame["request_id"].notna().to_numpy()
        keys[has] = of_request.reindex(frame["request_id"].to_numpy()[has]).to_numpy()
    rest = keys == ""
    if rest.any():
        if name != "orders":
            raise LogValidationError(name, "request_id", "rows without a known request cannot be partitioned.",
                                     example_row(frame, rest))
        days = day_index(frame["ts"].to_numpy()[rest], tz)
        keys[rest] = [f"day={format_day(int(d))}/{_PART.format(0)[:-8]}" for d in days]
    return keys


def write_partitioned(logs: Logs, path: str | Path, parts_per_day: int = 1) -> dict[str, int]:
    """Write validated ``logs`` in the partitioned layout (see the module docstring).

    Parameters
    ----------
    logs : Logs
        Validated logs; days are counted in ``logs.tz``.
    path : str or Path
        Output directory (replaced when the write succeeds; untouched when it fails).
    parts_per_day : int, default 1
        Files per day and table; requests are spread over them by a hash of ``request_id``.

    Returns
    -------
    dict
        Files written per table.
    """
    parts_per_day = check_int(parts_per_day, "parts_per_day", minimum=1)
    of_request = _partition_of_requests(logs, parts_per_day)
    written: dict[str, int] = {}
    with atomic_directory(path) as tmp:
        for name, frame in logs.tables().items():
            if name in DIMENSION_TABLES:
                (tmp / name).mkdir()
                frame.to_parquet(tmp / name / _PART.format(0), index=False, compression="zstd")
                written[name] = 1
                continue
            keys = _row_keys(name, frame, of_request, logs.tz)
            written[name] = 0
            for key, rows in frame.groupby(keys, sort=True):
                target = tmp / name / f"{key}.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                rows.to_parquet(target, index=False, compression="zstd")
                written[name] += 1
    return written
