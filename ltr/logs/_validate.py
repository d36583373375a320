"""Normalise and validate in-memory log tables into :class:`~ltr.logs.Logs` (:func:`from_frames`).

Per-column checks live in ``_columns``; this module applies them table by table and adds the
checks that span rows or tables: unique keys, known requests, one id type across tables,
clicks after their exposure, outcomes of known exposures. Missing attributes (an item without
a category, an exposed item absent from ``items``, a user absent from ``users``) are data, not
errors: :func:`ltr.logs.attribute_coverage` counts them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr._validation import check_frame
from ltr.logs._columns import (
    check_finite,
    check_id,
    check_optional_id,
    check_positive_int,
    example_row,
    normalise_category,
    to_epoch_seconds,
)
from ltr.logs._contract import TABLE_SPECS, Logs, LogValidationError, TableSpec
from ltr.logs._time import check_ts_unit, check_tz

__all__ = ["check_id_kinds", "check_not_empty", "from_frames", "id_kinds", "validate_attribute_tables",
           "validate_tables"]

_ORDER_KEYS = ("request_id", "user_id")


def from_frames(
    requests: pd.DataFrame,
    exposures: pd.DataFrame,
    clicks: pd.DataFrame,
    candidates: pd.DataFrame | None = None,
    orders: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    outcomes: pd.DataFrame | None = None,
    tz: str = "UTC",
    ts_unit: str = "s",
    validate: bool = True,
) -> Logs:
    """Normalise and validate in-memory tables into :class:`Logs`.

    Normalisation: ids become int64 or str, timestamps int64 epoch seconds, positions
    int64, ``items.category`` strings with missing categories as NaN. The input frames are not
    modified.

    Parameters
    ----------
    requests, exposures, clicks : DataFrame
        The required tables.
    candidates, orders, items, users, outcomes : DataFrame, optional
        The optional tables.
    tz : str, default "UTC"
        IANA time zone in which calendar days are counted.
    ts_unit : {"s", "ms", "us", "ns"}, default "s"
        Unit of numeric timestamps. Numbers that are not a date in 2000..2100 in this unit
        are refused, naming the unit they look like.
    validate : bool, default True
        Run the checks; False only wraps the frames (for tables validated before).

    Raises
    ------
    TypeError
        A table is not a pandas DataFrame.
    ValueError
        ``tz`` is not a time zone, ``ts_unit`` not a unit.
    LogValidationError
        On the first contract violation, naming table, column and an example row.
    """
    check_tz(tz)
    check_ts_unit(ts_unit)
    given = {"requests": requests, "exposures": exposures, "clicks": clicks, "candidates": candidates,
             "orders": orders, "items": items, "users": users, "outcomes": outcomes}
    frames = {name: check_frame(frame, name).reset_index(drop=True).copy()
              for name, frame in given.items() if frame is not None}
    if not validate:
        return Logs(**frames, tz=tz)
    check_not_empty({name: len(frame) for name, frame in frames.items()}, frames)
    validate_tables(frames, ts_unit)
    return Logs(**frames, tz=tz)


def check_not_empty(rows: dict[str, int], frames: dict[str, pd.DataFrame]) -> None:
    """Required columns present and no table empty but ``orders`` (``rows``: rows per table, of
    all partitions together)."""
    for name, frame in frames.items():
        _check_columns(frame, TABLE_SPECS[name])
    for name, n in rows.items():
        # An empty orders table is a normal day without conversions; any other empty table is a mistake.
        if n == 0 and name != "orders":
            raise LogValidationError(name, None, "table is empty.")


def validate_tables(frames: dict[str, pd.DataFrame], ts_unit: str) -> None:
    """Normalise (in place) and check tables: every check of :func:`from_frames` but emptiness.

    Tables may be empty, which lets a partition of a partitioned log directory (all rows keyed
    by its requests) be checked on its own; the checks across rows then hold for the partition.
    """
    for name, frame in frames.items():
        _normalise_table(frame, TABLE_SPECS[name], ts_unit)
    for column in ("request_id", "user_id", "item_id"):
        _check_same_id_type(frames, column)
    _check_requests(frames["requests"])
    known = frames["requests"]["request_id"]
    exp = frames["exposures"]
    exp["position"] = check_positive_int(exp, "exposures", "position", 0)
    _check_known(exp, "exposures", "request_id", known, "requests")
    _check_known(frames["clicks"], "clicks", "request_id", known, "requests")
    if "candidates" in frames:
        _check_candidates(frames["candidates"], known)
    if "orders" in frames and "request_id" in frames["orders"].columns:
        _check_order_requests(frames["orders"], known)
    if "items" in frames:
        _check_items(frames["items"])
    if "users" in frames:
        _check_unique(frames["users"], "users", ["user_id"])
    if "outcomes" in frames:
        _check_outcomes(frames["outcomes"], exp)
    _check_clicks_after_exposure(exp, frames["clicks"])


def _normalise_table(frame: pd.DataFrame, spec: TableSpec, ts_unit: str) -> None:
    """Required columns, ids and timestamps of one table, converted in place."""
    _check_columns(frame, spec)
    if spec.name == "orders":
        _normalise_order_keys(frame)
    for col in spec.id_columns:
        frame[col] = check_id(frame, spec.name, col)
    for col in spec.ts_columns:
        frame[col] = to_epoch_seconds(frame, spec.name, col, ts_unit)


def _check_columns(frame: pd.DataFrame, spec: TableSpec) -> None:
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise LogValidationError(
            spec.name, missing[0],
            f"required column is missing (has columns {list(map(str, frame.columns))}).",
        )


def _normalise_order_keys(orders: pd.DataFrame) -> None:
    """Either key of an order may be missing on a row, but not both."""
    present = [col for col in _ORDER_KEYS if col in orders.columns]
    if not present:
        raise LogValidationError("orders", "request_id", "orders need a request_id or a user_id column.")
    for col in present:
        orders[col] = check_optional_id(orders, "orders", col)
    no_key = np.ones(len(orders), bool)
    for col in present:
        no_key &= orders[col].isna().to_numpy()
    if no_key.any():
        raise LogValidationError("orders", "request_id", "orders with neither request_id nor user_id.",
                                 example_row(orders, no_key))


def _check_requests(req: pd.DataFrame) -> None:
    _check_unique(req, "requests", ["request_id"])
    if "bucket" in req.columns:
        null = req["bucket"].isna().to_numpy()
        if null.any():
            raise LogValidationError("requests", "bucket", f"{int(null.sum())} request(s) have no bucket.",
                                     example_row(req, null))
        req["bucket"] = req["bucket"].astype(str)


def _check_candidates(cand: pd.DataFrame, known: pd.Series) -> None:
    _check_known(cand, "candidates", "request_id", known, "requests")
    _check_unique(cand, "candidates", ["request_id", "item_id"])
    if "rank_pos" in cand.columns:
        cand["rank_pos"] = check_positive_int(cand, "candidates", "rank_pos", 1)
    if "rank_score" in cand.columns:
        check_finite(cand, "candidates", "rank_score")


def _check_order_requests(orders: pd.DataFrame, known: pd.Series) -> None:
    has = orders["request_id"].notna().to_numpy()
    unknown = has & ~orders["request_id"].isin(known).to_numpy()
    if unknown.any():
        raise LogValidationError("orders", "request_id",
                                 f"{int(unknown.sum())} row(s) reference a request_id not in table 'requests'.",
                                 example_row(orders, unknown))


def _check_items(items: pd.DataFrame) -> None:
    _check_unique(items, "items", ["item_id"])
    items["category"] = normalise_category(items, "items", "category")
    if "embedding" in items.columns:
        _check_embedding(items)


def _check_outcomes(outcomes: pd.DataFrame, exposures: pd.DataFrame) -> None:
    """Each outcome row describes an exposure; its value columns are numbers (missing allowed)."""
    exposed = pd.MultiIndex.from_frame(exposures[["request_id", "item_id"]].astype(object))
    unknown = ~pd.MultiIndex.from_frame(outcomes[["request_id", "item_id"]].astype(object)).isin(exposed)
    if unknown.any():
        raise LogValidationError("outcomes", "item_id",
                                 f"{int(unknown.sum())} row(s) describe no exposure (request_id x item_id not in "
                                 "table 'exposures').", example_row(outcomes, unknown))
    for column in outcomes.columns.difference(["request_id", "item_id", "ts"]):
        col = outcomes[column]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            raise LogValidationError("outcomes", str(column), f"outcomes must be numbers or booleans, got dtype "
                                     f"{col.dtype}.", example_row(outcomes, np.ones(len(outcomes), bool)))


def _check_unique(frame: pd.DataFrame, table: str, columns: list[str]) -> None:
    dup = frame.duplicated(columns, keep="first").to_numpy()
    if dup.any():
        what = " x ".join(columns)
        raise LogValidationError(table, columns[-1], f"{int(dup.sum())} duplicate {what} row(s).",
                                 example_row(frame, dup))


def _check_known(frame: pd.DataFrame, table: str, column: str, known: pd.Series, known_table: str) -> None:
    unknown = ~frame[column].isin(known).to_numpy()
    if unknown.any():
        raise LogValidationError(
            table, column,
            f"{int(unknown.sum())} row(s) reference a {column} not in table '{known_table}'.",
            example_row(frame, unknown),
        )


def id_kinds(frames: dict[str, pd.DataFrame], column: str) -> dict[str, str]:
    """Table -> "int" or "str": the type of the ``column`` ids of each table that has some."""
    return {name: ("int" if pd.api.types.is_integer_dtype(f[column]) else "str")
            for name, f in frames.items() if column in f.columns and f[column].notna().any()}


def check_id_kinds(kinds: dict[str, str], column: str) -> None:
    """One id type across tables (``kinds`` from :func:`id_kinds`, possibly of several partitions)."""
    if len(set(kinds.values())) > 1:
        table = next(n for n, k in kinds.items() if k != next(iter(kinds.values())))
        raise LogValidationError(table, column, f"id types differ between tables: {kinds}.")


def _check_same_id_type(frames: dict[str, pd.DataFrame], column: str) -> None:
    check_id_kinds(id_kinds(frames, column), column)


def validate_attribute_tables(frames: dict[str, pd.DataFrame], ts_unit: str) -> None:
    """The checks of ``items`` and ``users`` alone (in place): what a partitioned log directory
    checks once, apart from its partitions."""
    for name, frame in frames.items():
        _normalise_table(frame, TABLE_SPECS[name], ts_unit)
    if "items" in frames:
        _check_items(frames["items"])
    if "users" in frames:
        _check_unique(frames["users"], "users", ["user_id"])


def _check_embedding(items: pd.DataFrame) -> None:
    """Present embeddings share one length; a missing one (None/NaN) is a missing attribute."""
    emb = items["embedding"]
    lengths = emb.map(lambda v: -1 if v is None or (isinstance(v, float) and np.isnan(v)) else len(v)).to_numpy()
    present = lengths >= 0
    if not present.any():
        return
    first = lengths[present][0]
    bad = present & (lengths != first)
    if bad.any():
        raise LogValidationError("items", "embedding", f"embeddings of different lengths (first has {first}).",
                                 example_row(items, bad))


def _check_clicks_after_exposure(exposures: pd.DataFrame, clicks: pd.DataFrame) -> None:
    first_seen = exposures.groupby(["request_id", "item_id"], sort=False)["ts"].min().rename("exposure_ts")
    joined = clicks.join(first_seen, on=["request_id", "item_id"], how="left")
    early = (joined["ts"] < joined["exposure_ts"]).to_numpy()
    if early.any():
        raise LogValidationError(
            "clicks", "ts", f"{int(early.sum())} click(s) happen before their exposure.", example_row(joined, early)
        )
