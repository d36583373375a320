"""Point-in-time counting tables: exposures, clicks and orders per key and time unit.

A :class:`DailyStats` table holds, for one key family (e.g. ``("user_id", "item_category")``),
one row per (key, time unit) with the exposures, clicks and orders of that unit. The time
unit is the calendar day (``time_column="day"``) or, for lag-based cut-offs, the second
(``time_column="ts"``). Window sums for many queries at once come from a single
``np.searchsorted`` over composite int64 codes ``key * stride + (t - t_min)`` and integer
cumulative sums: a query ``(key, end)`` sums the rows of ``key`` with
``end - window <= t < end``, so nothing at or after ``end`` can ever reach it. Integer
prefix sums make the result exact: rows of other keys, or of the same key at or after
``end``, cancel out or never enter, whatever their values.

Key lookup never uses hashing of tuples: each key column is mapped to its position in
that column's sorted levels, the positions combine into one int64 code, and the code is
looked up in the sorted codes of the keys seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltr._validation import check_choice
from ltr.artifacts import check_state

__all__ = ["COUNT_NAMES", "DailyStats", "as_storable", "int_bincount", "key_time_cells"]

COUNT_NAMES = ("exposures", "clicks", "orders")
_TIME_COLUMNS = ("day", "ts")
_FORMAT = "ltr.DailyStats"
_FORMAT_VERSION = 1


def _column_values(frame: pd.DataFrame | Mapping[str, Any], column: str, table: str) -> np.ndarray:
    if column not in frame:
        raise ValueError(f"{table} must have a column {column!r}. Got columns {list(frame)} instead.")
    values = frame[column]
    return values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)


def _level_index(levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in ``levels`` (-1 when absent or missing)."""
    if levels.size == 0:
        return np.full(len(values), -1, dtype=np.int64)
    found = np.asarray(pd.Index(levels).get_indexer(values), dtype=np.int64)
    found[pd.isna(values)] = -1
    return found


class _LevelLookup:
    """Position of values in one key column's levels, built once per table.

    Sorted int64 or float64 levels are searched with ``np.searchsorted`` (no hashing, no
    per-call index construction); anything else goes through a cached ``pandas.Index``.
    Both give exactly :func:`_level_index`'s answer.
    """

    def __init__(self, levels: np.ndarray):
        self.levels = levels
        kind = levels.dtype.kind
        self._sorted = (
            levels.size > 0
            and levels.dtype.itemsize == 8
            and kind in "if"
            and (levels.size == 1 or bool(np.all(levels[1:] > levels[:-1])))
        )
        self._index = None if self._sorted or levels.size == 0 else pd.Index(levels)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        levels = self.levels
        if levels.size == 0:
            return np.full(len(values), -1, dtype=np.int64)
        kind = levels.dtype.kind
        if self._sorted and values.dtype.kind == kind and (kind == "i" or values.dtype.itemsize == 8):
            pos = np.searchsorted(levels, values)
            np.minimum(pos, levels.size - 1, out=pos)
            hit = levels[pos] == values  # False for NaN
            return np.where(hit, pos, -1).astype(np.int64, copy=False)
        index = self._index if self._index is not None else pd.Index(levels)
        found = np.asarray(index.get_indexer(values), dtype=np.int64)
        found[pd.isna(values)] = -1
        return found


def as_storable(levels: np.ndarray) -> np.ndarray:
    """Levels as a plain numpy array that ``np.load(allow_pickle=False)`` can read."""
    if levels.dtype.kind in "iu":
        return levels.astype(np.int64)
    if levels.dtype.kind == "f":
        return levels.astype(np.float64)
    if levels.dtype.kind == "b":
        return levels.astype(np.int64)
    as_list = [str(v) for v in levels.tolist()]
    return np.array(as_list, dtype=str) if as_list else np.array([], dtype="<U1")


def int_bincount(inverse: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact integer sums of ``values`` per cell (``np.bincount`` would go through float64)."""
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, inverse, values)
    return out


def key_time_cells(codes: np.ndarray, time: np.ndarray, levels: Sequence[np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (key, time) cells of rows with combined key ``codes`` over ``levels``.

    Returns the sorted distinct key codes, each cell's key index and time (cells sorted by
    (key, time)), and each row's cell: what :meth:`DailyStats.from_samples` and the sum of
    partial tables (:func:`ltr.features.sum_tables`) aggregate over.
    """
    t0 = int(time.min()) if time.size else 0
    stride = (int(time.max()) - t0 + 2) if time.size else 2
    radix = float(np.prod([max(lv.size, 1) for lv in levels], dtype=np.float64))
    if radix * stride < 2.0**62:
        # One sort of (key, time) cells; the distinct keys fall out of it.
        cells, inverse = np.unique(codes * stride + (time - t0), return_inverse=True)
        cell_code = cells // stride
        new_key = np.ones(cell_code.size, dtype=bool)
        new_key[1:] = cell_code[1:] != cell_code[:-1]
        return cell_code[new_key], np.cumsum(new_key) - 1, cells % stride + t0, inverse
    key_codes, row_of_key = np.unique(codes, return_inverse=True)
    cells, inverse = np.unique(row_of_key.astype(np.int64) * stride + (time - t0), return_inverse=True)
    return key_codes, cells // stride, cells % stride + t0, inverse


class DailyStats:
    """Exposures, clicks and orders per (key, time unit), with exact window look-ups.

    Build it with :meth:`from_samples`; the constructor takes already aggregated arrays
    (as stored by :meth:`to_state`).

    Parameters
    ----------
    key_columns : sequence of str
        Names of the key columns, e.g. ``("item_id",)`` or ``("user_id", "item_category")``.
    levels : sequence of ndarray
        Sorted distinct values of each key column seen in the data.
    key_codes : ndarray of int64
        Sorted distinct combined codes of the keys seen (mixed-radix over ``levels``).
    row_key : ndarray of int64
        Per table row, index into ``key_codes``; rows sorted by (key, time).
    row_time : ndarray of int64
        Per table row, its time unit (day index or epoch second).
    exposures, clicks, orders : ndarray of int64
        Per table row, the counts of that (key, time unit).
    time_column : {"day", "ts"}
        What the time unit is.
    sums : mapping of str -> ndarray of int64, optional
        More per-row integer sums (e.g. fixed-point sums of an engagement outcome and the
        number of exposures that have it), summed over windows like the counts; they follow
        the counts in :attr:`count_names`.

    Notes
    -----
    A window of ``0`` in :meth:`window_sums` means all history: every row of the key before
    the cut-off. The counts are partial per (key, time unit) and a window is a difference of
    integer prefix sums, so tables of disjoint partitions of the rows add up exactly.
    """

    def __init__(
        self,
        key_columns: Sequence[str],
        levels: Sequence[np.ndarray],
        key_codes: np.ndarray,
        row_key: np.ndarray,
        row_time: np.ndarray,
        exposures: np.ndarray,
        clicks: np.ndarray,
        orders: np.ndarray,
        time_column: str = "day",
        sums: Mapping[str, np.ndarray] | None = None,
    ):
        if isinstance(key_columns, str) or not key_columns:
            raise ValueError(f"key_columns must be a non-empty sequence of str. Got {key_columns!r} instead.")
        check_choice(time_column, "time_column", _TIME_COLUMNS)
        self.key_columns = tuple(str(c) for c in key_columns)
        if len(levels) != len(self.key_columns):
            raise ValueError(
                f"levels must have one array per key column ({len(self.key_columns)}). "
                f"Got {len(levels)} instead."
            )
        self.levels = [np.asarray(lv) for lv in levels]
        self.key_codes = np.asarray(key_codes, dtype=np.int64)
        self.row_key = np.asarray(row_key, dtype=np.int64)
        self.row_time = np.asarray(row_time, dtype=np.int64)
        self.counts = {
            "exposures": np.asarray(exposures, dtype=np.int64),
            "clicks": np.asarray(clicks, dtype=np.int64),
            "orders": np.asarray(orders, dtype=np.int64),
        }
        for name, values in (sums or {}).items():
            if name in self.counts:
                raise ValueError(f"sums must not reuse a count name {list(COUNT_NAMES)}. Got {name!r} instead.")
            self.counts[str(name)] = np.asarray(values, dtype=np.int64)
        self.count_names = tuple(self.counts)
        self.time_column = time_column
        n = self.row_key.size
        for name, arr in [("row_time", self.row_time), *list(self.counts.items())]:
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},) like row_key. Got {arr.shape} instead.")
        self._radix = np.array([max(lv.size, 1) for lv in self.levels], dtype=np.int64)
        if float(np.prod(self._radix.astype(np.float64))) >= 2.0**62:
            raise ValueError(
                f"key space must have fewer than 2**62 combinations. Got level counts "
                f"{self._radix.tolist()} for {list(self.key_columns)} instead."
            )
        if n:
            self.t_min = int(self.row_time.min())
            self._stride = int(self.row_time.max()) - self.t_min + 2
        else:
            self.t_min, self._stride = 0, 2
        composite = self.row_key * self._stride + (self.row_time - self.t_min)
        if n > 1 and np.any(np.diff(composite) <= 0):
            raise ValueError("row_key and row_time must be sorted by (key, time) without duplicates.")
        self._composite = composite
        # Leading zero so that cum[i] is the sum of rows [0, i); one (n + 1, 3) table so
        # that a window needs one gather for all three counts.
        self._cum_all = np.zeros((n + 1, len(self.count_names)), dtype=np.int64)
        for j, name in enumerate(self.count_names):
            np.cumsum(self.counts[name], dtype=np.int64, out=self._cum_all[1:, j])
        self._lookups = [_LevelLookup(lv) for lv in self.levels]

    # ------------------------------------------------------------------ building
    @classmethod
    def from_samples(
        cls,
        samples: pd.DataFrame | Mapping[str, Any],
        key_columns: Sequence[str],
        time_column: str = "day",
        sums: Sequence[str] = (),
    ) -> DailyStats:
        """Aggregate an exposure-level samples frame into a table.

        Parameters
        ----------
        samples : pandas.DataFrame or mapping of column -> 1-D array
            One row per exposure with the key columns, ``time_column`` and int labels
            ``click`` and ``order`` (``order`` may be absent: zero orders).
        key_columns : sequence of str
            Columns forming the key. Rows with a missing key value are not counted.
        time_column : {"day", "ts"}, default="day"
            Time unit of the table.
        sums : sequence of str, default=()
            More integer columns of ``samples`` summed per (key, time unit) (see the class).

        Returns
        -------
        stats : DailyStats
        """
        if not isinstance(samples, (pd.DataFrame, Mapping)):
            raise TypeError(f"samples must be a pandas DataFrame. Got {type(samples).__name__} instead.")
        if isinstance(key_columns, str):
            raise TypeError(f"key_columns must be a sequence of str. Got {key_columns!r} instead.")
        check_choice(time_column, "time_column", _TIME_COLUMNS)
        key_columns = tuple(key_columns)
        time = _column_values(samples, time_column, "samples").astype(np.int64)
        click = _column_values(samples, "click", "samples").astype(np.int64)
        n_rows = time.size
        order = (
            _column_values(samples, "order", "samples").astype(np.int64)
            if "order" in samples
            else np.zeros(n_rows, dtype=np.int64)
        )
        levels = []
        codes = np.zeros(n_rows, dtype=np.int64)
        valid = np.ones(n_rows, dtype=bool)
        for col in key_columns:
            values = _column_values(samples, col, "samples")
            pos, uniq = pd.factorize(values, sort=True, use_na_sentinel=True)
            uniq = np.asarray(uniq)
            levels.append(as_storable(uniq))
            valid &= pos >= 0
            codes = codes * max(uniq.size, 1) + np.maximum(pos, 0)
        extra = {name: _column_values(samples, name, "samples").astype(np.int64)[valid] for name in sums}
        codes, time, click, order = codes[valid], time[valid], click[valid], order[valid]
        key_codes, row_key, row_time, inverse = key_time_cells(codes, time, levels)
        n_cells = row_key.size
        exposures = np.bincount(inverse, minlength=n_cells).astype(np.int64)
        clicks = np.bincount(inverse, weights=click, minlength=n_cells).astype(np.int64)
        orders = np.bincount(inverse, weights=order, minlength=n_cells).astype(np.int64)
        summed = {name: int_bincount(inverse, values, n_cells) for name, values in extra.items()}
        return cls(key_columns, levels, key_codes, row_key, row_time, exposures, clicks, orders,
                   time_column=time_column, sums=summed)

    # ------------------------------------------------------------------ look-ups
    def key_index(self, query: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """Index of each query row's key in :attr:`key_codes` (-1 for unseen keys).

        Parameters
        ----------
        query : pandas.DataFrame or mapping of column -> array
            Must hold every key column; missing values give -1.

        Returns
        -------
        index : ndarray of int64
        """
        # Filled from the first key column (a table has at least one).
        codes: Any = None
        valid: Any = None
        for col, lookup, radix in zip(self.key_columns, self._lookups, self._radix, strict=True):
            values = _column_values(query, col, "query")
            pos = lookup(values)
            valid = pos >= 0 if valid is None else valid & (pos >= 0)
            codes = np.maximum(pos, 0) if codes is None else codes * radix + np.maximum(pos, 0)
        found = np.searchsorted(self.key_codes, codes)
        found = np.minimum(found, max(self.key_codes.size - 1, 0))
        hit = valid & (self.key_codes.size > 0)
        if self.key_codes.size:
            hit &= self.key_codes[found] == codes
        return np.where(hit, found, -1).astype(np.int64)

    def window_counts(
        self,
        key: np.ndarray,
        end: np.ndarray,
        windows: Sequence[int],
        span: int = 1,
    ) -> dict[tuple[int, str], np.ndarray]:
        """Sums over ``end - w * span <= t < end`` per query, for each window ``w``.

        Parameters
        ----------
        key : ndarray of int64
            :meth:`key_index` of each query row (-1: unseen key, all counts 0).
        end : ndarray of int64
            Exclusive upper time bound per query row, in the table's time unit.
        windows : sequence of int
            Window lengths in units of ``span``.
        span : int, default=1
            Time units per window unit (1 for day tables, 86400 for second tables).

        Returns
        -------
        counts : dict
            ``counts[(w, name)]`` is an int64 array, ``name`` in :attr:`count_names`.
        """
        windows = [int(w) for w in windows]
        sums = self.window_sums(key, end, windows, span)
        out: dict[tuple[int, str], np.ndarray] = {}
        for r, w in enumerate(windows):
            for j, name in enumerate(self.count_names):
                out[(w, name)] = sums[r, :, j]
        return out

    def window_sums(self, key: np.ndarray, end: np.ndarray, windows: Sequence[int], span: int = 1) -> np.ndarray:
        """:meth:`window_counts` as one array: one gather for every window and count.

        Parameters
        ----------
        key, end, windows, span
            As in :meth:`window_counts`.

        Returns
        -------
        sums : ndarray of int64, shape (len(windows), n_queries, len(count_names))
            ``sums[r, i, j]`` is count ``count_names[j]`` of query ``i`` over window ``windows[r]``
            (window 0: all rows of the key before ``end``).
        """
        key = np.asarray(key, dtype=np.int64)
        end = np.asarray(end, dtype=np.int64)
        windows = [int(w) for w in windows]
        unseen = key < 0
        # Row r of ``needle`` is the composite code of (key, end - shift_r), shift 0 first:
        # its searchsorted position counts the table rows of key before that time.
        # Window 0 (all history) shifts past the table's first time: the needle clips to the
        # key's first row.
        shifts = np.array([0] + [w * int(span) if w > 0 else self._stride for w in windows], dtype=np.int64)
        needle = (end - self.t_min)[None, :] - shifts[:, None]
        np.maximum(needle, 0, out=needle)
        np.minimum(needle, self._stride - 1, out=needle)
        needle += (np.maximum(key, 0) * self._stride)[None, :]
        # Each row sorted by (key, end): numpy's searchsorted is several times faster on
        # sorted needles, and one call over all rows saves per-call overhead.
        order = np.argsort(needle[0])
        pos = np.empty_like(needle)
        pos[:, order] = np.searchsorted(self._composite, needle[:, order].reshape(-1), side="left").reshape(
            needle.shape
        )
        # Unseen keys get an empty range (hi == lo), hence zero counts.
        pos[:, unseen] = 0
        return self._cum_all[pos[0]][None, :, :] - self._cum_all[pos[1:]]

    def last_time(self, key: np.ndarray, end: np.ndarray, count: str = "clicks") -> np.ndarray:
        """Latest time unit before ``end`` in which the key's ``count`` is positive.

        Parameters
        ----------
        key : ndarray of int64
            :meth:`key_index` of each query (-1: unseen key).
        end : ndarray of int64
            Exclusive cut-off of each query, in the table's time unit.
        count : str, default="clicks"
            One of :attr:`count_names`.

        Returns
        -------
        time : ndarray of float64
            The time unit, NaN where the key has no such row before ``end``.
        """
        if count not in self.counts:
            raise ValueError(f"count must be one of {list(self.count_names)}. Got {count!r} instead.")
        key = np.asarray(key, dtype=np.int64)
        end = np.asarray(end, dtype=np.int64)
        positive = np.flatnonzero(self.counts[count] > 0)
        out = np.full(key.size, np.nan)
        if positive.size == 0:
            return out
        composite = self._composite[positive]
        needle = np.clip(end - self.t_min, 0, self._stride - 1) + np.maximum(key, 0) * self._stride
        before = np.searchsorted(composite, needle, side="left") - 1
        row = positive[np.maximum(before, 0)]
        hit = (key >= 0) & (before >= 0) & (self.row_key[row] == key)
        out[hit] = self.row_time[row[hit]]
        return out

    def totals(self) -> dict[str, np.ndarray]:
        """Counts per key over the whole table.

        Returns
        -------
        totals : dict
            ``exposures``, ``clicks``, ``orders``: int64 arrays aligned with :attr:`key_codes`.
        """
        n = self.key_codes.size
        return {
            name: np.bincount(self.row_key, weights=arr, minlength=n).astype(np.int64)
            for name, arr in self.counts.items()
        }

    # ------------------------------------------------------------------ storage
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export as JSON metadata and plain numpy arrays (``np.savez``-able, no pickle).

        Returns
        -------
        meta : dict
            Format tag and version, ``key_columns`` and ``time_column``.
        arrays : dict of str -> ndarray
            ``key_codes``, ``row_key``, ``row_time``, the counts and ``levels{j}`` per key
            column; un-prefixed (a caller storing several tables in one file namespaces them).
        """
        arrays = {"key_codes": self.key_codes, "row_key": self.row_key, "row_time": self.row_time}
        arrays.update(self.counts)
        for j, lv in enumerate(self.levels):
            arrays[f"levels{j}"] = as_storable(lv)
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "key_columns": list(self.key_columns),
            "time_column": self.time_column,
            "sums": list(self.count_names[len(COUNT_NAMES):]),
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> DailyStats:
        """Rebuild from :meth:`to_state` output.

        Parameters
        ----------
        meta : dict
            The metadata (possibly after a JSON round trip).
        arrays : mapping of str -> ndarray
            The arrays (e.g. an ``np.load(..., allow_pickle=False)`` result).

        Returns
        -------
        stats : DailyStats
        """
        check_state(meta, _FORMAT, _FORMAT_VERSION, ("key_columns", "time_column"))
        key_columns = list(meta["key_columns"])
        try:
            levels = [np.asarray(arrays[f"levels{j}"]) for j in range(len(key_columns))]
            key_codes, row_key, row_time = arrays["key_codes"], arrays["row_key"], arrays["row_time"]
            exposures, clicks, orders = (arrays[name] for name in COUNT_NAMES)
            sums = {name: arrays[name] for name in meta.get("sums", [])}
        except KeyError as exc:
            raise ValueError(f"arrays must hold the table arrays. Got no {exc.args[0]!r} instead.") from None
        return cls(key_columns, levels, key_codes, row_key, row_time, exposures, clicks, orders,
                   time_column=meta["time_column"], sums=sums)

    def __repr__(self) -> str:
        return (
            f"DailyStats(key_columns={json.dumps(list(self.key_columns))}, "
            f"n_keys={self.key_codes.size}, n_rows={self.row_key.size}, time_column={self.time_column!r})"
        )
