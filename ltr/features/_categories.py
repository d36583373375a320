"""Categorical feature blocks: request context columns, and item/user attributes.

Both encode with a :class:`~ltr.features.CategoryEncoder` fitted on the training rows: levels
rarer than ``min_count`` (and levels never seen in training) share the unknown slot
``<unk>``; a missing value has its own level ``<nan>`` (``missing="separate"``), whatever its
count. For item and user attributes "missing" covers a missing value and an id absent from
the table alike (real logs have both: items without a category, exposed items missing from
the items table, users missing from the users table); for context columns it covers a missing
value and a column absent from the frame. Context columns (device, recall source,
hour, position ...) are encoded row by row; item and user attributes are encoded once per
attribute-table row at fit and gathered by each row's table row, which is far cheaper than
encoding every exposure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.features._attributes import AttributeTable
from ltr.features._encoding import CategoryEncoder

__all__ = ["MISSING", "AttributeCategories", "ContextCategories", "IdCategories"]

#: Where missing values go (see the module docstring).
MISSING = "separate"


def _object_or_native(values: np.ndarray) -> np.ndarray:
    """Strings as object (as the encoder saw them at fit), anything else unchanged."""
    return values.astype(object) if values.dtype.kind in "US" else values


@dataclass(frozen=True, eq=False)
class ContextCategories:
    """Categorical block of columns of the prepared frame itself.

    Parameters
    ----------
    names : tuple of str
        Frame columns, in order.
    encoder : CategoryEncoder
        Fitted on those columns.
    """

    names: tuple[str, ...]
    encoder: CategoryEncoder

    @property
    def group(self) -> str:
        """Name of the encoder's group in ``FeatureBuilder.encoders_``."""
        return "context"

    @classmethod
    def fit(cls, frame: Mapping[str, np.ndarray], names: Sequence[str], min_count: int) -> ContextCategories:
        """Fit the encoder on the training rows' columns ``names``."""
        encoder = CategoryEncoder(min_count=min_count, missing=MISSING).fit(cls.training_frame(frame, names))
        return cls(tuple(names), encoder)

    @staticmethod
    def training_frame(frame: Mapping[str, np.ndarray], names: Sequence[str]) -> pd.DataFrame:
        """The columns the encoder is fitted on."""
        # Object columns stay object: no round trip through pandas' string dtype.
        columns = {}
        for col in names:
            values = frame[col]
            columns[col] = pd.Series(values, dtype=object if values.dtype.kind in "OUS" else values.dtype, copy=False)
        return pd.DataFrame(columns, copy=False)

    def codes(self, frame: Mapping[str, np.ndarray]) -> np.ndarray:
        """Codes of the rows' context values (same columns and dtypes as at fit)."""
        return self.encoder.encode_columns([_object_or_native(frame[col]) for col in self.names])


@dataclass(frozen=True, eq=False)
class AttributeCategories:
    """Categorical block of attributes of each row's item or user.

    Parameters
    ----------
    names : tuple of str
        Feature names ``"{group}_{attribute}"``, e.g. ``"item_category"``.
    encoder : CategoryEncoder
        Fitted on the training rows' attribute values.
    table : AttributeTable
        The items or users table.
    group : {"item", "user"}
        Which table; rows are found in the frame's ``_item_row``/``_user_row``.
    per_row : ndarray of int32, shape (table rows + 1, len(names))
        Codes of every table row, the last row those of an unknown id.
    """

    names: tuple[str, ...]
    encoder: CategoryEncoder
    table: AttributeTable
    group: str
    per_row: np.ndarray

    @classmethod
    def fit(
        cls, frame: Mapping[str, np.ndarray], table: AttributeTable, group: str, names: Sequence[str], min_count: int
    ) -> AttributeCategories:
        """Fit the encoder on the attribute values of the training rows."""
        encoder = CategoryEncoder(min_count=min_count, missing=MISSING).fit(
            cls.training_frame(frame, table, group, names))
        return cls.from_encoder(encoder, table, group, names)

    @staticmethod
    def training_frame(frame: Mapping[str, np.ndarray], table: AttributeTable, group: str,
                       names: Sequence[str]) -> pd.DataFrame:
        """The attribute values the encoder is fitted on."""
        index = frame[f"_{group}_row"]
        return pd.DataFrame({c: table.take(_attribute(c), index) for c in names})

    @classmethod
    def from_encoder(
        cls, encoder: CategoryEncoder, table: AttributeTable, group: str, names: Sequence[str]
    ) -> AttributeCategories:
        """The block of a fitted encoder: encodes every table row once."""
        per_row = encoder.transform(table.raw_frame([_attribute(c) for c in names], f"{group}_"))
        return cls(tuple(names), encoder, table, group, per_row)

    def codes(self, frame: Mapping[str, np.ndarray]) -> np.ndarray:
        """Codes of the rows' items or users (the unknown row for unknown ids)."""
        index = frame[f"_{self.group}_row"]
        return self.per_row[np.where(index < 0, self.per_row.shape[0] - 1, index)]


def _attribute(name: str) -> str:
    """``"item_category"`` -> ``"category"``."""
    return name.split("_", 1)[1]


@dataclass(frozen=True, eq=False)
class IdCategories:
    """Categorical block of id-level features: ``user_id``, ``item_id`` and item key attributes.

    Ids are categorical features like any other, with their own minimum count: a LightGBM
    model reads the codes as native categoricals, the one-hot model as indicator columns. An id
    rarer than the minimum count in the training rows (a new item, a light user) shares the
    unknown slot, which is what the model learns for "an id it cannot tell apart".

    Parameters
    ----------
    names : tuple of str
        ``user_id``, ``item_id`` (frame columns) and ``item_<key>`` (item attributes).
    encoder : CategoryEncoder
        Fitted on those columns.
    items : AttributeTable or None
        The items table (needed for ``item_<key>`` names).
    """

    names: tuple[str, ...]
    encoder: CategoryEncoder
    items: AttributeTable | None

    @property
    def group(self) -> str:
        """Name of the encoder's group in ``FeatureBuilder.encoders_``."""
        return "ids"

    @classmethod
    def fit(cls, frame: Mapping[str, np.ndarray], names: Sequence[str], items: AttributeTable | None,
            min_count: int) -> IdCategories:
        """Fit the encoder on the training rows' ids."""
        encoder = CategoryEncoder(min_count=min_count, missing=MISSING).fit(cls.training_frame(frame, names, items))
        return cls(tuple(names), encoder, items)

    @classmethod
    def training_frame(cls, frame: Mapping[str, np.ndarray], names: Sequence[str],
                       items: AttributeTable | None) -> pd.DataFrame:
        """The ids the encoder is fitted on."""
        block = cls(tuple(names), CategoryEncoder(min_count=1, missing=MISSING), items)
        columns = {name: pd.Series(value, copy=False) for name, value in zip(names, block._values(frame), strict=True)}
        return pd.DataFrame(columns, copy=False)

    def _values(self, frame: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        out = []
        for name in self.names:
            if name in frame and name in ("user_id", "item_id"):
                out.append(_object_or_native(frame[name]))
            elif self.items is None:
                raise ValueError(f"names must be user_id, item_id or item attributes. Got {name!r} instead.")
            else:
                out.append(_object_or_native(self.items.take(_attribute(name), frame["_item_row"])))
        return out

    def codes(self, frame: Mapping[str, np.ndarray]) -> np.ndarray:
        """Codes of the rows' ids."""
        return self.encoder.encode_columns(self._values(frame))
