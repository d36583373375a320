"""Import one-row-per-exposure exports into the contract (:func:`from_interactions`).

Flat exports (one row per exposure: user, item, time, a click flag, maybe more) are the common
way logs leave a service. Requests are rebuilt: a request is a user's consecutive rows with the
same ``request_by`` values (e.g. the app tab) at most ``gap_seconds`` apart; positions follow
time within it. Only the columns named by an argument are kept: the outcomes of an exposure
(watch time, likes ...) never ride along as features; name them in ``outcome_cols`` to keep
them in the ``outcomes`` table (labels of other tasks, history for later days).
``python -m ltr.logs import`` is the command-line face of this function.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr._validation import check_float, check_frame
from ltr.logs._columns import check_id, example_row, to_epoch_ns
from ltr.logs._contract import Logs, LogValidationError
from ltr.logs._time import check_ts_unit, check_tz
from ltr.logs._validate import from_frames

__all__ = ["from_interactions"]

_TABLE = "interactions"
_NS = 1_000_000_000


@dataclass(frozen=True)
class _Columns:
    """Which flat columns play which role (the checked arguments of :func:`from_interactions`)."""

    user: str
    item: str
    ts: str
    click: str
    order: str | None
    bucket: str | None
    score: str | None
    position: str | None
    context: tuple[str, ...]
    request_by: tuple[str, ...]
    outcomes: tuple[str, ...]

    def named(self) -> list[str]:
        """Every flat column an argument names, once each."""
        single = [self.user, self.item, self.ts, self.click, self.order, self.bucket, self.score, self.position]
        names = [c for c in single if c is not None] + [*self.context, *self.request_by, *self.outcomes]
        return list(dict.fromkeys(names))


def from_interactions(
    frame: pd.DataFrame,
    *,
    gap_seconds: float = 1800,
    user_col: str = "user_id",
    item_col: str = "item_id",
    ts_col: str = "ts",
    ts_unit: str = "s",
    click_col: str = "click",
    order_col: str | None = None,
    bucket_col: str | None = None,
    score_col: str | None = None,
    position_col: str | None = None,
    context_cols: Sequence[str] = (),
    request_by: Sequence[str] = (),
    outcome_cols: Sequence[str] = (),
    category_col: str | None = None,
    items: pd.DataFrame | None = None,
    item_key: str | None = None,
    users: pd.DataFrame | None = None,
    user_key: str | None = None,
    tz: str = "UTC",
) -> Logs:
    """Convert one-row-per-exposure interaction data into the contract's tables.

    A request is a user's rows with the same ``request_by`` values, ordered by time, split
    where two consecutive rows are more than ``gap_seconds`` apart. Within a request, positions
    follow ``position_col`` when given, else time (ties broken by input order). Request ids
    are 0, 1, ... in the order the requests start.

    Parameters
    ----------
    frame : DataFrame
        One row per exposure.
    gap_seconds : float, default 1800
        A new request starts after a silence longer than this.
    user_col, item_col, ts_col, click_col : str
        Flat columns of the user, the item, the time and the 0/1 click label.
    ts_unit : {"s", "ms", "us", "ns"}, default "s"
        Unit of a numeric ``ts_col``.
    order_col : str, optional
        0/1 conversion label: its rows become ``orders``.
    bucket_col : str, optional
        A/B arm: ``requests.bucket`` (must not change within a request).
    score_col : str, optional
        The online ranker's score: a ``candidates`` table with ``rank_score`` and ``rank_pos``.
    position_col : str, optional
        Logged positions (default: order in time within the request).
    context_cols : sequence of str
        Request context (e.g. the app tab) kept on ``requests``; each must be constant within a
        request (put it in ``request_by`` to split on it).
    request_by : sequence of str
        Columns whose change starts a new request. Not kept unless also in ``context_cols``.
    outcome_cols : sequence of str
        What happened after the exposure (watch time, likes ...): kept in the ``outcomes``
        table (request_id, item_id, ts and these columns), never as features of the exposure.
    category_col : str, optional
        The item category: a column of ``items`` when given (default ``"category"`` there),
        else of the flat rows (then ``items`` is built from them: item_id, category).
    items : DataFrame, optional
        Item attributes keyed by ``item_key`` (default ``item_col``); every column is kept.
    users : DataFrame, optional
        User attributes keyed by ``user_key`` (default ``user_col``); every column is kept.
    tz : str, default "UTC"
        Time zone of calendar days of the returned logs.

    Returns
    -------
    Logs
        requests, exposures, clicks and the optional tables the arguments ask for, validated.
        Exposed items missing from ``items`` and users missing from ``users`` are accepted
        (:func:`ltr.logs.attribute_coverage` counts them).

    Raises
    ------
    LogValidationError
        A named column is missing, ids are NaN, a label is not 0/1, timestamps are implausible
        in ``ts_unit``, a context column changes within a request, ...
    ValueError, TypeError
        Bad arguments.
    """
    check_frame(frame, "frame")
    gap_seconds = check_float(gap_seconds, "gap_seconds", low=0)
    check_ts_unit(ts_unit)
    check_tz(tz)
    cols = _Columns(user_col, item_col, ts_col, click_col, order_col, bucket_col, score_col, position_col,
                    tuple(context_cols), tuple(request_by), tuple(outcome_cols))
    _require_columns(frame, _TABLE, cols.named())
    for col in (user_col, item_col):
        check_id(frame, _TABLE, col)
    clicked = _binary(frame, click_col)
    ordered = None if order_col is None else _binary(frame, order_col)

    df = _with_requests(frame, cols, ts_unit, gap_seconds)
    head = df.groupby("request_id", sort=True).head(1)
    requests = pd.DataFrame({"request_id": head["request_id"].to_numpy(), "ts": head["_ts"].to_numpy(),
                             "user_id": head[user_col].to_numpy()})
    if bucket_col is not None:
        requests["bucket"] = _per_request(frame, df, head, bucket_col)
    for col in cols.context:
        requests[col] = _per_request(frame, df, head, col)
    keys = {"request_id": df["request_id"], "item_id": df[item_col], "ts": df["_ts"]}
    exposures = pd.DataFrame({**keys, "position": df["position"]})
    clicks = pd.DataFrame(keys).loc[clicked[df["_row"]]]
    orders = None
    if ordered is not None:
        orders = pd.DataFrame({**keys, "user_id": df[user_col]}).loc[ordered[df["_row"]]]
    outcomes = pd.DataFrame({**keys, **{c: df[c] for c in cols.outcomes}}) if cols.outcomes else None
    candidates = None if score_col is None else _candidates(df, item_col, score_col)
    return from_frames(
        requests=requests, exposures=exposures, clicks=clicks, candidates=candidates, orders=orders,
        items=_items_table(frame, item_col, category_col, items, item_key),
        users=None if users is None else _keyed(users, "users", user_key or user_col, "user_id"),
        outcomes=outcomes, tz=tz,
    )


def _require_columns(frame: pd.DataFrame, table: str, names: Sequence[str]) -> None:
    for col in names:
        if col not in frame.columns:
            raise LogValidationError(table, col,
                                     f"named column is missing (has columns {list(map(str, frame.columns))}).")


def _binary(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A 0/1 (or boolean) label column as a boolean array; anything else is refused."""
    col = frame[column]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
        raise LogValidationError(_TABLE, column, f"labels must be 0/1, got dtype {col.dtype}.",
                                 example_row(frame, np.ones(len(frame), bool)))
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        raise LogValidationError(_TABLE, column, f"{int(bad.sum())} row(s) have a label that is not 0 or 1 "
                                 "(missing included).", example_row(frame, bad))
    return values == 1.0


def _with_requests(frame: pd.DataFrame, cols: _Columns, ts_unit: str, gap_seconds: float) -> pd.DataFrame:
    """The named columns sorted into requests, with ``_row`` (input row), ``_ts`` (epoch seconds),
    ``request_id`` and ``position``."""
    df = frame[cols.named()].reset_index(drop=True)
    # Nanoseconds keep the order of sub-second rows that epoch seconds would tie.
    ns = to_epoch_ns(frame.reset_index(drop=True), _TABLE, cols.ts, ts_unit)
    df = df.assign(_row=np.arange(len(df)), _ns=ns, _ts=np.floor_divide(ns, _NS))
    group = [pd.factorize(df[c], use_na_sentinel=False)[0] for c in (cols.user, *cols.request_by)]
    order = np.lexsort((df["_row"].to_numpy(), ns, *reversed(group)))
    df = df.iloc[order].reset_index(drop=True)
    new_group = np.zeros(len(df), bool)
    new_group[0:1] = True
    for key in group:
        ordered_key = key[order]
        new_group[1:] |= ordered_key[1:] != ordered_key[:-1]
    gap_ns = round(gap_seconds * _NS)
    new_request = new_group | (np.diff(df["_ns"].to_numpy(), prepend=df["_ns"].iloc[0]) > gap_ns)
    provisional = np.cumsum(new_request) - 1
    # Number requests in the order they start (then by provisional id, for ties).
    starts = df["_ns"].to_numpy()[new_request]
    rank = np.empty(len(starts), np.int64)
    rank[np.lexsort((np.arange(len(starts)), starts))] = np.arange(len(starts))
    df["request_id"] = rank[provisional]
    if cols.position is not None:
        df["position"] = df[cols.position].to_numpy()
    else:
        df["position"] = df.groupby("request_id", sort=False).cumcount().to_numpy() + 1
    return df.sort_values(["request_id", "position", "_row"], kind="stable").reset_index(drop=True)


def _varies_within(values: pd.Series, groups: pd.Series) -> np.ndarray:
    """Rows whose group holds more than one distinct value (a missing value counts as one)."""
    codes = pd.Series(pd.factorize(values, use_na_sentinel=False)[0])
    return codes.groupby(groups.to_numpy()).transform("nunique").to_numpy() > 1


def _per_request(frame: pd.DataFrame, df: pd.DataFrame, head: pd.DataFrame, column: str) -> np.ndarray:
    """The value of ``column`` on each request's first row; it must not change within the request."""
    varies = _varies_within(df[column], df["request_id"])
    if varies.any():
        flat_rows = np.zeros(len(frame), bool)
        flat_rows[df.loc[varies, "_row"].to_numpy()] = True
        raise LogValidationError(_TABLE, column, f"changes within {df.loc[varies, 'request_id'].nunique()} "
                                 "request(s); add it to --request-by (request_by) to start a new request there.",
                                 example_row(frame, flat_rows))
    return head[column].to_numpy()


def _candidates(df: pd.DataFrame, item_col: str, score_col: str) -> pd.DataFrame:
    """One candidate per (request, item), ranked by the logged score within its request."""
    candidates = pd.DataFrame({"request_id": df["request_id"], "item_id": df[item_col],
                               "rank_score": df[score_col].astype(float)})
    candidates = candidates.drop_duplicates(["request_id", "item_id"])
    candidates["rank_pos"] = candidates.groupby("request_id")["rank_score"].rank(
        ascending=False, method="first").astype(np.int64)
    return candidates


def _keyed(table: pd.DataFrame, name: str, key: str, contract_key: str) -> pd.DataFrame:
    """``table`` with its key column renamed to the contract's name."""
    check_frame(table, name)
    _require_columns(table, name, [key])
    if key != contract_key and contract_key in table.columns:
        raise LogValidationError(name, contract_key, f"both {key!r} (the key) and {contract_key!r} exist; "
                                 f"drop or rename {contract_key!r}.")
    return table.rename(columns={key: contract_key})


def _items_table(frame: pd.DataFrame, item_col: str, category_col: str | None, items: pd.DataFrame | None,
                 item_key: str | None) -> pd.DataFrame | None:
    """The items table: from ``items`` (category from ``category_col``) or from the flat rows."""
    if items is not None:
        out = _keyed(items, "items", item_key or item_col, "item_id")
        return _keyed(out, "items", category_col or "category", "category")
    if category_col is None:
        return None
    _require_columns(frame, _TABLE, [category_col])
    varies = _varies_within(frame[category_col], frame[item_col])
    if varies.any():
        raise LogValidationError(_TABLE, category_col, "the category of an item changes between rows; pass an "
                                 "items table instead.", example_row(frame, varies))
    first = frame.drop_duplicates(item_col)
    return pd.DataFrame({"item_id": first[item_col].to_numpy(), "category": first[category_col].to_numpy()})
