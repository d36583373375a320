"""Point-in-time item popularity, an input of the NIP scorer beside the item vector.

For a request at ``ts`` (epoch seconds) in the hour bin ``b = ts // 3600`` and a window of
``w`` hours, an item's count is its clicks in the bins ``b - w .. b - 1``: strictly before the
request's own hour, so no click of the request (nor any later one) is ever counted, and two
requests of one hour see the same counts (a batch gives what one request at a time gives).
The scorer's input is ``log1p`` of each window's count.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["RecentClicks", "score_inputs"]

_HOUR = 3600


class RecentClicks:
    """Click counts per catalogue row over hour windows before a request.

    Parameters
    ----------
    times : ndarray of int64, shape (n,)
        Click times, epoch seconds.
    rows : ndarray of int64, shape (n,)
        Catalogue rows of the clicked items; rows < 0 (items outside the catalogue) are ignored.
    windows : tuple of int
        Window lengths in hours, one feature each.
    """

    def __init__(self, times: np.ndarray, rows: np.ndarray, windows: tuple[int, ...]) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        keep = rows >= 0
        bins = np.asarray(times, dtype=np.int64)[keep] // _HOUR
        rows = rows[keep]
        self.windows = tuple(int(w) for w in windows)
        self._first = int(bins.min()) if bins.size else 0
        self._span = (int(bins.max()) - self._first + 1) if bins.size else 1
        # One sorted key per click: row, then hour bin (offsets 0 .. span-1 of a stride span + 1).
        self._keys = np.sort(rows * (self._span + 1) + (bins - self._first))
        # Where each row's keys start (rows past the last clicked one: the end).
        n_rows = int(rows.max()) + 2 if rows.size else 1
        self._start = np.searchsorted(self._keys, np.arange(n_rows, dtype=np.int64) * (self._span + 1))

    def _before(self, rows: np.ndarray, bins: np.ndarray) -> np.ndarray:
        """Index of the first key of each row at or after its bin: its clicks strictly before
        ``bins`` are the keys from its start up to there."""
        offset = np.clip(bins - self._first, 0, self._span)
        return np.searchsorted(self._keys, rows * (self._span + 1) + offset)

    def features(self, ts: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``log1p`` counts ``(*shape, len(windows))`` of the pairs (request time, catalogue row)
        broadcast together; rows < 0 (padding) get zeros."""
        ts, rows = np.broadcast_arrays(np.asarray(ts, dtype=np.int64), np.asarray(rows, dtype=np.int64))
        bins, flat = ts.reshape(-1) // _HOUR, rows.reshape(-1)
        valid = flat >= 0
        safe = np.minimum(np.where(valid, flat, 0), self._start.size - 1)  # an unclicked row: no keys
        upto = self._before(safe, bins)
        out = np.empty((flat.size, len(self.windows)), dtype=np.float32)
        for j, w in enumerate(self.windows):  # a handful of windows
            out[:, j] = np.log1p(upto - np.maximum(self._before(safe, bins - w), self._start[safe]))
        out[~valid] = 0.0
        return out.reshape(*rows.shape, len(self.windows))


def score_inputs(popularity: RecentClicks | None, ts: np.ndarray) -> Callable[[np.ndarray], dict[str, torch.Tensor]]:
    """``extra(rows)``: the keyword arguments of ``net.score`` for queries at times ``ts``
    ``(B,)`` and catalogue ``rows`` ``(B or 1, C)``; none without ``popularity``."""

    def extra(rows: np.ndarray) -> dict[str, torch.Tensor]:
        if popularity is None:
            return {}
        feats = popularity.features(ts[:, None], np.broadcast_to(rows, (ts.shape[0], rows.shape[1])))
        return {"popularity": torch.from_numpy(feats)}

    return extra
