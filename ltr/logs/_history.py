"""Per-user event histories: "the user of each click" and "the last N events of a user before t".

Both the ranker's recent-click features and the recall models' behaviour sequences ask these
two questions; this module is their one home. :class:`UserHistory` is a prepared index (events
sorted by user and time) that answers "last N before t" for many queries with two binary
searches each, so a loaded model never rescans the logs per request.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ltr._validation import check_choice, check_int
from ltr.artifacts import check_state
from ltr.logs._contract import Logs

__all__ = ["UserHistory", "events_with_users"]

#: Pad value of :meth:`UserHistory.last_before` item codes where a user has fewer events.
PAD = -1


def events_with_users(logs: Logs, table: str = "clicks") -> pd.DataFrame:
    """The rows of an event table with the ``user_id`` of their request attached.

    Parameters
    ----------
    logs : Logs
        Validated logs (every click and exposure belongs to a known request).
    table : {"clicks", "exposures"}
        Which event table.

    Returns
    -------
    DataFrame
        The table's columns plus ``user_id``, in the table's row order.
    """
    check_choice(table, "table", ("clicks", "exposures"))
    events = getattr(logs, table)
    owner = pd.Series(logs.requests["user_id"].to_numpy(), index=logs.requests["request_id"].to_numpy())
    user = owner.reindex(events["request_id"].to_numpy()).to_numpy()
    out = events.copy()
    out["user_id"] = user
    return out


class UserHistory:
    """Each user's events sorted by time; answers "last ``n`` events of user u strictly before t".

    Parameters
    ----------
    users : array-like
        The user id of each event (any hashable type).
    times : array-like of int64
        Event times (epoch seconds, or any integer clock used consistently with the queries).
    items : array-like of int64
        Integer item codes (e.g. rows of an item table); callers map their ids first.
    ties : {"item", "input"}, default "item"
        Order of one user's events at the same time: by item code, so the index does not depend
        on the input row order, or as they come in the input (the recall models' behaviour
        sequences keep the log's order).
    """

    def __init__(self, users: Any, times: Any, items: Any, *, ties: str = "item"):
        check_choice(ties, "ties", ("item", "input"))
        users = np.asarray(users)
        times = np.asarray(times, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if not (len(users) == len(times) == len(items)):
            raise ValueError(f"users, times and items must have the same length. "
                             f"Got {len(users)}, {len(times)} and {len(items)} instead.")
        codes, levels = pd.factorize(users, sort=True)
        order = np.lexsort((items if ties == "item" else np.arange(len(items)), times, codes))
        self.user_levels = np.asarray(levels)
        self.user = codes[order].astype(np.int64)
        self.time = times[order]
        self.item = items[order]
        self._index = pd.Index(self.user_levels)
        self._t_min = int(self.time.min()) if self.time.size else 0
        self._stride = (int(self.time.max()) - self._t_min + 2) if self.time.size else 2
        self._key = self.user * self._stride + (self.time - self._t_min)

    @property
    def n_events(self) -> int:
        """Number of indexed events."""
        return int(self.item.size)

    def user_codes(self, user_ids: Any) -> np.ndarray:
        """Position of each user in :attr:`user_levels`, -1 for users with no events."""
        query = np.asarray(user_ids)
        levels = self.user_levels
        if levels.size and levels.dtype.kind == "i" and query.dtype.kind == "i":
            # Integer levels are sorted (factorize(sort=True)): a binary search answers what the
            # hash index answers, without building a hash table of the query (serving asks one user).
            pos = np.minimum(np.searchsorted(levels, query), levels.size - 1)
            return np.where(levels[pos] == query, pos, -1).astype(np.int64, copy=False)
        return self._index.get_indexer(query).astype(np.int64)

    def bounds(self, user_ids: Any, before: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``: the events of each query user strictly before ``before`` are ``lo:hi``."""
        user = self.user_codes(user_ids)
        before = np.asarray(before, dtype=np.int64)
        known = user >= 0
        base = np.maximum(user, 0) * self._stride
        offset = np.clip(before - self._t_min, 0, self._stride - 1)
        hi = np.searchsorted(self._key, base + offset, side="left")
        lo = np.searchsorted(self._key, base, side="left")
        hi = np.where(known, hi, lo)
        return lo, hi

    def last_before(self, user_ids: Any, before: Any, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last ``max_len`` events of each query user strictly before ``before``.

        Returns
        -------
        items : ndarray of int64, shape (n_queries, max_len)
            Item codes, oldest first and most recent in the last column, left-padded with -1.
        times : ndarray of int64, shape (n_queries, max_len)
            Their times, padded with the minimum int64.
        counts : ndarray of int64, shape (n_queries,)
            How many real events each row holds.
        """
        max_len = check_int(max_len, "max_len", minimum=1)
        lo, hi = self.bounds(user_ids, before)
        n = len(lo)
        idx = hi[:, None] - max_len + np.arange(max_len)[None, :]
        valid = idx >= lo[:, None]
        items = np.full((n, max_len), PAD, dtype=np.int64)
        times = np.full((n, max_len), np.iinfo(np.int64).min, dtype=np.int64)
        if self.n_events:
            safe = np.clip(idx, 0, self.n_events - 1)
            items[valid] = self.item[safe[valid]]
            times[valid] = self.time[safe[valid]]
        return items, times, valid.sum(axis=1).astype(np.int64)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(meta, arrays)``: the index as JSON-able metadata and plain arrays (``npz``-safe)."""
        levels = self.user_levels
        if levels.dtype == object:
            levels = levels.astype(str)
        meta = {"format": "ltr.UserHistory", "version": 1, "n_events": self.n_events}
        return meta, {"user_levels": levels, "user": self.user, "time": self.time, "item": self.item}

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> UserHistory:
        """Inverse of :meth:`to_state`."""
        check_state(dict(meta), "ltr.UserHistory", 1, ["n_events"])
        levels = np.asarray(arrays["user_levels"])
        users = levels[np.asarray(arrays["user"], dtype=np.int64)]
        # The arrays are already in index order, whichever tie order built it: keep it.
        return cls(users, arrays["time"], arrays["item"], ties="input")
