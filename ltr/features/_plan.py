"""Which feature families and columns a builder uses, decided once at ``fit``.

:func:`plan_features` turns the builder's parameters and what the training data offers
(frame columns, item and user attribute tables) into a :class:`FeaturePlan`: the key
families to count, the categorical columns by source (frame context, item attributes,
user attributes), the attributes needed as counting keys and the frame columns read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltr.features._attributes import AttributeTable

__all__ = ["CONTEXT", "FORBIDDEN", "KEY_FAMILIES", "REQUIRED", "FeaturePlan", "plan_features"]

KEY_FAMILIES: dict[str, tuple[str, ...]] = {
    "item": ("item_id",),
    "user": ("user_id",),
    "user_category": ("user_id", "item_category"),
    "item_position": ("item_id", "position"),
    "category": ("item_category",),
}
#: Default categorical features of the frame, when present.
CONTEXT = ("device", "recall_source", "hour", "position")
#: Never a feature: the A/B bucket is assigned per user, so a model that saw it would learn
#: the arm rather than the user.
FORBIDDEN = ("bucket",)
#: Columns every frame must have.
REQUIRED = ("user_id", "item_id", "ts")
# Columns every prepared frame has (derived from the required ones when absent).
_DERIVED = frozenset({"hour", "position", "user_id", "item_id", "ts", "day"})


@dataclass(frozen=True)
class FeaturePlan:
    """The families and columns of a fitted builder.

    Parameters
    ----------
    families : mapping of str -> tuple of str
        Key columns of each counting family, in output order.
    context, item, user : tuple of str
        Categorical features by source: frame columns (incl. hour and position), item
        attributes (``item_<attr>``), user attributes (``user_<attr>``).
    key_attributes : tuple of str
        ``item_<attr>``/``user_<attr>`` columns used as counting keys.
    input_columns : tuple of str
        Frame columns read beyond user_id, item_id, ts (day, position): context and key
        columns.
    """

    families: Mapping[str, tuple[str, ...]]
    context: tuple[str, ...]
    item: tuple[str, ...]
    user: tuple[str, ...]
    key_attributes: tuple[str, ...]
    input_columns: tuple[str, ...]

    @property
    def categorical(self) -> tuple[str, ...]:
        """Every categorical feature: context, item, user."""
        return self.context + self.item + self.user

    @property
    def key_columns(self) -> frozenset[str]:
        """Columns of any counting key."""
        return frozenset(c for columns in self.families.values() for c in columns)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able metadata; no arrays."""
        meta = {
            "families": {f: list(c) for f, c in self.families.items()},
            "categorical": {"context": list(self.context), "item": list(self.item), "user": list(self.user)},
            "key_attributes": list(self.key_attributes),
            "input_columns": list(self.input_columns),
        }
        return meta, {}

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FeaturePlan:
        """Inverse of :meth:`to_state`."""
        groups = meta["categorical"]
        return cls(
            families={f: tuple(c) for f, c in meta["families"].items()},
            context=tuple(groups["context"]),
            item=tuple(groups["item"]),
            user=tuple(groups["user"]),
            key_attributes=tuple(meta["key_attributes"]),
            input_columns=tuple(meta["input_columns"]),
        )


def plan_features(
    *,
    key_families: Sequence[str],
    extra_keys: Sequence[Sequence[str]],
    categorical: Sequence[str] | None,
    frame_columns: Collection[str],
    items: AttributeTable | None,
    users: AttributeTable | None,
) -> FeaturePlan:
    """Decide the families and columns in use (parameters as in ``FeatureBuilder``).

    Built-in families whose columns are unavailable (e.g. the item category without an
    items table) are left out; an unavailable column in ``extra_keys`` or ``categorical``
    raises ``ValueError``.
    """
    item_attrs = {f"item_{c}" for c in items.columns} if items is not None else set()
    user_attrs = {f"user_{c}" for c in users.columns} if users is not None else set()

    def available(col: str) -> bool:
        return col in _DERIVED or col in item_attrs or col in user_attrs or col in frame_columns

    families = {name: KEY_FAMILIES[name] for name in key_families if all(map(available, KEY_FAMILIES[name]))}
    for key in extra_keys:
        missing = [c for c in key if not available(c)]
        if missing:
            raise ValueError(
                f"extra_keys columns must exist in samples or the attribute tables. Got unknown {missing} "
                f"in {tuple(key)!r} instead."
            )
        families["__".join(key)] = tuple(key)
    if categorical is None:
        cats = [c for c in CONTEXT if c in ("hour", "position") or c in frame_columns]
        cats += [f"item_{c}" for c in items.string_columns()] if items is not None else []
        cats += [f"user_{c}" for c in users.columns] if users is not None else []
    else:
        cats = list(dict.fromkeys(categorical))
        missing = [c for c in cats if not available(c) or c in ("user_id", "item_id", "ts", "day")]
        if missing:
            raise ValueError(
                "categorical columns must be context columns of samples, hour, position or "
                f"item_/user_ attributes. Got {missing} instead."
            )
    context = tuple(c for c in cats if c not in item_attrs and c not in user_attrs)
    key_cols = {c for cols in families.values() for c in cols}
    return FeaturePlan(
        families=families,
        context=context,
        item=tuple(c for c in cats if c in item_attrs),
        user=tuple(c for c in cats if c in user_attrs),
        key_attributes=tuple(sorted(key_cols & (item_attrs | user_attrs))),
        input_columns=tuple(sorted((key_cols | set(context)) - item_attrs - user_attrs - _DERIVED)),
    )
