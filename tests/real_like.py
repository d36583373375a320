"""Simulated logs made to look like real ones: attributes missing, rows missing from the
items and users tables (the log contract accepts both; features and recall sources give them
an explicit missing level). Shared by the ltr and recall tests of that handling.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ltr.logs import Logs


class Missing(NamedTuple):
    """Which items and users of a world lost what."""

    logs: Logs
    blanked: np.ndarray  # item ids whose category (and city) were blanked
    dropped_items: np.ndarray  # item ids removed from the items table
    dropped_users: np.ndarray  # user ids removed from the users table
    blanked_users: np.ndarray  # user ids whose city was blanked


def with_missing_attributes(logs: Logs, seed: int, blank: float = 0.15, drop_items: float = 0.1,
                            drop_users: float = 0.1) -> Missing:
    """``logs`` with the category and city of a share of items (and the city of a share of
    users) blanked, and a share of items and users removed from their tables (not re-validated:
    the contract keeps a missing category a missing value, and exposed items/users may lack a
    row)."""
    rng = np.random.default_rng(seed)
    items = logs.items.copy()
    n = len(items)
    order = rng.permutation(n)
    blank_rows = order[: int(blank * n)]
    drop_rows = order[int(blank * n): int(blank * n) + int(drop_items * n)]
    # Missing values as the validated contract holds them: object columns with NaN.
    for column in ("category", "city"):
        if column in items.columns:
            values = items[column].astype(object)
            values.iloc[blank_rows] = np.nan
            items[column] = values
    blanked = items["item_id"].to_numpy()[blank_rows]
    dropped_items = items["item_id"].to_numpy()[drop_rows]
    items = items.drop(index=items.index[drop_rows]).reset_index(drop=True)
    users = logs.users.copy()
    draw = rng.random(len(users))
    gone, blank_user = draw < drop_users, draw > 1 - blank
    dropped_users = users["user_id"].to_numpy()[gone]
    blanked_users = users["user_id"].to_numpy()[blank_user]
    city = users["city"].astype(object)
    city[blank_user] = np.nan
    users = users.assign(city=city).loc[~gone].reset_index(drop=True)
    return Missing(logs.replace(items=items, users=users), blanked, dropped_items, dropped_users, blanked_users)


def without_category(logs: Logs, item_ids: np.ndarray) -> np.ndarray:
    """Mask of ``item_ids`` whose category is unknown: blank, or no row in the items table."""
    category = pd.Series(logs.items["category"].to_numpy(dtype=object), index=logs.items["item_id"].to_numpy())
    return category.reindex(np.asarray(item_ids)).isna().to_numpy()
