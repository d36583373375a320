"""Windowed counts and smoothed CTRs of a key family, per query or from per-day tables.

The general path (:func:`window_columns`) answers each query row with binary searches in
the family's :class:`~ltr.features.DailyStats`. When the rows at hand share one or a few
cut-off days (a serving request, a day-sorted chunk), the values of *every* key for that
day can be computed once and gathered by key instead: a :class:`DayTableCache` holds these
per-day tables. Each table row is computed exactly as a query row would be, so both paths
give the same bits; only speed depends on which one runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ltr._validation import check_int
from ltr.features._pit_stats import COUNT_NAMES, DailyStats
from ltr.features._smoothing import BetaPrior

__all__ = ["DEFAULT_MAX_KEYS", "MAX_DAYS", "OUTCOME_SCALE", "DayTableCache", "outcome_count", "outcome_sum",
           "window_columns"]

T = TypeVar("T")

#: Largest key table that gets per-day value tables (keys x 4 values x windows float64).
DEFAULT_MAX_KEYS = 200_000
#: Most distinct cut-off days in one batch that still use per-day tables (the cache keeps
#: about this many days per family).
MAX_DAYS = 3


#: Entries :meth:`DayTableCache.memo` keeps: a serving process needs today's, and yesterday's
#: around midnight (item tables grow with the catalogue).
_MEMO_ENTRIES = 2

#: Outcomes are counted as fixed-point integers in these units (exact integer window sums).
OUTCOME_SCALE = 1000


def outcome_sum(name: str) -> str:
    """Name of the fixed-point sum of outcome ``name`` in a table (see :data:`OUTCOME_SCALE`)."""
    return f"{name}:sum"


def outcome_count(name: str) -> str:
    """Name of the count of exposures with a known outcome ``name`` in a table."""
    return f"{name}:n"


def window_columns(
    table: DailyStats,
    prior: BetaPrior,
    key: np.ndarray,
    end: np.ndarray,
    windows: Sequence[int],
    span: int,
    outcomes: Sequence[str] = (),
) -> list[np.ndarray]:
    """Per window: exposures, clicks, orders (as floats), the smoothed CTR, the outcome means.

    Parameters
    ----------
    table : DailyStats
        The family's counting table.
    prior : BetaPrior
        The family's prior.
    key : ndarray of int64
        ``table.key_index`` of each query (-1: unseen key).
    end : ndarray of int64
        Exclusive cut-off of each query in the table's time unit.
    windows : sequence of int
        Window lengths in days (0: all history).
    span : int
        Table time units per day (1 for day tables, 86400 for second tables).
    outcomes : sequence of str, default=()
        Outcomes whose mean over the window's exposures that have one follows the CTR (NaN
        where none has).

    Returns
    -------
    columns : list of ndarray of float64
        ``(4 + len(outcomes)) * len(windows)`` columns, window by window.
    """
    # (window, row, count) for all windows at once: one conversion and one smoothing
    # per family instead of one per (window, count).
    counts = table.window_sums(key, end, windows, span).astype(np.float64)
    exposures = counts[:, :, COUNT_NAMES.index("exposures")]
    clicks = counts[:, :, COUNT_NAMES.index("clicks")]
    # BetaPrior.smooth's formula, term for term (bit-identical), without its input
    # validation: table counts are finite non-negative integers.
    ctr = (clicks + prior.alpha) / (exposures + prior.alpha + prior.beta)
    means = []
    for name in outcomes:
        total = counts[:, :, table.count_names.index(outcome_sum(name))]
        known = counts[:, :, table.count_names.index(outcome_count(name))]
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(known > 0, total / (known * OUTCOME_SCALE), np.nan))
    columns: list[np.ndarray] = []
    for r in range(len(windows)):
        columns.extend(counts[r, :, j] for j in range(len(COUNT_NAMES)))
        columns.append(ctr[r])
        columns.extend(mean[r] for mean in means)
    return columns


class DayTableCache:
    """Per-day count and CTR tables of every key, kept between ``transform`` calls.

    ``FeatureBuilder.transform(..., cache=cache)`` reads and fills it; the builder itself
    never keeps one, so transforming never changes the builder. Give one cache to the code
    that scores many small batches with one fitted builder (a serving process); without one,
    ``transform`` uses a cache that lives for the call.

    Parameters
    ----------
    max_keys : int, default=200_000
        Largest key table that gets per-day tables; bigger families use the general path.

    Notes
    -----
    An entry is tied to the table and prior objects it was computed from, so one cache can
    serve several builders (or a reloaded one) without mixing their values. When it holds
    more than a few days per family, the days other than those of the rows at hand go.
    """

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS):
        self.max_keys = check_int(max_keys, "max_keys", minimum=0)
        self._entries: dict[tuple[str, int], tuple[DailyStats, BetaPrior, np.ndarray]] = {}
        self._memo: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = {}

    @classmethod
    def for_rows(cls, days: np.ndarray) -> DayTableCache:
        """A cache for one call over rows on ``days``.

        A table costs a query per key, so it pays off only for families with fewer keys
        than about half the rows per day.
        """
        n = days.size
        n_days = int(np.count_nonzero(np.bincount(days - days.min()))) if n else 1
        return cls(max_keys=min(DEFAULT_MAX_KEYS, n // (2 * n_days)))

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every table."""
        self._entries.clear()
        self._memo.clear()

    def memo(self, key: tuple[Any, ...], owners: tuple[Any, ...], build: Callable[[], T]) -> T:
        """``build()``, kept under ``key`` while ``owners`` are the same objects.

        Other per-day tables than the counts (the serving path's item table) live here; like the
        count tables, an entry is tied to the objects it was computed from, and only the newest
        few entries are kept.
        """
        entry = self._memo.get(key)
        if entry is not None and len(entry[0]) == len(owners) and all(map(operator.is_, entry[0], owners)):
            return entry[1]
        value = build()
        self._memo.pop(key, None)
        while len(self._memo) >= _MEMO_ENTRIES:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = (owners, value)
        return value

    @staticmethod
    def batch_days(end: np.ndarray) -> list[int] | None:
        """The distinct cut-off days of a batch, or None when they span too many days."""
        if end.size == 0:
            return None
        first, last = int(end.min()), int(end.max())
        if last - first >= MAX_DAYS:
            return None
        return [first] if first == last else [d for d in range(first, last + 1) if (end == d).any()]

    def values(
        self,
        family: str,
        table: DailyStats,
        prior: BetaPrior,
        day: int,
        windows: Sequence[int],
        current: Sequence[int],
        n_families: int,
        outcomes: Sequence[str] = (),
    ) -> np.ndarray:
        """Counts and smoothed CTRs of every key of ``table`` for the cut-off ``day``.

        Row ``k`` holds key ``k``'s values (columns as :func:`window_columns`), the last
        row those of an unseen key, so ``key_index`` output (-1 = unseen) indexes it
        directly. ``current`` are the days of the rows at hand (kept when trimming);
        ``n_families`` sizes the cache.
        """
        entry = self._entries.get((family, day))
        if entry is not None and entry[0] is table and entry[1] is prior:
            return entry[2]
        keys = np.append(np.arange(table.key_codes.size, dtype=np.int64), -1)
        columns = window_columns(table, prior, keys, np.full(keys.size, day, dtype=np.int64), windows, 1, outcomes)
        values = np.column_stack(columns)
        if len(self._entries) >= (MAX_DAYS + 1) * max(n_families, 1):
            for stale in [k for k in self._entries if k[1] not in current]:
                self._entries.pop(stale, None)
        self._entries[(family, day)] = (table, prior, values)
        return values
