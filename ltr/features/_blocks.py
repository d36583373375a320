"""Feature blocks: what one feature family reads and what it declares.

:class:`~ltr.features.FeatureBuilder` is an orchestrator over blocks. Every block computes
its columns from the same prepared row chunk (:class:`Batch`) and declares its column names
and their kind; the builder bins, encodes, lays out and assembles whatever the blocks give.

Kinds of column:

- continuous (:class:`ContinuousBlock`): float64, NaN where undefined; written raw to
  ``FeatureMatrix.dense`` and, unless NaN on every training row, one-hot binned in ``X``;
- value: a continuous column also written raw to ``X`` (0 where NaN), listed in the
  block's ``value_names``;
- categorical (:class:`CategoricalBlock`): int32 codes of a fitted
  :class:`~ltr.features.CategoryEncoder`; the code goes to ``dense`` (``"{name}:code"``) and
  its one-hot to ``X``.

Adding a family is writing one block and listing it where the builder assembles its blocks
(``FeatureBuilder._continuous_blocks`` or ``_fit_categorical``/``_categorical_blocks``);
what it reads goes into the prepared frame (``_frame.py``) or, when point-in-time, into
:class:`~ltr.features._tables.HistoryTables`. How the families planned next fit:

- id-level categoricals with a minimum count (user, item, an item's author): a
  categorical block over frame columns or item attributes; ``min_count`` already exists;
- all-history cumulative statistics: one more window in the counting block (a
  :class:`~ltr.features.DailyStats` sums any window before the cut-off);
- crosses of user x item attribute: generated key families in the plan (``_plan.py``),
  counted like ``extra_keys``;
- user-item history (seen or clicked this item or author before, days since the last
  click on the author): a source in ``HistoryTables`` (a ``ltr.logs.UserHistory`` of
  (user, item or author) events) and a continuous block reading it;
- point-in-time statistics of extra engagement labels: more label columns counted by
  ``DailyStats`` and named by the counting block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ltr.features._day_tables import DayTableCache
from ltr.features._encoding import CategoryEncoder
from ltr.features._tables import HistoryTables

__all__ = ["Batch", "CategoricalBlock", "ContinuousBlock"]


@dataclass(frozen=True, eq=False)
class Batch:
    """The shared input of every block for one chunk of rows.

    Parameters
    ----------
    frame : mapping of str -> ndarray
        Prepared columns of the rows (see ``ltr.features._frame.prepare_frame``).
    end : ndarray of int64
        Exclusive cut-off of each row in the tables' time unit: its day, or ``ts - lag``.
    span : int
        Table time units per day of window (1, or 86400 with a lag in seconds).
    tables : HistoryTables
        Counting tables and click history the point-in-time values come from.
    cache : DayTableCache or None
        Per-day tables to read counts from; None: query the tables row by row.
    """

    frame: Mapping[str, np.ndarray]
    end: np.ndarray
    span: int
    tables: HistoryTables
    cache: DayTableCache | None


class ContinuousBlock(Protocol):
    """A block of float columns (see the module docstring)."""

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in the order of :meth:`columns`."""

    @property
    def value_names(self) -> tuple[str, ...]:
        """Those of :attr:`names` also written raw into ``X``."""

    def columns(self, batch: Batch) -> list[np.ndarray]:
        """One float64 array per name, one value per batch row; never changes the block."""


class CategoricalBlock(Protocol):
    """A block of categorical columns encoded by one fitted encoder."""

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names (one-hot blocks ``"{name}={level}"``, dense ``"{name}:code"``)."""

    @property
    def group(self) -> str:
        """Key of the encoder in ``FeatureBuilder.encoders_`` ("context", "item", "user")."""

    @property
    def encoder(self) -> CategoryEncoder:
        """The fitted encoder (its levels name the one-hot columns)."""

    def codes(self, frame: Mapping[str, np.ndarray]) -> np.ndarray:
        """int32 codes, shape (rows, len(names)); never changes the block."""
