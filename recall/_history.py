"""Users' click histories for the recall sources, on top of :class:`ltr.logs.UserHistory`.

A source maps item ids to its own integer item codes first (catalogue rows, similarity-matrix
rows), so any id type works. Same-second clicks of a user keep the log's order
(``ties="input"``), the order the behaviour sequences have always had.

Sources that keep their training days' clicks (:func:`split_clicks`) store them as a prepared
:class:`~ltr.logs.UserHistory` and add only the clicks after ``train_end_day`` from the logs
they retrieve with (:func:`extend_history`): a loaded source does not need the training logs.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ltr.logs import Logs, UserHistory, day_index, events_with_users

__all__ = ["click_events", "extend_history", "history_of", "split_clicks"]


def click_events(logs: Logs) -> pd.DataFrame:
    """``user_id, item_id, ts`` of every click whose request (hence user) is known, in log order."""
    clicks = events_with_users(logs, "clicks")
    known = clicks["user_id"].notna().to_numpy()
    return clicks.loc[known, ["user_id", "item_id", "ts"]].reset_index(drop=True)


def split_clicks(logs: Logs, train_end_day: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`click_events` on days <= ``train_end_day`` and after it (days in ``logs.tz``)."""
    clicks = click_events(logs)
    late = day_index(clicks["ts"].to_numpy(), logs.tz) > train_end_day
    return clicks.loc[~late].reset_index(drop=True), clicks.loc[late].reset_index(drop=True)


def history_of(clicks: pd.DataFrame, codes: np.ndarray, keep_unknown: bool = False) -> UserHistory:
    """The clicks as a :class:`UserHistory` of item ``codes`` (one per click, -1 = unknown item).

    ``keep_unknown`` keeps clicks on unknown items as -1 entries: they take a place in the
    last-N window (and are masked later) instead of being dropped before it.
    """
    codes = np.asarray(codes, dtype=np.int64)
    keep = np.ones(len(codes), dtype=bool) if keep_unknown else codes >= 0
    return UserHistory(clicks["user_id"].to_numpy()[keep], clicks["ts"].to_numpy(dtype=np.int64)[keep],
                       codes[keep], ties="input")


def extend_history(history: UserHistory, clicks: pd.DataFrame, codes: np.ndarray,
                   keep_unknown: bool = False) -> UserHistory:
    """``history`` plus newer ``clicks`` (all later than every event of ``history``)."""
    if not len(clicks):
        return history
    later = history_of(clicks, codes, keep_unknown)
    # pandas keeps int64 + int64 as int64 and falls back to object for mixed kinds.
    users = pd.concat([pd.Series(history.user_levels[history.user]),
                       pd.Series(later.user_levels[later.user])], ignore_index=True).to_numpy()
    # Stored events come first and are older, so input order keeps every tie as it was.
    return UserHistory(users, np.concatenate([history.time, later.time]),
                       np.concatenate([history.item, later.item]), ties="input")


def with_clicks_after(history: UserHistory, logs: Logs | None, train_end_day: int,
                      codes: Callable[[np.ndarray], np.ndarray], keep_unknown: bool = False) -> UserHistory:
    """The stored training clicks ``history`` plus the clicks of ``logs`` after
    ``train_end_day``, coded by ``codes(item_ids)``; ``history`` itself when ``logs`` is None
    (the single-request path: no log scan)."""
    if logs is None:
        return history
    _, later = split_clicks(logs, train_end_day)
    return extend_history(history, later, codes(later["item_id"].to_numpy()), keep_unknown)
