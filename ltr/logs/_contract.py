"""The log contract: which tables a log directory holds, and the validated :class:`Logs`.

A log directory holds one file per table, Parquet (``.parquet``) or CSV (``.csv``), named
after the table (``requests.parquet``, ``clicks.csv`` ...). ``requests``, ``exposures`` and
``clicks`` are required; ``candidates``, ``orders``, ``items``, ``users`` and ``outcomes`` are
optional. Extra columns are kept. Timestamps are normalised to int64 epoch seconds.

Every problem raises :class:`LogValidationError`, which names the table, the column and an
example offending row. Reading lives in ``_read``, the checks in ``_validate`` and
``_columns``, the one-row-per-exposure importer in ``_interactions``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["TABLE_SPECS", "LogValidationError", "Logs", "TableSpec"]


class LogValidationError(ValueError):
    """Bad input logs. ``table``, ``column`` and ``example`` locate the problem."""

    def __init__(self, table: str, column: str | None, problem: str, example: dict | None = None):
        self.table = table
        self.column = column
        self.problem = problem
        self.example = example
        where = f"logs table '{table}'" + (f", column '{column}'" if column else "")
        text = f"{where}: {problem}"
        if example is not None:
            text += f" Example row: {example}"
        super().__init__(text)

    def __reduce__(self) -> tuple:
        # Errors raised on a Dask worker travel to the client pickled; rebuild from the parts.
        return (type(self), (self.table, self.column, self.problem, self.example))


@dataclass(frozen=True)
class TableSpec:
    """Contract of one log table."""

    name: str
    required: bool
    columns: tuple[str, ...]
    id_columns: tuple[str, ...]
    ts_columns: tuple[str, ...] = ()


TABLE_SPECS: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec("requests", True, ("request_id", "ts", "user_id"), ("request_id", "user_id"), ("ts",)),
        TableSpec("exposures", True, ("request_id", "item_id", "ts", "position"), ("request_id", "item_id"), ("ts",)),
        TableSpec("clicks", True, ("request_id", "item_id", "ts"), ("request_id", "item_id"), ("ts",)),
        TableSpec("candidates", False, ("request_id", "item_id"), ("request_id", "item_id")),
        # orders need request_id or user_id; checked separately.
        TableSpec("orders", False, ("item_id", "ts"), ("item_id",), ("ts",)),
        TableSpec("items", False, ("item_id", "category"), ("item_id",)),
        TableSpec("users", False, ("user_id",), ("user_id",)),
        # What happened after an exposure (watch time, likes ...): labels of other tasks and
        # history for later days, never features of the exposure itself.
        TableSpec("outcomes", False, ("request_id", "item_id", "ts"), ("request_id", "item_id"), ("ts",)),
    ]
}


@dataclass(frozen=True)
class Logs:
    """Validated, normalised log tables (pandas DataFrames; optional tables may be None).

    Build one with :func:`ltr.logs.read_logs` (from a directory) or
    :func:`ltr.logs.from_frames` (in memory); both validate. ``tz`` is the time zone in which
    calendar days are counted.
    """

    requests: pd.DataFrame
    exposures: pd.DataFrame
    clicks: pd.DataFrame
    candidates: pd.DataFrame | None = None
    orders: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    outcomes: pd.DataFrame | None = None
    tz: str = "UTC"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The present tables by name."""
        return {name: getattr(self, name) for name in TABLE_SPECS if getattr(self, name) is not None}

    def replace(self, **tables: Any) -> Logs:
        """A copy with some tables replaced (not re-validated)."""
        return dataclasses.replace(self, **tables)
