"""Missing attributes are data: count them (:func:`attribute_coverage`, :func:`missing_attribute_counts`).

Real logs have items without a category (or any attribute), exposed items absent from the
items table and users absent from the users table. Validation accepts all of them; these
counts say how many there are, in ``python -m ltr.logs validate`` and in the join report, so
nothing is lost without a word. Features and recall sources give them an explicit missing level.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from ltr.logs._contract import Logs

__all__ = ["AttributeCoverage", "attribute_coverage", "missing_attribute_counts"]


@dataclass(frozen=True)
class AttributeCoverage:
    """How complete the item and user attributes of validated logs are.

    ``items_in_table`` / ``users_in_table`` are None when the logs have no such table; then
    every referenced item (user) counts as not in the table. ``*_missing_by_column`` lists the
    attribute columns with at least one missing value (the category apart), with how many rows
    miss it.
    """

    items_in_table: int | None
    items_without_category: int
    items_missing_by_column: dict[str, int] = field(default_factory=dict)
    items_referenced: int = 0
    items_not_in_table: int = 0
    users_in_table: int | None = None
    users_missing_by_column: dict[str, int] = field(default_factory=dict)
    users_referenced: int = 0
    users_not_in_table: int = 0

    def to_dict(self) -> dict:
        """Plain-number dictionary (JSON-ready)."""
        return asdict(self)

    def to_text(self) -> str:
        """Human-readable lines, one fact each."""
        out = ["Attributes (missing values are kept: they share the missing level)"]
        if self.items_in_table is None:
            out.append("  no items table: item attributes and categories are missing for every item")
        else:
            out.append(f"  items table: {self.items_in_table:,d} items; {self.items_without_category:,d} items have "
                       "no category: they share the missing level")
            out += [f"    column {name}: {n:,d} items have no value"
                    for name, n in self.items_missing_by_column.items()]
        out.append(f"  items in exposures or candidates: {self.items_referenced:,d}; "
                   f"{self.items_not_in_table:,d} are not in the items table")
        if self.users_in_table is None:
            out.append("  no users table: user attributes are missing for every user")
        else:
            out.append(f"  users table: {self.users_in_table:,d} users")
            out += [f"    column {name}: {n:,d} users have no value"
                    for name, n in self.users_missing_by_column.items()]
        out.append(f"  users of requests: {self.users_referenced:,d}; "
                   f"{self.users_not_in_table:,d} are not in the users table")
        return "\n".join(out)


def _missing_by_column(table: pd.DataFrame, skip: tuple[str, ...]) -> dict[str, int]:
    counts = table.drop(columns=[c for c in skip if c in table.columns]).isna().sum()
    return {str(name): int(n) for name, n in counts.items() if n > 0}


def _not_in(ids: pd.Series, table: pd.DataFrame | None, key: str) -> int:
    if table is None:
        return len(ids)
    return int((~ids.isin(table[key])).sum())


def attribute_coverage(logs: Logs) -> AttributeCoverage:
    """Count missing categories, missing attribute values and ids absent from ``items``/``users``.

    Parameters
    ----------
    logs : Logs
        Validated logs.

    Returns
    -------
    AttributeCoverage
    """
    items, users = logs.items, logs.users
    referenced = [logs.exposures["item_id"]]
    if logs.candidates is not None:
        referenced.append(logs.candidates["item_id"])
    item_ids = pd.Series(pd.unique(pd.concat(referenced, ignore_index=True)))
    user_ids = pd.Series(pd.unique(logs.requests["user_id"]))
    return AttributeCoverage(
        items_in_table=None if items is None else len(items),
        items_without_category=0 if items is None else int(items["category"].isna().sum()),
        items_missing_by_column={} if items is None else _missing_by_column(items, ("item_id", "category")),
        items_referenced=len(item_ids),
        items_not_in_table=_not_in(item_ids, items, "item_id"),
        users_in_table=None if users is None else len(users),
        users_missing_by_column={} if users is None else _missing_by_column(users, ("user_id",)),
        users_referenced=len(user_ids),
        users_not_in_table=_not_in(user_ids, users, "user_id"),
    )


def missing_attribute_counts(samples: pd.DataFrame, items: pd.DataFrame | None,
                             users: pd.DataFrame | None) -> dict[str, int]:
    """Samples whose item is absent from ``items``, whose item has no category, whose user is absent.

    Without an items (users) table every sample counts as absent from it.

    Returns
    -------
    dict
        ``samples_item_not_in_items``, ``samples_item_without_category``,
        ``samples_user_not_in_users``.
    """
    n = len(samples)
    if items is None:
        no_item = no_category = n
    else:
        known = samples["item_id"].isin(items["item_id"]).to_numpy()
        uncategorised = items.loc[items["category"].isna(), "item_id"]
        no_item = int((~known).sum())
        no_category = int(samples["item_id"].isin(uncategorised).sum())
    no_user = n if users is None else int((~samples["user_id"].isin(users["user_id"])).sum())
    return {"samples_item_not_in_items": no_item, "samples_item_without_category": no_category,
            "samples_user_not_in_users": no_user}
