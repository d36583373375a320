"""One request's features from a per-day item table: the serving path of ``transform``.

A serving request scores the candidates of one user on one day. Most feature columns depend
only on the candidate item and the day (the item's windowed statistics, its attributes and
ids), some only on the user and the day (the user's statistics and attributes), the rest on
both or on the row itself (user x item-attribute crosses, position, context, the cosine to
the user's recent clicks, the item's age at the request's second). :class:`RequestLayout`
splits a fitted :class:`~ltr.features._matrix.Layout`'s blocks by that *scope*:

- ``item`` columns are computed once per day and item (the first time a request of the day
  has the item), kept in the caller's :class:`~ltr.features.DayTableCache`, and gathered by
  each candidate's items-table row (a candidate missing from the items table is computed
  on the spot);
- ``request`` columns are computed on the request's first row and repeated;
- ``row`` columns are computed on every row, as the general path does.

Each column is computed by the same block code from the same inputs as on the general path,
so the features are bit-identical (``tests/ltr/test_serving_fast_path.py``); only the time
differs. A block that does not say otherwise is a ``row`` block, which is always correct.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ltr.features._attributes import ItemAttributeValues
from ltr.features._blocks import Batch, CategoricalBlock, ContinuousBlock
from ltr.features._categories import AttributeCategories, IdCategories
from ltr.features._counting import ClickRecency, WindowedCounts
from ltr.features._day_tables import DayTableCache
from ltr.features._matrix import FeatureMatrix, Layout
from ltr.features._tables import HistoryTables

__all__ = ["SCOPES", "RequestLayout"]

#: Scopes, from the most shared to the least (see the module docstring).
SCOPES = ("item", "request", "row")

Frame = Mapping[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class _Part:
    """Some output columns of one block: which (``take``) and where they go (``put``)."""

    block: ContinuousBlock | CategoricalBlock
    take: np.ndarray
    put: np.ndarray


def _scope_of_keys(keys: tuple[str, ...], item_columns: frozenset[str], user_columns: frozenset[str]) -> str:
    if all(k in item_columns for k in keys):
        return "item"
    if all(k in user_columns for k in keys):
        return "request"
    return "row"


def _family_parts(block: WindowedCounts | ClickRecency, offset: int, item_columns: frozenset[str],
                  user_columns: frozenset[str], families: Mapping[str, tuple[str, ...]]) -> list[tuple[str, _Part]]:
    """Sub-blocks of a per-family block, one per scope of the families' key columns."""
    position = {name: offset + j for j, name in enumerate(block.names)}
    by_scope: dict[str, list[str]] = {}
    for family in block.families:
        by_scope.setdefault(_scope_of_keys(families[family], item_columns, user_columns), []).append(family)
    parts = []
    for scope, names in by_scope.items():
        if isinstance(block, WindowedCounts):
            sub: WindowedCounts | ClickRecency = replace(block, families={f: block.families[f] for f in names})
        else:
            sub = replace(block, families=tuple(names))
        put = np.array([position[name] for name in sub.names], dtype=np.intp)
        parts.append((scope, _Part(sub, np.arange(put.size, dtype=np.intp), put)))
    return parts


def _continuous_parts(block: ContinuousBlock, offset: int, item_columns: frozenset[str],
                      user_columns: frozenset[str], families: Mapping[str, tuple[str, ...]]) -> list[tuple[str, _Part]]:
    if isinstance(block, (WindowedCounts, ClickRecency)):
        return _family_parts(block, offset, item_columns, user_columns, families)
    if isinstance(block, ItemAttributeValues):
        # The age is measured at the request's second; the other values are the item's own.
        scopes = ["row" if name == "item_age_days" else "item" for name in block.names]
    else:
        scopes = ["row"] * len(block.names)
    return _by_scope(block, offset, scopes)


def _by_scope(block: ContinuousBlock | CategoricalBlock, offset: int, scopes: list[str]) -> list[tuple[str, _Part]]:
    """One part per scope present: the whole block evaluated, the columns of that scope kept."""
    parts = []
    for scope in SCOPES:
        take = np.array([j for j, s in enumerate(scopes) if s == scope], dtype=np.intp)
        if take.size:
            parts.append((scope, _Part(block, take, offset + take)))
    return parts


def _categorical_parts(block: CategoricalBlock, offset: int, item_columns: frozenset[str],
                       user_columns: frozenset[str]) -> list[tuple[str, _Part]]:
    if isinstance(block, AttributeCategories):
        scopes = ["item" if block.group == "item" else "request"] * len(block.names)
    elif isinstance(block, IdCategories):
        scopes = [_scope_of_keys((name,), item_columns, user_columns) for name in block.names]
    else:
        scopes = ["row"] * len(block.names)
    return _by_scope(block, offset, scopes)


def _puts(parts: tuple[_Part, ...]) -> np.ndarray:
    return np.concatenate([p.put for p in parts]) if parts else np.empty(0, dtype=np.intp)


@dataclass(frozen=True, eq=False)
class RequestLayout:
    """The blocks of a :class:`Layout` split by scope (see the module docstring).

    Parameters
    ----------
    layout : Layout
        The fitted layout (its column order and writer).
    continuous, categorical : mapping of str -> tuple of _Part
        Per scope, the block parts that compute its continuous values and categorical codes.
    """

    layout: Layout
    continuous: Mapping[str, tuple[_Part, ...]]
    categorical: Mapping[str, tuple[_Part, ...]]

    @property
    def item_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the item-scope continuous and categorical columns, in item-table order."""
        return _puts(self.continuous["item"]), _puts(self.categorical["item"])

    @classmethod
    def split(cls, layout: Layout, families: Mapping[str, tuple[str, ...]],
              key_attributes: tuple[str, ...]) -> RequestLayout:
        """Split ``layout``'s blocks by scope.

        Parameters
        ----------
        layout : Layout
        families : mapping of str -> tuple of str
            Key columns of each counting family (the plan's).
        key_attributes : tuple of str
            Attribute columns of the prepared frame used as keys (``item_category`` ...).
        """
        item_columns = frozenset({"item_id"} | {a for a in key_attributes if a.startswith("item_")})
        user_columns = frozenset({"user_id"} | {a for a in key_attributes if a.startswith("user_")})
        continuous: dict[str, list[_Part]] = {scope: [] for scope in SCOPES}
        offset = 0
        for block in layout.continuous:
            for scope, part in _continuous_parts(block, offset, item_columns, user_columns, families):
                continuous[scope].append(part)
            offset += len(block.names)
        categorical: dict[str, list[_Part]] = {scope: [] for scope in SCOPES}
        offset = 0
        for cat in layout.categorical:
            for scope, part in _categorical_parts(cat, offset, item_columns, user_columns):
                categorical[scope].append(part)
            offset += len(cat.names)
        return cls(layout, {s: tuple(p) for s, p in continuous.items()}, {s: tuple(p) for s, p in categorical.items()})

    def assemble(self, frame: Frame, tables: HistoryTables, cache: DayTableCache, dense: bool, onehot: bool,
                 n_items: int) -> FeatureMatrix | None:
        """The features of one request's rows, or None when ``frame`` is not one request.

        Parameters
        ----------
        frame : mapping of str -> ndarray
            The prepared frame; one request: one user, one day (day cut-offs only).
        tables : HistoryTables
            The fitted tables.
        cache : DayTableCache
            Holds the per-day item tables (and the per-day count tables).
        dense, onehot : bool
            Fill ``FeatureMatrix.dense``, ``FeatureMatrix.X``.
        n_items : int
            Rows of the items table (``frame["_item_row"]`` indexes it; 0 without one).
        """
        n = frame["ts"].size
        day, user = frame["day"], frame["user_id"]
        if n == 0 or not (day == day[0]).all() or not (user == user[0]).all():
            return None
        layout = self.layout
        cont = np.empty((n, layout.n_continuous), dtype=np.float64, order="F")
        cat = np.empty((n, layout.n_categorical), dtype=np.int32)
        end = day.astype(np.int64, copy=False)
        self._fill("row", Batch(frame, end, 1, tables, cache), cont, cat)
        first = {name: values[:1] for name, values in frame.items()}
        self._fill("request", Batch(first, end[:1], 1, tables, cache), cont, cat)
        self._fill_items(frame, end, tables, cache, cont, cat, n_items)
        return layout.assemble_values(cont, cat, dense, onehot)

    def _fill(self, scope: str, batch: Batch, cont: np.ndarray, cat: np.ndarray,
              rows: np.ndarray | slice = slice(None)) -> None:
        """Compute ``scope``'s columns on ``batch`` and write them to ``rows`` (broadcast from one row)."""
        for part in self.continuous[scope]:
            columns = part.block.columns(batch)  # type: ignore[union-attr]
            for j, put in zip(part.take, part.put, strict=True):
                cont[rows, put] = columns[j]
        for part in self.categorical[scope]:
            codes = part.block.codes(batch.frame)[:, part.take]  # type: ignore[union-attr]
            if isinstance(rows, slice):
                cat[rows, part.put] = codes
            else:
                cat[np.ix_(rows, part.put)] = codes

    def _fill_items(self, frame: Frame, end: np.ndarray, tables: HistoryTables, cache: DayTableCache,
                    cont: np.ndarray, cat: np.ndarray, n_items: int) -> None:
        """Item columns: gathered from the day's item table, computed (and kept) where it lacks them."""
        cont_put, cat_put = self.item_columns
        if not cont_put.size and not cat_put.size:
            return
        item_row = frame["_item_row"]
        compute = item_row < 0  # items of no table: computed for this request only
        table = None
        if n_items and not compute.all():
            table = cache.memo(("request-items", int(end[0])), (self, tables),
                               lambda: _ItemTable.empty(n_items, cont_put.size, cat_put.size))
            compute |= ~table.filled[np.maximum(item_row, 0)]
        if compute.any():
            rows = np.flatnonzero(compute)
            sub = {name: values[rows] for name, values in frame.items()}
            self._fill("item", Batch(sub, end[rows], 1, tables, cache), cont, cat, rows=rows)
            if table is not None:
                table.keep(item_row[rows], cont[np.ix_(rows, cont_put)], cat[np.ix_(rows, cat_put)])
        if table is not None and not compute.all():
            rows = np.flatnonzero(~compute)
            cont[np.ix_(rows, cont_put)] = table.values[item_row[rows]]
            cat[np.ix_(rows, cat_put)] = table.codes[item_row[rows]]


@dataclass(eq=False)
class _ItemTable:
    """Item-scope columns of one day, per items-table row, filled as requests ask for items.

    Rows are allocated for the whole table but written (and so held in memory by the
    operating system) only for the items requested that day.
    """

    values: np.ndarray
    codes: np.ndarray
    filled: np.ndarray

    @classmethod
    def empty(cls, n_items: int, n_values: int, n_codes: int) -> _ItemTable:
        return cls(np.empty((n_items, n_values), dtype=np.float64), np.empty((n_items, n_codes), dtype=np.int32),
                   np.zeros(n_items, dtype=bool))

    def keep(self, rows: np.ndarray, values: np.ndarray, codes: np.ndarray) -> None:
        """Store the columns of items-table ``rows`` (negative rows, items of no table, are skipped)."""
        known = rows >= 0
        self.values[rows[known]] = values[known]
        self.codes[rows[known]] = codes[known]
        self.filled[rows[known]] = True
