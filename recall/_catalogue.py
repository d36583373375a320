"""The catalogue the recall sources learn and retrieve from: the items table plus every item the
logs show that it lacks.

The log contract (DESIGN, "Log contract") accepts items without a category or any other
attribute, and exposed items absent from the items table: such an item is an item whose
attributes are all missing, never an error and never dropped. Every source therefore works on
the same catalogue: the rows of ``logs.items`` in their own order, then the items of the
exposures, candidates, clicks and orders that the table lacks, by first appearance, with every
attribute missing (NaN/None). Each source gives a missing attribute its own explicit level.

Nothing here depends on the order of the id values: relabelling the ids while keeping every
row where it is gives the same catalogue, row for row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.logs import Logs

__all__ = ["EVENT_TABLES", "catalogue", "catalogue_ids"]

#: Tables whose items belong to the catalogue even when the items table lacks them.
EVENT_TABLES = ("exposures", "candidates", "clicks", "orders")


def _event_items(logs: Logs) -> pd.Series:
    """Distinct item ids of the event tables, by first appearance (exposures first)."""
    parts = [getattr(logs, name)["item_id"] for name in EVENT_TABLES if getattr(logs, name) is not None]
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.Series([], dtype=np.int64)
    return pd.Series(pd.unique(pd.concat(parts, ignore_index=True)))


def catalogue(logs: Logs) -> pd.DataFrame:
    """The items table (its rows and order) plus a row per item of the logs it lacks.

    Parameters
    ----------
    logs : ltr.logs.Logs

    Returns
    -------
    DataFrame
        ``logs.items``' columns (``item_id`` alone without an items table), one row per
        item; the added rows have every attribute missing. Index 0..n-1.
    """
    seen = _event_items(logs)
    items = logs.items
    if items is None:
        return pd.DataFrame({"item_id": seen.to_numpy()})
    absent = seen[pd.Index(items["item_id"]).get_indexer(seen) < 0]
    if not len(absent):
        return items.reset_index(drop=True)
    return pd.concat([items, pd.DataFrame({"item_id": absent.to_numpy()})], ignore_index=True)


def catalogue_ids(logs: Logs) -> np.ndarray:
    """The item ids of :func:`catalogue`, in its row order (without building the frame)."""
    seen = _event_items(logs)
    if logs.items is None:
        return seen.to_numpy()
    ids = logs.items["item_id"]
    absent = seen[pd.Index(ids).get_indexer(seen) < 0]
    return pd.concat([ids, absent], ignore_index=True).to_numpy()
