"""Log directories on disk: :func:`read_logs` (a Parquet or CSV file, or a directory of
hive-partitioned Parquet, per table) and :func:`write_logs`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ltr._validation import check_choice
from ltr.logs._contract import TABLE_SPECS, Logs, LogValidationError
from ltr.logs._partitioned import EVENT_TABLES, check_colocated, read_files, table_files, table_schema
from ltr.logs._time import check_ts_unit, check_tz
from ltr.logs._validate import from_frames

__all__ = ["read_logs", "read_table", "write_logs"]

_FORMATS = ("parquet", "csv")


def _find_table_file(root: Path, name: str) -> Path | None:
    found = [root / f"{name}.{ext}" for ext in _FORMATS if (root / f"{name}.{ext}").exists()]
    if (root / name).is_dir():
        found.append(root / name)
    if len(found) > 1:
        raise LogValidationError(name, None, f"both {found[0].name} and {found[1].name} exist; keep one.")
    return found[0] if found else None


def _read_partitioned(root: Path, names: list[str]) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray],
                                                              list[str]]:
    """Partitioned tables read whole: frames, the partition code of each row, the partition keys."""
    files = {name: table_files(root, name) for name in names}
    for name, parts in files.items():
        table_schema(name, parts)
    keys = sorted({key for name, parts in files.items() if name in EVENT_TABLES for key in parts})
    code_of = {key: i for i, key in enumerate(keys)}
    frames, codes = {}, {}
    for name, parts in files.items():
        frames[name] = read_files(name, list(parts.values()))
        if name in EVENT_TABLES:
            lengths = [_parquet_rows(file) for file in parts.values()]
            codes[name] = np.repeat([code_of[key] for key in parts], lengths)
    return frames, codes, keys


def _parquet_rows(file: Path) -> int:
    """Rows of a Parquet file (metadata only)."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(file).metadata.num_rows)


def read_table(path: Path, name: str) -> pd.DataFrame:
    """One table file (Parquet by suffix, else CSV); a reader failure is a :class:`LogValidationError`."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:
        # Any reader failure (corrupt Parquet, bad CSV quoting, ...) is a problem of the logs.
        raise LogValidationError(name, None, f"cannot read {path}: {exc}") from None


def read_logs(path: str | Path, tz: str = "UTC", ts_unit: str = "s", validate: bool = True) -> Logs:
    """Read a log directory per the contract and validate it.

    Parameters
    ----------
    path : str or Path
        Directory with ``requests``, ``exposures``, ``clicks`` and optional ``candidates``,
        ``orders``, ``items``, ``users``, ``outcomes`` tables as ``.parquet`` or ``.csv`` files,
        or as directories of hive-partitioned Parquet (:mod:`ltr.logs._partitioned`), read
        whole here (rows in partition order).
    tz : str, default "UTC"
        IANA time zone in which calendar days are counted.
    ts_unit : {"s", "ms", "us", "ns"}, default "s"
        Unit of numeric timestamps in the files (the validated logs hold epoch seconds).
    validate : bool, default True
        Run every contract check (:func:`~ltr.logs.from_frames`).

    Returns
    -------
    Logs

    Raises
    ------
    LogValidationError
        Missing directory, table or column, wrong dtype, NaN id, unknown request, implausible
        timestamps for ``ts_unit``, partitions that disagree on columns or dtypes, a row in
        another partition than its request, ...
    ValueError
        ``tz`` is not a time zone or ``ts_unit`` not a unit.
    """
    check_tz(tz)
    check_ts_unit(ts_unit)
    root = Path(path)
    if not root.is_dir():
        raise LogValidationError("*", None, f"log directory {str(root)!r} does not exist or is not a directory.")
    frames = {}
    partitioned = []
    for name in TABLE_SPECS:
        file = _find_table_file(root, name)
        if file is not None and file.is_dir():
            partitioned.append(name)
        elif file is not None:
            frames[name] = read_table(file, name)
    parts, codes, keys = _read_partitioned(root, partitioned) if partitioned else ({}, {}, [])
    frames.update(parts)
    for name, spec in TABLE_SPECS.items():
        if spec.required and name not in frames:
            raise LogValidationError(
                name, None, f"required table is missing: expected {name}.parquet, {name}.csv or a directory "
                f"{name}/ in {root}."
            )
    logs = from_frames(**{name: frames[name] for name in TABLE_SPECS if name in frames}, tz=tz, ts_unit=ts_unit,
                       validate=validate)
    if validate and "requests" in codes:
        check_colocated(logs.tables(), codes, keys)
    return logs


def write_logs(logs: Logs, path: str | Path, fmt: str = "parquet") -> None:
    """Write every present table of ``logs`` to ``path`` as Parquet (default) or CSV.

    Raises
    ------
    ValueError
        ``fmt`` is neither ``"parquet"`` nor ``"csv"``.
    """
    check_choice(fmt, "fmt", _FORMATS)
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    for name, frame in logs.tables().items():
        if fmt == "parquet":
            frame.to_parquet(root / f"{name}.parquet", index=False, compression="zstd")
        else:
            frame.to_csv(root / f"{name}.csv", index=False)
