"""Feature block: cosine of the item to the user's recent clicks (``cosine_recent_clicks``).

The profile of a user at a cut-off is the unit mean of the unit embeddings of their last
``history_len`` clicked items before the cut-off (:class:`~ltr.features._tables.ClickHistory`);
the feature is its dot product with the row's unit item embedding, NaN when either is
missing. It is a continuous column and also a raw value column of ``X``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ltr.features._blocks import Batch
from ltr.features._tables import ClickHistory

__all__ = ["COSINE", "RecentClickCosine", "recent_click_profiles", "rowdot"]

COSINE = "cosine_recent_clicks"


def rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product with a fixed summation order (bit-stable across batch sizes)."""
    out = np.zeros(a.shape[0])
    prod = a * b
    for k in range(a.shape[1]):
        out += prod[:, k]
    return out


def recent_click_profiles(
    history: ClickHistory, user_ids: Any, end: np.ndarray, max_len: int, embedding: np.ndarray
) -> np.ndarray:
    """Unit mean embedding of each query user's last ``max_len`` clicks before ``end``.

    Parameters
    ----------
    history : ClickHistory
        The clicks.
    user_ids : array-like
        User of each query.
    end : ndarray of int64
        Cut-off of each query (day, or ``ts - lag``).
    max_len : int
        Most recent clicks averaged.
    embedding : ndarray of shape (n_items, dim)
        Unit item embeddings, indexed by the history's item rows.

    Returns
    -------
    profiles : ndarray of shape (n_queries, dim)
        NaN rows for users without a click before their cut-off.
    """
    n = len(end)
    user_ids = np.asarray(user_ids)
    if n and (end == end[0]).all() and (user_ids == user_ids[0]).all():
        # One request's rows: one query, its profile repeated.
        return np.repeat(_one_profile(history, user_ids[:1], end[:1], max_len, embedding), n, axis=0)
    out = np.full((n, embedding.shape[1]), np.nan)
    events = history.events
    if events.n_events == 0:
        return out
    lo, hi = events.bounds(user_ids, history.cutoff(end))
    count = np.minimum(hi - lo, max_len)
    has = count > 0
    # Many exposures share (user, cut-off); compute each distinct profile once.
    query = hi[has].astype(np.int64) * (max_len + 1) + count[has]
    uniq, inverse = np.unique(query, return_inverse=True)
    u_hi = uniq // (max_len + 1)
    u_count = uniq % (max_len + 1)
    acc = np.zeros((uniq.size, embedding.shape[1]))
    # Most recent first; ranks no profile reaches would add nothing: stop at the longest.
    for j in range(int(u_count.max(initial=0))):
        take = u_count > j
        rows = events.item[u_hi[take] - 1 - j]
        acc[take] += embedding[rows]
    out[has] = _unit_mean(acc, u_count)[inverse]
    return out


def _one_profile(history: ClickHistory, user_id: np.ndarray, end: np.ndarray, max_len: int,
                 embedding: np.ndarray) -> np.ndarray:
    """:func:`recent_click_profiles` of one query (a serving request), in scalars: the same bits."""
    out = np.full((1, embedding.shape[1]), np.nan)
    if history.events.n_events == 0:
        return out
    lo, hi = history.events.bounds(user_id, history.cutoff(end))
    last = int(hi[0])
    count = min(last - int(lo[0]), max_len)
    if count <= 0:
        return out
    # The clicks' rows added most recent first by one reduction over the rows (numpy adds
    # them one after the other, as the general loop does).
    acc = embedding[history.events.item[last - count : last][::-1]].sum(axis=0, keepdims=True)
    return _unit_mean(acc, np.array([count]))


def _unit_mean(acc: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Rows of sums ``acc`` of ``count`` unit vectors as unit means (NaN where the mean is 0)."""
    acc /= count[:, None]
    norm = np.sqrt(rowdot(acc, acc))
    unit = acc / np.where(norm > 0, norm, 1.0)[:, None]
    unit[norm == 0] = np.nan
    return unit


@dataclass(frozen=True, eq=False)
class RecentClickCosine:
    """Feature block: ``cosine_recent_clicks``.

    Parameters
    ----------
    embedding : ndarray of shape (n_items, dim)
        Unit item embeddings of the items table (NaN rows: none).
    history_len : int
        Most recent clicks in the profile.
    """

    embedding: np.ndarray
    history_len: int

    @property
    def names(self) -> tuple[str, ...]:
        """The one column."""
        return (COSINE,)

    @property
    def value_names(self) -> tuple[str, ...]:
        """The column is also a raw value column of ``X``."""
        return (COSINE,)

    def columns(self, batch: Batch) -> list[np.ndarray]:
        """Cosine of each row's item to its user's profile at the row's cut-off."""
        clicks = batch.tables.clicks
        if clicks is None:
            raise ValueError("tables must hold a click history for cosine_recent_clicks. Got none instead.")
        profile = recent_click_profiles(clicks, batch.frame["user_id"], batch.end, self.history_len, self.embedding)
        item_row = batch.frame["_item_row"]
        item_vec = self.embedding[np.maximum(item_row, 0)]
        item_vec[item_row < 0] = np.nan
        return [rowdot(profile, item_vec)]
