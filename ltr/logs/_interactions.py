"""Import one-row-per-exposure interaction exports into the contract (:func:`from_interactions`).

Requests are rebuilt per user from the time gaps between rows; clicks, orders, items and
candidates come from the optional columns that are present.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr._validation import check_int
from ltr.logs._columns import example_row, to_epoch_seconds
from ltr.logs._contract import Logs, LogValidationError
from ltr.logs._validate import from_frames

__all__ = ["from_interactions"]


def from_interactions(
    frame: pd.DataFrame,
    *,
    gap_seconds: int = 1800,
    user_col: str = "user_id",
    item_col: str = "item_id",
    ts_col: str = "ts",
    click_col: str = "click",
    order_col: str | None = "order",
    category_col: str | None = "category",
    bucket_col: str | None = "bucket",
    score_col: str | None = "score",
    position_col: str | None = None,
    tz: str = "UTC",
) -> Logs:
    """Convert one-row-per-exposure interaction data into the contract's tables.

    Rows of one user are grouped into a request while consecutive rows are at most
    ``gap_seconds`` apart. Within a request, positions follow ``position_col`` when given,
    else the timestamp order (ties broken by input order).

    Parameters
    ----------
    frame : DataFrame
        One row per exposure with user, item, timestamp and a 0/1 click column; optional
        order, category, bucket and score columns (absent names are skipped).
    gap_seconds : int, default 1800
        A new request starts after a silence longer than this.

    Returns
    -------
    Logs
        requests (with ``bucket`` when given), exposures, clicks, orders (when ``order_col``
        exists), items (when ``category_col`` exists) and candidates with ``rank_score`` (when
        ``score_col`` exists), validated.
    """
    check_int(gap_seconds, "gap_seconds", minimum=0)
    for col in (user_col, item_col, ts_col, click_col):
        if col not in frame.columns:
            raise LogValidationError("interactions", col,
                                     f"required column is missing (has columns {list(frame.columns)}).")
    df = _with_requests(frame, gap_seconds, user_col, ts_col, position_col)
    head = df.groupby("request_id", sort=True).head(1)
    requests = pd.DataFrame({"request_id": head["request_id"].to_numpy(), "ts": head["_ts"].to_numpy(),
                             "user_id": head[user_col].to_numpy()})
    if bucket_col is not None and bucket_col in df.columns:
        requests["bucket"] = _request_buckets(df, head, bucket_col)
    exposures = pd.DataFrame({"request_id": df["request_id"], "item_id": df[item_col], "ts": df["_ts"],
                              "position": df["position"]})
    clicked = df[click_col].astype(bool).to_numpy()
    clicks = pd.DataFrame({"request_id": df["request_id"][clicked], "item_id": df[item_col][clicked],
                           "ts": df["_ts"][clicked]})
    orders = None
    if order_col is not None and order_col in df.columns:
        ordered = df[order_col].astype(bool).to_numpy()
        orders = pd.DataFrame({"request_id": df["request_id"][ordered], "user_id": df[user_col][ordered],
                               "item_id": df[item_col][ordered], "ts": df["_ts"][ordered]})
    items = None
    if category_col is not None and category_col in df.columns:
        items = df.drop_duplicates(item_col)[[item_col, category_col]].rename(
            columns={item_col: "item_id", category_col: "category"})
    candidates = None
    if score_col is not None and score_col in df.columns:
        candidates = _candidates(df, item_col, score_col)
    return from_frames(requests=requests, exposures=exposures, clicks=clicks, candidates=candidates,
                       orders=orders, items=items, tz=tz)


def _with_requests(frame: pd.DataFrame, gap_seconds: int, user_col: str, ts_col: str,
                   position_col: str | None) -> pd.DataFrame:
    """The rows sorted by user and time, with ``_ts`` (epoch seconds), ``request_id`` and ``position``."""
    df = frame.reset_index(drop=True).copy()
    df["_ts"] = to_epoch_seconds(df, "interactions", ts_col)
    df["_order_in_input"] = np.arange(len(df))
    df = df.sort_values([user_col, "_ts", "_order_in_input"], kind="stable").reset_index(drop=True)
    user_change = df[user_col].ne(df[user_col].shift()).to_numpy()
    gap = df["_ts"].diff().to_numpy() > gap_seconds
    request_id = np.cumsum(user_change | gap) - 1
    df["request_id"] = request_id.astype(np.int64)
    if position_col is not None:
        df["position"] = df[position_col].to_numpy()
    else:
        df["position"] = df.groupby("request_id", sort=False).cumcount().to_numpy() + 1
    return df


def _request_buckets(df: pd.DataFrame, head: pd.DataFrame, bucket_col: str) -> np.ndarray:
    per_request = df.groupby("request_id", sort=True)[bucket_col].nunique()
    if (per_request > 1).any():
        rid = per_request.index[per_request.to_numpy() > 1][0]
        raise LogValidationError("interactions", bucket_col, "bucket changes within one request.",
                                 example_row(df, (df["request_id"] == rid).to_numpy()))
    return head[bucket_col].astype(str).to_numpy()


def _candidates(df: pd.DataFrame, item_col: str, score_col: str) -> pd.DataFrame:
    """One candidate per (request, item), ranked by the logged score within its request."""
    candidates = pd.DataFrame({"request_id": df["request_id"], "item_id": df[item_col],
                               "rank_score": df[score_col].astype(float)})
    candidates = candidates.drop_duplicates(["request_id", "item_id"])
    candidates["rank_pos"] = candidates.groupby("request_id")["rank_score"].rank(
        ascending=False, method="first").astype(np.int64)
    return candidates
