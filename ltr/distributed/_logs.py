"""Log partitions validated and joined on Dask workers (:func:`open_logs`).

Each partition of a partitioned log directory (:mod:`ltr.logs._partitioned`) is read, checked
and joined by one task on a worker, with the same functions as the single-machine engine
(``validate_tables``, ``join_partition``, ``label_orders``): what follows a request_id stays in
its partition. The client does only what spans partitions, on small inputs: the schema check
(Parquet metadata), the attribute tables (``items``, ``users``), the id types across tables,
request ids unique across partitions (a Dask ``value_counts``), the attribution of orders
without a matched request to the latest click (the unmatched orders and the clicks of their
(user, item) pairs come to the client), and the sum of the partition counts into the
:class:`~ltr.logs.JoinReport`. That report equals the single-machine one on the same logs.

The validated tables and labelled samples stay on the workers: :meth:`PartitionedLogs.map`
runs a function on every :class:`LogPartition` there and brings back only what it returns.
A flat log directory (one file per table) is one partition.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ltr._validation import check_float
from ltr.logs._contract import TABLE_SPECS, Logs, LogValidationError
from ltr.logs._coverage import missing_attribute_counts
from ltr.logs._join import JoinReport, PartialJoin, attribute_orders, join_partition, join_report, label_orders
from ltr.logs._partitioned import (
    DIMENSION_TABLES,
    EVENT_TABLES,
    Partition,
    empty_frame,
    partitions,
    read_files,
    table_files,
    table_schema,
)
from ltr.logs._read import read_table
from ltr.logs._time import check_ts_unit, check_tz
from ltr.logs._validate import check_id_kinds, check_not_empty, id_kinds, validate_attribute_tables, validate_tables

__all__ = ["LogPartition", "PartitionedLogs", "open_logs"]

_ID_COLUMNS = ("request_id", "user_id", "item_id")
#: Columns of the bulk tables kept once a partition is labelled (see :func:`_kept_tables`).
_KEPT_COLUMNS = {"exposures": ("item_id", "ts"), "candidates": ("request_id", "item_id")}


@dataclass(frozen=True)
class LogPartition:
    """One partition on a worker: its validated event tables and, once joined, its samples."""

    key: str
    tables: dict[str, pd.DataFrame]
    tz: str
    samples: pd.DataFrame | None = None
    join: PartialJoin | None = None

    @property
    def logs(self) -> Logs:
        """The partition's tables as :class:`~ltr.logs.Logs` (already validated; no attribute tables)."""
        return Logs(**self.tables, tz=self.tz)

    def __sizeof__(self) -> int:
        # Dask's memory manager sizes what a worker holds with sys.getsizeof: without this a partition
        # would count as a few bytes, never be spilled to disk, and a world larger than the workers'
        # memory would kill them instead of spilling.
        from dask.sizeof import sizeof

        join = self.join
        frames = [*self.tables.values(), self.samples] + ([] if join is None else [
            join.samples, join.order_keys, join.rest_orders, join.clicks])
        return int(sum(sizeof(frame) for frame in frames if frame is not None))


@dataclass(frozen=True)
class PartitionedLogs:
    """Validated, joined log partitions held by the workers of ``client``.

    Attributes
    ----------
    client : distributed.Client
    keys : list of str
        Partition keys (``day=YYYY-MM-DD/part-NNNNN``), in order.
    report : JoinReport
        The join report of all partitions (equal to the single-machine one).
    rows : dict
        Rows per event table, all partitions together.
    columns : dict
        Columns per event table.
    items, users : DataFrame or None
        The validated attribute tables (on the client).
    tz : str
    """

    client: Any
    keys: list[str]
    parts: list[Any]
    report: JoinReport
    rows: dict[str, int]
    columns: dict[str, list[str]]
    items: pd.DataFrame | None
    users: pd.DataFrame | None
    tz: str

    def map(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """``func(partition, *args, **kwargs)`` on every :class:`LogPartition`, on the workers;
        the results in partition order. Arguments that are big frames are best scattered first."""
        futures = self.client.map(func, self.parts, *[[a] * len(self.parts) for a in args], pure=False, **kwargs)
        return self.client.gather(futures)


def _layout(root: Path) -> tuple[list[Partition], dict[str, Path]]:
    """Partitions and a file per present event table (whose schema a partition without that table
    takes); every event table is a directory, or every one is a file."""
    dirs = [name for name in EVENT_TABLES if (root / name).is_dir()]
    if dirs:
        files = {name: table_files(root, name) for name in dirs}
        for name in EVENT_TABLES:
            if name not in dirs and any((root / f"{name}.{ext}").exists() for ext in ("parquet", "csv")):
                raise LogValidationError(name, None, f"is a file while {dirs[0]} is partitioned: the Dask engine "
                                         "needs every event table partitioned (python -m ltr.logs partition).")
        for name, parts in files.items():
            table_schema(name, parts)
        return partitions(root), {name: next(iter(parts.values())) for name, parts in files.items()}
    flat = {name: root / f"{name}.{ext}" for name in EVENT_TABLES for ext in ("parquet", "csv")
            if (root / f"{name}.{ext}").exists()}
    return [Partition("all", flat)], {}


def _read_partition(partition: Partition, schemas: dict[str, Path], ts_unit: str) -> dict[str, pd.DataFrame]:
    frames = {}
    for name in EVENT_TABLES:
        if name in partition.files:
            file = partition.files[name]
            frames[name] = read_files(name, [file]) if file.suffix == ".parquet" else read_table(file, name)
        elif name in schemas:
            frames[name] = empty_frame(schemas[name])
    try:
        for name, spec in TABLE_SPECS.items():
            if spec.required and name not in frames:
                raise LogValidationError(name, None, "required table is missing.")
        check_not_empty({}, frames)
        validate_tables(frames, ts_unit)
    except LogValidationError as exc:
        raise LogValidationError(exc.table, exc.column, f"partition {partition.key}: {exc.problem}",
                                 exc.example) from None
    return frames


def _load(partition: Partition, schemas: dict[str, Path], tz: str, ts_unit: str) -> LogPartition:
    """Read, check and join one partition (runs on a worker)."""
    frames = _read_partition(partition, schemas, ts_unit)
    part = LogPartition(partition.key, frames, tz)
    return LogPartition(partition.key, frames, tz, join=join_partition(part.logs))


def _facts(part: LogPartition) -> dict:
    """Rows and columns per table and id types per column of a partition."""
    return {"rows": {name: len(frame) for name, frame in part.tables.items()},
            "columns": {name: [str(c) for c in frame.columns] for name, frame in part.tables.items()},
            "kinds": {column: id_kinds(part.tables, column) for column in _ID_COLUMNS}}


def _request_ids(part: LogPartition) -> pd.DataFrame:
    return part.tables["requests"][["request_id"]]


def _joined(part: LogPartition) -> PartialJoin:
    if part.join is None:
        raise RuntimeError(f"partition {part.key} was not joined.")
    return part.join


def _rest_orders(part: LogPartition) -> pd.DataFrame:
    return _joined(part).rest_orders


def _clicks_of(part: LogPartition, pairs: pd.MultiIndex) -> pd.DataFrame:
    """The partition's matched clicks on the (user, item) pairs of unattributed orders."""
    clicks = _joined(part).clicks
    return clicks.loc[pd.MultiIndex.from_frame(clicks[["_user", "_item"]]).isin(pairs)]


def _label(part: LogPartition, attributed: pd.DataFrame, items: pd.DataFrame | None,
           users: pd.DataFrame | None) -> tuple[LogPartition, dict[str, int]]:
    """The partition with its labelled samples, and its join counts."""
    join = _joined(part)
    samples = label_orders(join, attributed)
    counts = {**join.counts, **missing_attribute_counts(samples, items, users)}
    return LogPartition(part.key, _kept_tables(part.tables), part.tz, samples=samples), counts


def _kept_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The event tables cut to the columns the later stages read once the samples exist.

    The samples carry the exposures' columns; what else reads the tables is the readout's funnel
    (candidates per request, every request) and the recall sources' light logs (clicks, orders,
    their requests, the exposed and candidate items, the exposures' times): the exposures and
    candidates, the bulk of the logs, keep only those columns.
    """
    kept = dict(tables)
    for name, columns in _KEPT_COLUMNS.items():
        if name in kept:
            kept[name] = kept[name][list(columns)]
    return kept


def _attribute_tables(root: Path, ts_unit: str) -> dict[str, pd.DataFrame]:
    frames = {}
    for name in DIMENSION_TABLES:
        if (root / name).is_dir():
            parts = table_files(root, name)
            table_schema(name, parts)
            frames[name] = read_files(name, list(parts.values()))
        for ext in ("parquet", "csv"):
            if (root / f"{name}.{ext}").exists():
                frames[name] = read_table(root / f"{name}.{ext}", name)
    validate_attribute_tables(frames, ts_unit)
    return frames


def _check_unique_requests(client: Any, parts: list[Any]) -> None:
    """Request ids unique across partitions: a Dask ``value_counts`` over every partition."""
    import dask.dataframe as dd

    ids = client.map(_request_ids, parts, pure=False)
    meta = client.submit(lambda frame: frame.iloc[:0], ids[0]).result()
    counts = dd.from_delayed(ids, meta=meta, verify_meta=False)["request_id"].value_counts(
        split_out=max(1, len(ids) // 16))
    repeated = client.compute(counts[counts > 1]).result()
    if len(repeated):
        raise LogValidationError("requests", "request_id", f"{len(repeated)} request_id(s) appear in more than one "
                                 "partition.", {"request_id": repeated.index[0]})


def open_logs(client: Any, path: str | Path, tz: str = "UTC", ts_unit: str = "s",
              attribution_window_days: float = 7.0) -> PartitionedLogs:
    """Validate and join a log directory on the Dask cluster of ``client``.

    Parameters
    ----------
    client : distributed.Client
    path : str or Path
        A partitioned log directory (the workers read it at this path), or a flat one (one
        partition).
    tz, ts_unit, attribution_window_days
        As in :func:`ltr.logs.read_logs` and :func:`ltr.logs.join_samples`.

    Returns
    -------
    PartitionedLogs

    Raises
    ------
    LogValidationError
        The first contract violation found, naming the table, the column, the partition and an
        example row; partitions that disagree on columns or dtypes.
    """
    check_tz(tz)
    check_ts_unit(ts_unit)
    check_float(attribution_window_days, "attribution_window_days", low=0)
    root = Path(path)
    if not root.is_dir():
        raise LogValidationError("*", None, f"log directory {str(root)!r} does not exist or is not a directory.")
    layout, schemas = _layout(root)
    attributes = _attribute_tables(root, ts_unit)
    loaded = client.map(_load, layout, schemas=schemas, tz=tz, ts_unit=ts_unit, pure=False)
    facts = client.gather(client.map(_facts, loaded, pure=False))
    rows = {name: sum(f["rows"].get(name, 0) for f in facts) for name in EVENT_TABLES if name in facts[0]["rows"]}
    check_not_empty(rows, {})
    for column in _ID_COLUMNS:
        kinds = {name: kind for f in facts for name, kind in f["kinds"][column].items()}
        kinds.update(id_kinds(attributes, column))
        check_id_kinds(kinds, column)
    _check_unique_requests(client, loaded)
    rest = pd.concat(client.gather(client.map(_rest_orders, loaded, pure=False)), ignore_index=True)
    clicks = rest.iloc[:0]
    if len(rest):
        pairs = client.scatter(pd.MultiIndex.from_frame(rest[["_user", "_item"]]).unique(), broadcast=True)
        clicks = pd.concat(client.gather(client.map(_clicks_of, loaded, pairs=pairs, pure=False)), ignore_index=True)
    attributed = attribute_orders(rest, clicks, attribution_window_days)
    shared = {name: client.scatter(attributes[name], broadcast=True) if name in attributes else None
              for name in ("items", "users")}
    labelled = client.map(_label, loaded, attributed=client.scatter(attributed, broadcast=True), pure=False,
                          **shared)
    parts = [client.submit(lambda pair: pair[0], pair, pure=False) for pair in labelled]
    counts = client.gather([client.submit(lambda pair: pair[1], pair, pure=False) for pair in labelled])
    total = {name: sum(c[name] for c in counts) for name in counts[0]}
    return PartitionedLogs(client=client, keys=[p.key for p in layout], parts=parts,
                           report=join_report(total, len(attributed), attribution_window_days), rows=rows,
                           columns=facts[0]["columns"],
                           items=attributes.get("items"), users=attributes.get("users"), tz=tz)
