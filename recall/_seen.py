"""Items a user has already seen before a request, for the sources' ``exclude_seen`` option.

``exclude_seen`` takes one of :data:`SEEN_CHOICES`:

* ``"clicks"`` (the default of every source): items the user clicked strictly before the
  request never come back (users do not expect to be shown what they just watched);
* ``"exposures"``: also items the user was shown (exposed) strictly before the request;
* ``"none"``: keep them (worlds where users click the same items again).

Clicked items come from the click history a source keeps (:class:`ltr.logs.UserHistory`, no
log scan); exposures come from the logs handed to ``retrieve``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltr._validation import check_choice
from ltr.logs import Logs, UserHistory, events_with_users

__all__ = ["SEEN_CHOICES", "check_exclude_seen", "drop_seen", "most_seen", "seen_pairs"]

SEEN_CHOICES = ("none", "clicks", "exposures")


def check_exclude_seen(value: Any) -> str:
    """``value`` when it is one of :data:`SEEN_CHOICES`, else a ``ValueError``/``TypeError``."""
    return check_choice(value, "exclude_seen", SEEN_CHOICES)


def _history_pairs(history: UserHistory, user_ids: np.ndarray, before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = history.bounds(user_ids, before)
    counts = hi - lo
    rows = np.repeat(np.arange(len(lo), dtype=np.int64), counts)
    idx = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()), dtype=np.int64)
    return rows, history.item[idx]


def seen_pairs(mode: str, clicks: UserHistory, user_ids: Any, before: Any, logs: Logs | None = None,
               codes: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``(request row, item code)`` of every item each request's user saw strictly before ``before``.

    Parameters
    ----------
    mode : {"none", "clicks", "exposures"}
    clicks : UserHistory
        The source's click history in its own item codes (-1 entries are ignored).
    user_ids, before : array-like
        Each request's user and timestamp.
    logs : Logs, optional
        Where exposures are read for ``mode="exposures"`` (without them only clicks count).
    codes : callable, optional
        ``codes(item_ids) -> item codes`` (-1 unknown) for the exposures' items.
    """
    user_ids, before = np.asarray(user_ids), np.asarray(before, dtype=np.int64)
    if mode == "none" or not len(user_ids):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, items = _history_pairs(clicks, user_ids, before)
    if mode == "exposures" and logs is not None and logs.exposures is not None and codes is not None:
        exposed = events_with_users(logs, "exposures")
        exposed = exposed.loc[exposed["user_id"].notna().to_numpy()]
        history = UserHistory(exposed["user_id"].to_numpy(), exposed["ts"].to_numpy(dtype=np.int64),
                              np.asarray(codes(exposed["item_id"].to_numpy()), dtype=np.int64))
        more_rows, more_items = _history_pairs(history, user_ids, before)
        rows, items = np.concatenate([rows, more_rows]), np.concatenate([items, more_items])
    keep = items >= 0
    return rows[keep], items[keep]


def drop_seen(cand_req: np.ndarray, cand_item: np.ndarray, seen: tuple[np.ndarray, np.ndarray],
              n_items: int) -> np.ndarray:
    """Boolean mask keeping the candidate (request row, item code) pairs that are not in ``seen``."""
    rows, items = seen
    if not len(rows) or not len(cand_req):
        return np.ones(len(cand_req), dtype=bool)
    stride = np.int64(max(n_items, int(items.max()) + 1, int(np.max(cand_item, initial=0)) + 1))
    seen_keys = pd.Index(np.unique(rows * stride + items))
    return seen_keys.get_indexer(np.asarray(cand_req, np.int64) * stride + np.asarray(cand_item, np.int64)) < 0


def most_seen(seen: tuple[np.ndarray, np.ndarray], n_requests: int) -> int:
    """The largest number of seen items of one request (how many extra candidates to fetch)."""
    rows, items = seen
    if not len(rows):
        return 0
    pairs = np.unique(rows * np.int64(int(items.max()) + 1) + items)
    per = np.bincount(pairs // np.int64(int(items.max()) + 1), minlength=n_requests)
    return int(per.max(initial=0))
