"""Item and user attribute tables keyed by id, and the numeric item attributes as features.

An :class:`AttributeTable` is fitted once (``logs.items`` or ``logs.users``) and answers, per
exposure, the row of its id (-1 for ids it has never seen) and the attribute values of that
row. A missing value and an id absent from the table are the same thing to the features: the
attribute is not known (``take`` gives None/NaN, ``take_key`` the explicit level
:data:`MISSING_KEY`). :class:`ItemAttributeValues` is the feature block of the numeric item attributes: each
as is, except ``publish_ts`` which becomes the item's age in days at the exposure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr._validation import check_frame
from ltr.artifacts import check_state
from ltr.features._blocks import Batch
from ltr.logs import SECONDS_PER_DAY

__all__ = ["MISSING_KEY", "AttributeTable", "IdLookup", "ItemAttributeValues", "plain_ids", "storable"]

_FORMAT = "ltr.AttributeTable"
_FORMAT_VERSION = 1
#: Key code of a missing attribute (a missing value, or an id absent from the table) when the
#: attribute is part of a counting key: its own level, counted like any other (float codes of
#: present values are >= 0, see :meth:`AttributeTable.take_float`).
MISSING_KEY = -1.0


class IdLookup:
    """Row of each queried id among distinct ``ids`` (-1 when absent), built once.

    Integer ids are found by ``np.searchsorted`` over a sorted copy (exactly what
    ``pandas.Index(ids).get_indexer`` answers for integer queries, without building a
    hash table of the query per call); other id or query types use a cached
    ``pandas.Index``.
    """

    def __init__(self, ids: np.ndarray):
        self._index = pd.Index(ids)
        self._int = ids.dtype.kind in "iu" and ids.dtype.itemsize == 8 and ids.size > 0
        if self._int:
            ids = ids.astype(np.int64)
            self._order = np.argsort(ids, kind="stable")
            self._sorted = ids[self._order]

    def __call__(self, query: Any) -> np.ndarray:
        if self._int and isinstance(query, np.ndarray) and query.dtype.kind == "i" and query.ndim == 1:
            pos = np.searchsorted(self._sorted, query)
            np.minimum(pos, self._sorted.size - 1, out=pos)
            return np.where(self._sorted[pos] == query, self._order[pos], -1).astype(np.int64, copy=False)
        return np.asarray(self._index.get_indexer(query), dtype=np.int64)


class AttributeTable:
    """Item or user attributes keyed by id: numeric, string and embedding columns.

    Parameters
    ----------
    ids : ndarray
        Distinct ids, one per table row (int64, float, or str as object).
    columns : dict of str -> ndarray
        Attribute values per row: float64 (NaN = missing) or object (str or None).
    embedding : ndarray of shape (n_rows, dim) or None
        Unit-norm embedding rows (NaN rows: none or a zero vector).
    """

    def __init__(self, ids: np.ndarray, columns: dict[str, np.ndarray], embedding: np.ndarray | None):
        self.ids = ids
        self.columns = columns
        self.embedding = embedding
        self._lookup = IdLookup(ids)
        # Float codes (NaN = missing) let string attributes serve as counting keys
        # without per-row string handling.
        self.codes: dict[str, np.ndarray] = {}
        for name, values in columns.items():
            if values.dtype == object:
                code, _ = pd.factorize(values, sort=True, use_na_sentinel=True)
                self.codes[name] = np.where(code < 0, np.nan, code.astype(np.float64))
            else:
                self.codes[name] = values

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, id_column: str, table: str) -> AttributeTable:
        """Table of a frame with one row per id (``logs.items`` or ``logs.users``).

        Numeric columns become float64, a list-valued ``embedding`` column unit rows, any
        other column strings (None = missing).
        """
        check_frame(frame, table, (id_column,))
        ids = frame[id_column]
        dup = ids.duplicated()
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            value = ids.iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            raise ValueError(f"{table}.{id_column} must be unique. Got {value!r} twice (row {row}) instead.")
        columns: dict[str, np.ndarray] = {}
        embedding = None
        for col in frame.columns:
            if col == id_column:
                continue
            values = frame[col]
            if col == "embedding":
                embedding = _unit_embeddings(values, table)
            elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
                columns[col] = values.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                columns[col] = _object_strings(values.to_numpy(dtype=object))
        return cls(plain_ids(ids.to_numpy()), columns, embedding)

    def numeric_columns(self) -> list[str]:
        """Names of the float columns, in table order."""
        return [name for name, values in self.columns.items() if values.dtype != object]

    def string_columns(self) -> list[str]:
        """Names of the string columns, in table order."""
        return [name for name, values in self.columns.items() if values.dtype == object]

    def lookup(self, ids: Any) -> np.ndarray:
        """Table row of each id, -1 for unknown ids."""
        return self._lookup(ids)

    def take(self, column: str, index: np.ndarray) -> np.ndarray:
        """Values of ``column`` at table rows ``index`` (None or NaN where ``index < 0``)."""
        values = self.columns[column]
        out = values[np.maximum(index, 0)] if values.size else np.empty(index.size, dtype=values.dtype)
        missing = index < 0
        if values.dtype == object:
            out = out.copy() if values.size else np.full(index.size, None, dtype=object)
            out[missing] = None
        else:
            out = np.where(missing, np.nan, out) if values.size else np.full(index.size, np.nan)
        return out

    def take_float(self, column: str, index: np.ndarray) -> np.ndarray:
        """:meth:`take` as float codes (strings by sorted rank), NaN where missing."""
        values = self.codes[column]
        if values.size == 0:
            return np.full(index.size, np.nan)
        return np.where(index < 0, np.nan, values[np.maximum(index, 0)])

    def take_key(self, column: str, index: np.ndarray) -> np.ndarray:
        """:meth:`take_float` with missing values (and unknown ids) as the level :data:`MISSING_KEY`.

        Counting keys such as user x category then count the exposures of items without a
        category together, instead of dropping them.
        """
        values = self.take_float(column, index)
        return np.where(np.isnan(values), MISSING_KEY, values)

    def raw_frame(self, columns: Sequence[str], prefix: str) -> pd.DataFrame:
        """Raw values of ``columns`` per table row, plus a last all-missing row (unknown id)."""
        out = {}
        for col in columns:
            values = self.columns[col]
            filler = np.array([None], dtype=object) if values.dtype == object else np.array([np.nan])
            out[f"{prefix}{col}"] = np.concatenate([values, filler])
        return pd.DataFrame(out)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export as JSON-able metadata and plain arrays (``npz``-safe, no object arrays).

        Returns
        -------
        meta : dict
            Format tag and version, the kind of each column, whether there is an embedding.
        arrays : dict of str -> ndarray
            ``ids``, ``col.<name>`` per column (``mask.<name>`` marks missing strings) and
            ``embedding``.
        """
        arrays = {"ids": storable(self.ids)}
        kinds = {}
        for name, values in self.columns.items():
            if values.dtype == object:
                missing = np.array([v is None for v in values], dtype=bool)
                arrays[f"col.{name}"] = storable(np.where(missing, "", values))
                arrays[f"mask.{name}"] = missing
                kinds[name] = "str"
            else:
                arrays[f"col.{name}"] = values
                kinds[name] = "number"
        if self.embedding is not None:
            arrays["embedding"] = self.embedding
        meta = {"format": _FORMAT, "version": _FORMAT_VERSION, "columns": kinds}
        meta["embedding"] = self.embedding is not None
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> AttributeTable:
        """Rebuild from :meth:`to_state` output."""
        check_state(meta, _FORMAT, _FORMAT_VERSION, ("columns", "embedding"))
        columns = {}
        for name, kind in meta["columns"].items():
            values = np.asarray(arrays[f"col.{name}"])
            if kind == "str":
                obj = values.astype(object)
                obj[np.asarray(arrays[f"mask.{name}"], dtype=bool)] = None
                columns[name] = np.array([None if v is None else str(v) for v in obj], dtype=object)
            else:
                columns[name] = values.astype(np.float64)
        embedding = np.asarray(arrays["embedding"], dtype=np.float64) if meta["embedding"] else None
        return cls(plain_ids(np.asarray(arrays["ids"])), columns, embedding)


@dataclass(frozen=True, eq=False)
class ItemAttributeValues:
    """Feature block: the numeric item attributes, ``publish_ts`` as the age in days.

    Parameters
    ----------
    items : AttributeTable
        The fitted items table.
    exclude : tuple of str, default ()
        Columns that are not numbers to compare (item keys such as ``author_id``).
    """

    items: AttributeTable
    exclude: tuple[str, ...] = ()

    def _numeric(self) -> list[str]:
        return [c for c in self.items.numeric_columns() if c not in self.exclude]

    @property
    def names(self) -> tuple[str, ...]:
        """``item_<column>`` per numeric column, ``item_age_days`` for ``publish_ts``."""
        return tuple("item_age_days" if c == "publish_ts" else f"item_{c}" for c in self._numeric())

    @property
    def value_names(self) -> tuple[str, ...]:
        """None of the columns is a raw value column of ``X``."""
        return ()

    def columns(self, batch: Batch) -> list[np.ndarray]:
        """The values of the batch rows' items (NaN for unknown items)."""
        item_row = batch.frame["_item_row"]
        out = []
        for col in self._numeric():
            raw = self.items.take_float(col, item_row)
            out.append((batch.frame["ts"] - raw) / SECONDS_PER_DAY if col == "publish_ts" else raw)
        return out


def plain_ids(ids: np.ndarray) -> np.ndarray:
    """Ids as int64, float or bool as they are, anything else as Python str (object)."""
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64)
    if ids.dtype.kind in "fb":
        return ids
    return np.array([str(v) for v in ids.tolist()], dtype=object)


def storable(values: np.ndarray) -> np.ndarray:
    """Values as an array ``np.load(allow_pickle=False)`` can read (object -> unicode)."""
    if values.dtype == object:
        as_list = [str(v) for v in values.tolist()]
        return np.array(as_list, dtype=str) if as_list else np.array([], dtype="<U1")
    return values


def _object_strings(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.size, dtype=object)
    missing = pd.isna(values)
    out[missing] = None
    out[~missing] = [str(v) for v in values[~missing].tolist()]
    return out


def _unit_embeddings(values: pd.Series, table: str) -> np.ndarray:
    """Stack list-valued embeddings into unit rows; rows without one are NaN."""
    raw = values.to_numpy(dtype=object)
    present = np.array([v is not None and not (np.isscalar(v) and pd.isna(v)) for v in raw], dtype=bool)
    if not present.any():
        return np.full((raw.size, 1), np.nan)
    lengths = {len(v) for v in raw[present]}
    if len(lengths) != 1:
        raise ValueError(
            f"{table}.embedding must have one length for every row. Got lengths {sorted(lengths)} instead."
        )
    dim = lengths.pop()
    matrix = np.full((raw.size, dim), np.nan)
    matrix[present] = np.stack([np.asarray(v, dtype=np.float64) for v in raw[present]])
    norm = np.sqrt(np.nansum(matrix * matrix, axis=1))
    bad = present & (~np.isfinite(norm) | (norm == 0))
    matrix[bad] = np.nan
    return matrix / np.where(norm > 0, norm, 1.0)[:, None]
