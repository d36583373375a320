"""(query, item) pairs laid out query by query: how the NIP scorers score a search round's pairs."""

from __future__ import annotations

import numpy as np

__all__ = ["query_grid"]


def query_grid(queries: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pairs' distinct queries and a grid with one row of items per query.

    Parameters
    ----------
    queries, items : ndarray of int64, shape (n_pairs,)
        The query and the item of each pair.

    Returns
    -------
    uniq : ndarray
        Distinct queries (sorted).
    inverse, slot : ndarray of int64
        Row and column of each pair in ``grid`` (``grid[inverse, slot] == items``).
    grid : ndarray of int64, shape (len(uniq), most pairs of one query)
        Each query's items in pair order, padded with item 0 (scores of padding are not read).
    """
    uniq, inverse = np.unique(queries, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    slot = np.empty(len(queries), dtype=np.int64)
    slot[order] = np.arange(len(queries)) - np.searchsorted(inverse[order], inverse[order], side="left")
    grid = np.zeros((len(uniq), int(slot.max()) + 1 if len(queries) else 0), dtype=np.int64)
    grid[inverse, slot] = items
    return uniq, inverse, slot, grid
