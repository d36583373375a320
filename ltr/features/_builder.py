"""Point-in-time ranker features: windowed counts, smoothed CTR, bins, one-hot, cosine.

:class:`FeatureBuilder` turns an exposure-level samples frame (the output of
:func:`ltr.join.join_samples`) or a serving frame (one request's candidates) into a
:class:`FeatureMatrix`: a CSR one-hot design matrix with feature names for the
logistic-regression baseline, and the raw continuous values for LightGBM.

Time orthogonality: every statistic of a sample on day ``d`` comes from rows on days
``< d`` (or, with ``lag_seconds``, from rows with ``ts < sample ts - lag_seconds``), both
for the counting tables and for the user's recent-click profile. Everything else the
features depend on (priors, bin edges, kept categories, item/user attributes) is frozen at
``fit``. Hence changing or deleting any history row on or after a sample's day never
changes that sample's features; ``tests/ltr/test_features.py`` checks it bit for bit.

The A/B ``bucket`` is never a feature: it is assigned per user, so a model that saw it
would learn the arm rather than the user, and scores would shift when the split changes.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ltr.features._binning import BinCollapseWarning, QuantileBinner
from ltr.features._encoding import CategoryEncoder
from ltr.features._pit_stats import COUNT_NAMES, DailyStats
from ltr.features._smoothing import BetaPrior, fit_beta_prior
from ltr.features._sparse import FeatureSpace, _RowBlockWriter
from ltr.logs import day_index

__all__ = ["KEY_FAMILIES", "FeatureBuilder", "FeatureMatrix"]

SECONDS_PER_DAY = 86400
KEY_FAMILIES: dict[str, tuple[str, ...]] = {
    "item": ("item_id",),
    "user": ("user_id",),
    "user_category": ("user_id", "item_category"),
    "item_position": ("item_id", "position"),
    "category": ("item_category",),
}
_CONTEXT = ("device", "recall_source", "hour", "position")
_FORBIDDEN = ("bucket",)
_REQUIRED = ("user_id", "item_id", "ts")
_COUNT_SHORT = {"exposures": "exp", "clicks": "clk", "orders": "ord"}
_COSINE = "cosine_recent_clicks"
# Largest key table that gets per-day value tables (rows x 4 values x windows float64).
_DAY_TABLE_MAX_KEYS = 200_000
# Most distinct days in a chunk that still uses them (the cache keeps about this many).
_DAY_TABLE_MAX_DAYS = 3
_FORMAT = "ltr.FeatureBuilder"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureMatrix:
    """Features of a batch of rows, in the input row order.

    Attributes
    ----------
    X : scipy.sparse.csr_matrix of shape (n_rows, len(feature_names))
        One-hot bins of every continuous feature, one-hot categorical features, then
        the real-valued cosine column (0 where undefined).
    feature_names : list of str
        Column names of ``X``, e.g. ``"item_ctr_7d=bin3"``, ``"device=<unk>"``.
    dense : ndarray of float64, shape (n_rows, len(dense_names))
        Raw continuous values (NaN where undefined) then the categorical codes, for
        tree models.
    dense_names : list of str
        Column names of ``dense``; categorical code columns are named ``"{name}:code"``.
    """

    X: sp.csr_matrix
    feature_names: list[str]
    dense: np.ndarray
    dense_names: list[str]


# ---------------------------------------------------------------------- id look-ups
class _IdLookup:
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


# ---------------------------------------------------------------------- attribute tables
class _AttributeTable:
    """Item or user attributes keyed by id: numeric, string and embedding columns."""

    def __init__(self, ids: np.ndarray, columns: dict[str, np.ndarray], embedding: np.ndarray | None):
        self.ids = ids
        self.columns = columns
        self.embedding = embedding
        self._lookup = _IdLookup(ids)
        # Float codes (NaN = missing) let string attributes serve as counting keys
        # without per-row string handling.
        self.codes: dict[str, np.ndarray] = {}
        for name, values in columns.items():
            if values.dtype == object:
                code, _ = pd.factorize(values, sort=True, use_na_sentinel=True)
                self.codes[name] = np.where(code < 0, np.nan, code.astype(np.float64))
            else:
                self.codes[name] = values

    def take_float(self, column: str, index: np.ndarray) -> np.ndarray:
        values = self.codes[column]
        if values.size == 0:
            return np.full(index.size, np.nan)
        return np.where(index < 0, np.nan, values[np.maximum(index, 0)])

    def raw_frame(self, columns: Sequence[str], prefix: str) -> pd.DataFrame:
        """Raw values of ``columns`` per table row, plus a last all-missing row (unknown id)."""
        out = {}
        for col in columns:
            values = self.columns[col]
            filler = np.array([None], dtype=object) if values.dtype == object else np.array([np.nan])
            out[f"{prefix}{col}"] = np.concatenate([values, filler])
        return pd.DataFrame(out)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, id_column: str, table: str) -> _AttributeTable:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{table} must be a pandas DataFrame or None. Got {type(frame).__name__} instead.")
        if id_column not in frame.columns:
            raise ValueError(f"{table} must have a column {id_column!r}. Got columns {list(frame.columns)} instead.")
        ids = frame[id_column]
        dup = ids.duplicated()
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            raise ValueError(
                f"{table}.{id_column} must be unique. Got {ids.iloc[row]!r} twice (row {row}) instead."
            )
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
        return cls(_plain_ids(ids.to_numpy()), columns, embedding)

    def lookup(self, ids: Any) -> np.ndarray:
        return self._lookup(ids)

    def take(self, column: str, index: np.ndarray) -> np.ndarray:
        values = self.columns[column]
        out = values[np.maximum(index, 0)] if values.size else np.empty(index.size, dtype=values.dtype)
        missing = index < 0
        if values.dtype == object:
            out = out.copy() if values.size else np.full(index.size, None, dtype=object)
            out[missing] = None
        else:
            out = np.where(missing, np.nan, out) if values.size else np.full(index.size, np.nan)
        return out

    def to_arrays(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = {f"{prefix}ids": _storable(self.ids)}
        kinds = {}
        for name, values in self.columns.items():
            if values.dtype == object:
                missing = np.array([v is None for v in values], dtype=bool)
                arrays[f"{prefix}col.{name}"] = _storable(np.where(missing, "", values))
                arrays[f"{prefix}mask.{name}"] = missing
                kinds[name] = "str"
            else:
                arrays[f"{prefix}col.{name}"] = values
                kinds[name] = "number"
        if self.embedding is not None:
            arrays[f"{prefix}embedding"] = self.embedding
        return {"columns": kinds, "embedding": self.embedding is not None}, arrays

    @classmethod
    def from_arrays(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str) -> _AttributeTable:
        columns = {}
        for name, kind in meta["columns"].items():
            values = np.asarray(arrays[f"{prefix}col.{name}"])
            if kind == "str":
                obj = values.astype(object)
                obj[np.asarray(arrays[f"{prefix}mask.{name}"], dtype=bool)] = None
                columns[name] = np.array([None if v is None else str(v) for v in obj], dtype=object)
            else:
                columns[name] = values.astype(np.float64)
        embedding = np.asarray(arrays[f"{prefix}embedding"], dtype=np.float64) if meta["embedding"] else None
        return cls(_plain_ids(np.asarray(arrays[f"{prefix}ids"])), columns, embedding)


def _plain_ids(ids: np.ndarray) -> np.ndarray:
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64)
    if ids.dtype.kind in "fb":
        return ids
    return np.array([str(v) for v in ids.tolist()], dtype=object)


def _storable(values: np.ndarray) -> np.ndarray:
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


# ---------------------------------------------------------------------- click history
class _ClickLog:
    """Clicked items per user, sorted by (user, ts, item), for the recent-click profile."""

    def __init__(self, user_levels: np.ndarray, user: np.ndarray, time: np.ndarray, item: np.ndarray):
        self.user_levels = user_levels
        self.user = np.asarray(user, dtype=np.int64)
        self.time = np.asarray(time, dtype=np.int64)
        self.item = np.asarray(item, dtype=np.int64)  # row in the item attribute table
        self.t_min = int(self.time.min()) if self.time.size else 0
        self.stride = (int(self.time.max()) - self.t_min + 2) if self.time.size else 2
        self._composite = self.user * self.stride + (self.time - self.t_min)
        self._user_index = _IdLookup(user_levels)

    @classmethod
    def from_frame(cls, frame: Mapping[str, np.ndarray], time_column: str, items: _AttributeTable) -> _ClickLog:
        clicked = frame["click"] > 0
        item_row = frame["_item_row"][clicked]
        has_emb = item_row >= 0
        if items.embedding is not None:
            has_emb &= np.isfinite(items.embedding[np.maximum(item_row, 0), 0])
        else:
            has_emb[:] = False
        users = frame["user_id"][clicked][has_emb]
        ts = frame["ts"][clicked][has_emb]
        time = frame[time_column][clicked][has_emb]
        item_row = item_row[has_emb]
        user_code, levels = pd.factorize(users, sort=True)
        # Sorting on every column makes the order independent of the input row order.
        order = np.lexsort((item_row, ts, user_code))
        return cls(_plain_ids(np.asarray(levels)), user_code[order], time[order], item_row[order])

    def profiles(self, user_ids: Any, end: np.ndarray, max_len: int, embedding: np.ndarray) -> np.ndarray:
        """Unit mean embedding of each query user's last ``max_len`` clicks before ``end``."""
        n = len(end)
        dim = embedding.shape[1]
        out = np.full((n, dim), np.nan)
        if self.user.size == 0 or n == 0:
            return out
        user = self._user_index(user_ids)
        known = user >= 0
        base = np.maximum(user, 0) * self.stride
        hi = np.searchsorted(self._composite, base + np.clip(end - self.t_min, 0, self.stride - 1), side="left")
        lo = np.searchsorted(self._composite, base, side="left")
        count = np.where(known, np.minimum(hi - lo, max_len), 0)
        has = count > 0
        # Many exposures share (user, cut-off); compute each distinct profile once.
        query = hi[has].astype(np.int64) * (max_len + 1) + count[has]
        uniq, inverse = np.unique(query, return_inverse=True)
        u_hi = uniq // (max_len + 1)
        u_count = uniq % (max_len + 1)
        acc = np.zeros((uniq.size, dim))
        # Ranks no profile reaches would add nothing: stop at the longest one.
        for j in range(int(u_count.max(initial=0))):
            take = u_count > j
            rows = self.item[u_hi[take] - 1 - j]
            acc[take] += embedding[rows]
        acc /= u_count[:, None]
        norm = np.sqrt(_rowdot(acc, acc))
        unit = acc / np.where(norm > 0, norm, 1.0)[:, None]
        unit[norm == 0] = np.nan
        out[has] = unit[inverse]
        return out

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}user_levels": _storable(self.user_levels),
            f"{prefix}user": self.user,
            f"{prefix}time": self.time,
            f"{prefix}item": self.item,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> _ClickLog:
        return cls(
            _plain_ids(np.asarray(arrays[f"{prefix}user_levels"])),
            arrays[f"{prefix}user"],
            arrays[f"{prefix}time"],
            arrays[f"{prefix}item"],
        )


def _family_columns(
    table: DailyStats, prior: BetaPrior, key: np.ndarray, end: np.ndarray, windows: list[int], span: int
) -> list[np.ndarray]:
    """Per window: exposures, clicks, orders (as floats) and the smoothed CTR of each query."""
    # (window, row, count) for all windows at once: one conversion and one smoothing
    # per family instead of one per (window, count).
    counts = table._window_sums(key, end, windows, span).astype(np.float64)
    exposures = counts[:, :, COUNT_NAMES.index("exposures")]
    clicks = counts[:, :, COUNT_NAMES.index("clicks")]
    # BetaPrior.smooth's formula, term for term (bit-identical), without its input
    # validation: table counts are finite non-negative integers.
    ctr = (clicks + prior.alpha) / (exposures + prior.alpha + prior.beta)
    columns = []
    for r in range(len(windows)):
        columns.extend(counts[r, :, j] for j in range(len(COUNT_NAMES)))
        columns.append(ctr[r])
    return columns


def _bin_codes(cont: np.ndarray, plan: Mapping[str, Any], out: np.ndarray) -> None:
    """Bin codes of the binned columns of ``cont`` into ``out`` (QuantileBinner's rule).

    Left-closed bins, NaN code last: the code of ``x`` is the number of inner edges
    ``<= x``, which equals ``searchsorted(inner, x, side="right")``; for the handful of
    edges here counting over the whole (rows, features) block is several times faster
    than a binary search per column, and one call per edge rank instead of one per
    (feature, edge) keeps small (serving) batches cheap too.
    """
    x = cont if plan["identity"] else cont[:, plan["index"]]
    edges = plan["edges"]
    if edges is not None:
        out[...] = 0
        above = np.empty(x.shape, dtype=bool, order="F")
        for row in edges:
            np.greater_equal(x, row, out=above)
            out += above
    else:
        for j, inner in enumerate(plan["inner"]):
            out[:, j] = np.searchsorted(inner, x[:, j], side="right")
    np.copyto(out, np.broadcast_to(plan["nan_codes"], out.shape), where=np.isnan(x))


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product with a fixed summation order (bit-stable across batch sizes)."""
    out = np.zeros(a.shape[0])
    prod = a * b
    for k in range(a.shape[1]):
        out += prod[:, k]
    return out


# ---------------------------------------------------------------------- the builder
class FeatureBuilder(TransformerMixin, BaseEstimator):
    """Point-in-time ranker features from exposure-level samples.

    Parameters
    ----------
    windows : tuple of int, default=(1, 3, 7)
        Trailing windows in days for the counting features.
    key_families : tuple of str, default=("item", "user", "user_category", "item_position", "category")
        Built-in key families (see ``KEY_FAMILIES``). Families needing the item
        category are turned off when no items table with a ``category`` column is given.
    extra_keys : tuple of tuple of str, default=()
        More key families, each a tuple of columns of the samples frame (or ``"hour"``,
        ``"position"``, ``"item_<attr>"``, ``"user_<attr>"``), named by joining the
        columns with ``"__"``.
    n_bins : int, default=10
        Equal-frequency bins per continuous feature (edges from the training rows).
    min_count : int, default=20
        Categorical levels rarer than this in the training rows share the unknown slot.
    history_len : int, default=20
        Number of most recent clicks averaged into the user's embedding profile.
    lag_seconds : int or None, default=None
        None: statistics use rows on days strictly before the sample's day. An int:
        rows with ``ts < sample ts - lag_seconds`` (windows then count seconds,
        ``w * 86400``); clicks are timed by their exposure's ts, so the lag should cover
        the click delay.
    prior_method : {"moments", "mle"}, default="moments"
        How the per-family Beta prior of the smoothed CTR is fitted.
    categorical : tuple of str or None, default=None
        Categorical features. None: those of ``device, recall_source, hour, position``
        available in the training samples, every string column of the items table
        (``item_<col>``) and every column of the users table (``user_<col>``).
    default_position : int, default=1
        Position used where the frame has no ``position`` column or it is missing
        (serving: candidates are scored as if shown first).
    tz : str, default="UTC"
        Time zone of the ``hour`` feature and of ``day`` when a frame lacks it.

    Attributes
    ----------
    families_ : dict of str -> tuple of str
        Key families in use and their key columns.
    stats_ : dict of str -> DailyStats
        Counting tables fitted from the training samples.
    priors_ : dict of str -> BetaPrior
        Beta prior of each family's CTR, fitted on the per-key totals of the training rows.
    binner_ : QuantileBinner
        Bin edges of the binned continuous features.
    encoders_ : dict of str -> CategoryEncoder
        Kept levels of the categorical features, per group: ``"context"`` (columns of
        the frame, hour, position), ``"item"`` and ``"user"`` (attributes, encoded once
        per table row at transform time).
    space_ : FeatureSpace
        Column layout of ``X``.
    continuous_names_, binned_names_, categorical_ : list of str
        Continuous features, those of them that are binned (not NaN on every training
        row), and the categorical features.
    feature_names_, dense_names_ : list of str
        Column names of the outputs.
    """

    def __init__(
        self,
        windows: Sequence[int] = (1, 3, 7),
        key_families: Sequence[str] = ("item", "user", "user_category", "item_position", "category"),
        extra_keys: Sequence[Sequence[str]] = (),
        n_bins: int = 10,
        min_count: int = 20,
        history_len: int = 20,
        lag_seconds: int | None = None,
        prior_method: str = "moments",
        categorical: Sequence[str] | None = None,
        default_position: int = 1,
        tz: str = "UTC",
    ):
        self.windows = windows
        self.key_families = key_families
        self.extra_keys = extra_keys
        self.n_bins = n_bins
        self.min_count = min_count
        self.history_len = history_len
        self.lag_seconds = lag_seconds
        self.prior_method = prior_method
        self.categorical = categorical
        self.default_position = default_position
        self.tz = tz

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        if isinstance(self.windows, (str, bytes)) or not isinstance(self.windows, Sequence) or not self.windows:
            raise ValueError(f"windows must be a non-empty tuple of ints >= 1. Got {self.windows!r} instead.")
        for w in self.windows:
            if not isinstance(w, numbers.Integral) or isinstance(w, bool) or w < 1:
                raise ValueError(f"windows must be a non-empty tuple of ints >= 1. Got {self.windows!r} instead.")
        if len(set(self.windows)) != len(self.windows):
            raise ValueError(f"windows must not repeat a window. Got {self.windows!r} instead.")
        if isinstance(self.key_families, str) or not isinstance(self.key_families, Sequence):
            raise TypeError(f"key_families must be a tuple of str. Got {self.key_families!r} instead.")
        for name in self.key_families:
            if name not in KEY_FAMILIES:
                raise ValueError(f"key_families must be among {list(KEY_FAMILIES)}. Got {name!r} instead.")
        if isinstance(self.extra_keys, str) or not isinstance(self.extra_keys, Sequence):
            raise TypeError(f"extra_keys must be a tuple of tuples of str. Got {self.extra_keys!r} instead.")
        for key in self.extra_keys:
            if isinstance(key, str) or not isinstance(key, Sequence) or not key or not all(isinstance(c, str) for c in key):
                raise TypeError(f"extra_keys must be a tuple of tuples of str. Got {key!r} instead.")
            for col in key:
                if col in _FORBIDDEN:
                    raise ValueError(
                        f"extra_keys must not use {col!r}: the A/B bucket is never a feature. Got {key!r} instead."
                    )
        for name, value, low in (("n_bins", self.n_bins, 2), ("min_count", self.min_count, 1), ("history_len", self.history_len, 1)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int in [{low}, inf). Got {value!r} instead.")
        if self.lag_seconds is not None and (
            not isinstance(self.lag_seconds, numbers.Integral) or isinstance(self.lag_seconds, bool) or self.lag_seconds < 0
        ):
            raise ValueError(f"lag_seconds must be None or an int in [0, inf). Got {self.lag_seconds!r} instead.")
        if self.prior_method not in ("moments", "mle"):
            raise ValueError(f"prior_method must be one of ['moments', 'mle']. Got {self.prior_method!r} instead.")
        if self.categorical is not None:
            if isinstance(self.categorical, str) or not isinstance(self.categorical, Sequence):
                raise TypeError(f"categorical must be a tuple of str or None. Got {self.categorical!r} instead.")
            for col in self.categorical:
                if col in _FORBIDDEN:
                    raise ValueError(
                        f"categorical must not include {col!r}: the A/B bucket is never a feature. "
                        f"Got {self.categorical!r} instead."
                    )
        if not isinstance(self.default_position, numbers.Integral) or isinstance(self.default_position, bool):
            raise ValueError(f"default_position must be an int. Got {self.default_position!r} instead.")

    def _time_column(self) -> str:
        return "day" if self.lag_seconds is None else "ts"

    # ------------------------------------------------------------------ frames
    def _prepare(self, samples: Any, table: str, labels: bool, context: bool = True) -> dict[str, np.ndarray]:
        """Columns the features read, as 1-D numpy arrays (ids raw, attributes as floats).

        ``context=False`` (history frames: only counted) leaves out the context columns
        that are no counting key.
        """
        if not isinstance(samples, pd.DataFrame):
            raise TypeError(f"{table} must be a pandas DataFrame. Got {type(samples).__name__} instead.")
        needed = _REQUIRED + (("click",) if labels else ())
        missing = [c for c in needed if c not in samples.columns]
        if missing:
            raise ValueError(
                f"{table} must have columns {list(needed)}. Got no {missing} among {list(samples.columns)} instead."
            )
        ts = samples["ts"].to_numpy()
        if ts.dtype.kind not in "iu":
            raise TypeError(f"{table}.ts must be int64 epoch seconds. Got dtype {samples['ts'].dtype} instead.")
        n = len(samples)
        ts = ts.astype(np.int64)
        out: dict[str, np.ndarray] = {
            "user_id": samples["user_id"].to_numpy(),
            "item_id": samples["item_id"].to_numpy(),
            "ts": ts,
        }
        out["day"] = (
            samples["day"].to_numpy().astype(np.int64)
            if "day" in samples.columns
            else day_index(ts, self.tz).astype(np.int64)
        )
        if self.tz == "UTC":
            out["hour"] = (ts % SECONDS_PER_DAY) // 3600
        else:
            out["hour"] = np.asarray(pd.to_datetime(ts, unit="s", utc=True).tz_convert(self.tz).hour, dtype=np.int64)
        if "position" in samples.columns:
            pos = samples["position"].to_numpy(dtype=np.float64, na_value=np.nan)
            out["position"] = np.where(np.isnan(pos), float(self.default_position), pos)
        else:
            out["position"] = np.full(n, float(self.default_position))
        if labels:
            out["click"] = samples["click"].to_numpy().astype(np.int64)
            out["order"] = (
                samples["order"].to_numpy().astype(np.int64) if "order" in samples.columns else np.zeros(n, np.int64)
            )
        items, users = self.items_, self.users_
        out["_item_row"] = items.lookup(out["item_id"]) if items is not None else np.full(n, -1, np.int64)
        out["_user_row"] = users.lookup(out["user_id"]) if users is not None else np.full(n, -1, np.int64)
        for col in self._key_attributes_:
            source, name = col.split("_", 1)
            if source == "item":
                out[col] = items.take_float(name, out["_item_row"])
            else:
                out[col] = users.take_float(name, out["_user_row"])
        keys = {c for cols in self.families_.values() for c in cols}
        for col in self._sample_columns_:
            if col not in out and (context or col in keys):
                out[col] = samples[col].to_numpy() if col in samples.columns else np.full(n, None, dtype=object)
        return out

    def _context_frame(self, frame: Mapping[str, np.ndarray]) -> pd.DataFrame:
        # Object columns stay object: no round trip through pandas' string dtype.
        cols = {}
        for col in self._groups_["context"]:
            values = frame[col]
            cols[col] = pd.Series(values, dtype=object if values.dtype.kind in "OUS" else values.dtype, copy=False)
        return pd.DataFrame(cols, copy=False)

    # ------------------------------------------------------------------ features
    def _continuous(
        self,
        frame: Mapping[str, np.ndarray],
        stats: Mapping[str, DailyStats],
        clicks: _ClickLog | None,
        cache: dict | None = None,
    ) -> tuple[list[np.ndarray], list[str]]:
        if self.lag_seconds is None:
            end, span = frame["day"], 1
        else:
            end, span = frame["ts"] - int(self.lag_seconds), SECONDS_PER_DAY
        columns: list[np.ndarray] = []
        names: list[str] = []
        windows = [int(w) for w in self.windows]
        # A request (or a chunk of a few days) has one or a few cut-offs: per-key values
        # can then come from per-day tables of every key (see _day_table).
        days = None
        if cache is not None and self.lag_seconds is None and end.size > 0:
            first, last = int(end.min()), int(end.max())
            if last - first < _DAY_TABLE_MAX_DAYS:
                days = [first] if first == last else [d for d in range(first, last + 1) if (end == d).any()]
        for family, key_columns in self.families_.items():
            table = stats[family]
            prior = self.priors_[family]
            key = table.key_index(frame)
            if days is not None and table.key_codes.size <= cache["max_keys"]:
                if len(days) == 1:
                    values = self._day_table(cache, family, table, prior, days[0], windows, days)[key]
                else:
                    values = np.empty((key.size, 4 * len(windows)))
                    for d in days:
                        rows = end == d
                        values[rows] = self._day_table(cache, family, table, prior, d, windows, days)[key[rows]]
                family_columns = [values[:, c] for c in range(values.shape[1])]
            else:
                family_columns = _family_columns(table, prior, key, end, windows, span)
            columns.extend(family_columns)
            for w in windows:
                names.extend(f"{family}_{_COUNT_SHORT[name]}_{w}d" for name in COUNT_NAMES)
                names.append(f"{family}_ctr_{w}d")
        if self.items_ is not None:
            item_row = frame["_item_row"]
            for col, values in self.items_.columns.items():
                if values.dtype == object:
                    continue
                raw = self.items_.take_float(col, item_row)
                if col == "publish_ts":
                    columns.append((frame["ts"] - raw) / SECONDS_PER_DAY)
                    names.append("item_age_days")
                else:
                    columns.append(raw)
                    names.append(f"item_{col}")
        if self._has_embedding_:
            emb = self.items_.embedding
            profile = clicks.profiles(frame["user_id"], end, int(self.history_len), emb)
            item_row = frame["_item_row"]
            item_vec = emb[np.maximum(item_row, 0)]
            item_vec[item_row < 0] = np.nan
            columns.append(_rowdot(profile, item_vec))
            names.append(_COSINE)
        return columns, names

    def _day_table(
        self,
        cache: dict,
        family: str,
        table: DailyStats,
        prior: BetaPrior,
        end: int,
        windows: list[int],
        current: Sequence[int],
    ) -> np.ndarray:
        """Counts and smoothed CTRs of every key of ``table`` for the cut-off day ``end``.

        Row ``k`` holds key ``k``'s values (columns as :func:`_family_columns`), the last
        row those of an unseen key, so ``key_index`` output (-1 = unseen) indexes it
        directly. Each row is computed exactly as a query row would be, so a gather
        gives the same bits. Entries are tied to the table and prior objects they came
        from; when the cache grows past a few days per family, days other than
        ``current`` (those of the rows at hand) are dropped.
        """
        entries = cache["entries"]
        entry = entries.get((family, end))
        if entry is not None and entry[0] is table and entry[1] is prior:
            return entry[2]
        keys = np.append(np.arange(table.key_codes.size, dtype=np.int64), -1)
        columns = _family_columns(table, prior, keys, np.full(keys.size, end, dtype=np.int64), windows, 1)
        values = np.column_stack(columns)
        if len(entries) >= (_DAY_TABLE_MAX_DAYS + 1) * max(len(self.families_), 1):
            for stale in [k for k in list(entries) if k[1] not in current]:
                entries.pop(stale, None)
        entries[(family, end)] = (table, prior, values)
        return values

    def _tables(self, frame: Mapping[str, np.ndarray]) -> tuple[dict[str, DailyStats], _ClickLog | None]:
        time_column = self._time_column()
        stats = {f: DailyStats.from_samples(frame, cols, time_column) for f, cols in self.families_.items()}
        clicks = _ClickLog.from_frame(frame, time_column, self.items_) if self._has_embedding_ else None
        return stats, clicks

    def _bin_plan(self) -> dict[str, Any]:
        """Binning layout of the fitted binner, as arrays the transform loop can use at once.

        ``edges`` stacks every binned feature's inner edges into one (K, n_binned) table
        padded with NaN (``x >= NaN`` is False, so padding never counts), or is None when
        some feature has more than 16 inner edges (then each column gets a binary search).
        """
        position = {name: j for j, name in enumerate(self.continuous_names_)}
        index = np.array([position[name] for name in self.binned_names_], dtype=np.intp)
        inner = [np.asarray(e[1:-1], dtype=np.float64) for e in self.binner_.bin_edges_]
        k = max((e.size for e in inner), default=0)
        edges = None
        if k <= 16:
            edges = np.full((k, len(inner)), np.nan)
            for j, e in enumerate(inner):
                edges[: e.size, j] = e
        return {
            "index": index,
            "identity": bool(np.array_equal(index, np.arange(len(self.continuous_names_)))),
            "edges": edges,
            "inner": inner,
            "nan_codes": np.asarray(self.binner_.n_bins_, dtype=np.int32),
            "cosine": position.get(_COSINE, -1),
        }

    def _attribute_codes(self) -> dict[str, np.ndarray]:
        """Codes of the item/user categorical features per attribute-table row.

        Encoding each table row once and gathering by row is far cheaper than encoding
        every exposure; the table's last row stands for unknown ids.
        """
        out = {}
        for group, table in (("item", self.items_), ("user", self.users_)):
            if group in self.encoders_:
                names = [c.split("_", 1)[1] for c in self._groups_[group]]
                out[group] = self.encoders_[group].transform(table.raw_frame(names, f"{group}_"))
        return out

    def _category_codes(self, frame: Mapping[str, np.ndarray], attribute_codes: Mapping[str, np.ndarray]) -> np.ndarray:
        """int32 codes of the context, item and user categorical features, in that order."""
        blocks = []
        if "context" in self.encoders_:
            # Same columns (and dtypes) as _context_frame, without building a frame per call.
            columns = []
            for col in self._groups_["context"]:
                values = frame[col]
                columns.append(values.astype(object) if values.dtype.kind in "US" else values)
            blocks.append(self.encoders_["context"]._encode_columns(columns))
        for group, row in (("item", "_item_row"), ("user", "_user_row")):
            if group in attribute_codes:
                per_row = attribute_codes[group]
                index = frame[row]
                blocks.append(per_row[np.where(index < 0, per_row.shape[0] - 1, index)])
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        samples: pd.DataFrame,
        y: Any = None,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
    ) -> FeatureBuilder:
        """Learn counting tables, priors, bin edges and categories from training samples.

        Parameters
        ----------
        samples : pandas.DataFrame
            Training samples (``join_samples(...).samples`` restricted to the training
            days): user_id, item_id, ts, click, optional day, position, order and
            context columns.
        y : None
            Ignored (labels are the ``click`` column).
        items : pandas.DataFrame, optional
            Item attributes (``logs.items``): item_id, category, numeric columns,
            embedding.
        users : pandas.DataFrame, optional
            User profile (``logs.users``).

        Returns
        -------
        self : FeatureBuilder
        """
        self._validate_params()
        if not isinstance(samples, pd.DataFrame):
            raise TypeError(f"samples must be a pandas DataFrame. Got {type(samples).__name__} instead.")
        if len(samples) == 0:
            raise ValueError("samples must have at least 1 row. Got 0 rows instead.")
        self.items_ = _AttributeTable.from_frame(items, "item_id", "items") if items is not None else None
        self.users_ = _AttributeTable.from_frame(users, "user_id", "users") if users is not None else None
        self._has_embedding_ = self.items_ is not None and self.items_.embedding is not None
        item_attrs = {f"item_{c}" for c in self.items_.columns} if self.items_ is not None else set()
        user_attrs = {f"user_{c}" for c in self.users_.columns} if self.users_ is not None else set()
        derived = {"hour", "position", "user_id", "item_id", "ts", "day"}

        def available(col: str) -> bool:
            return col in derived or col in item_attrs or col in user_attrs or col in samples.columns

        families: dict[str, tuple[str, ...]] = {}
        for name in self.key_families:
            if all(available(c) for c in KEY_FAMILIES[name]):
                families[name] = KEY_FAMILIES[name]
        for key in self.extra_keys:
            missing = [c for c in key if not available(c)]
            if missing:
                raise ValueError(
                    f"extra_keys columns must exist in samples or the attribute tables. Got unknown {missing} "
                    f"in {tuple(key)!r} instead."
                )
            families["__".join(key)] = tuple(key)
        if self.categorical is None:
            cats = [c for c in _CONTEXT if c in ("hour", "position") or c in samples.columns]
            if self.items_ is not None:
                cats += [f"item_{c}" for c, v in self.items_.columns.items() if v.dtype == object]
            if self.users_ is not None:
                cats += [f"user_{c}" for c in self.users_.columns]
        else:
            cats = list(dict.fromkeys(self.categorical))
            missing = [c for c in cats if not available(c) or c in ("user_id", "item_id", "ts", "day")]
            if missing:
                raise ValueError(
                    "categorical columns must be context columns of samples, hour, position or "
                    f"item_/user_ attributes. Got {missing} instead."
                )
        groups = {
            "context": [c for c in cats if c not in item_attrs and c not in user_attrs],
            "item": [c for c in cats if c in item_attrs],
            "user": [c for c in cats if c in user_attrs],
        }
        self.families_ = families
        self._groups_ = groups
        self.categorical_ = groups["context"] + groups["item"] + groups["user"]
        key_cols = {c for cols in families.values() for c in cols}
        self._key_attributes_ = sorted(key_cols & (item_attrs | user_attrs))
        self._sample_columns_ = sorted((key_cols | set(groups["context"])) - item_attrs - user_attrs - derived)
        frame = self._prepare(samples, "samples", labels=True)
        self.stats_, self.clicks_ = self._tables(frame)
        priors = {}
        for family, table in self.stats_.items():
            tot = table.totals()
            priors[family] = fit_beta_prior(tot["clicks"], tot["exposures"], method=self.prior_method)
        self.priors_ = priors
        columns, names = self._continuous(frame, self.stats_, self.clicks_)
        self.continuous_names_ = names
        keep = [j for j, col in enumerate(columns) if not np.isnan(col).all()]
        self.binned_names_ = [names[j] for j in keep]
        binned = pd.DataFrame({names[j]: columns[j] for j in keep})
        with warnings.catch_warnings():
            # Count features are mostly zero, so collapsed edges are the norm, not news;
            # binner_.collapsed_edges_ keeps the record.
            warnings.simplefilter("ignore", BinCollapseWarning)
            self.binner_ = QuantileBinner(n_bins=self.n_bins).fit(binned)
        encoders = {}
        if groups["context"]:
            encoders["context"] = CategoryEncoder(min_count=self.min_count).fit(self._context_frame(frame))
        for group, table, row in (("item", self.items_, "_item_row"), ("user", self.users_, "_user_row")):
            if groups[group]:
                per_row = {
                    c: table.take(c.split("_", 1)[1], frame[row]) for c in groups[group]
                }
                encoders[group] = CategoryEncoder(min_count=self.min_count).fit(pd.DataFrame(per_row))
        self.encoders_ = encoders
        value_features = [_COSINE] if self._has_embedding_ else []
        self.space_ = FeatureSpace.from_transformers(
            self.binner_, *encoders.values(), value_features=value_features
        )
        self.feature_names_ = list(self.space_.feature_names)
        self.dense_names_ = list(names) + [f"{c}:code" for c in self.categorical_]
        self._attribute_codes_ = self._attribute_codes()
        self._bin_plan_ = self._bin_plan()
        self._day_tables_ = {"entries": {}, "max_keys": _DAY_TABLE_MAX_KEYS}
        return self

    # ------------------------------------------------------------------ transform
    def transform(
        self,
        samples: pd.DataFrame,
        history: pd.DataFrame | None = None,
        *,
        dense: bool = True,
        chunk_size: int = 32768,
    ) -> FeatureMatrix:
        """Compute the features of ``samples``.

        Parameters
        ----------
        samples : pandas.DataFrame
            Samples or a serving frame (user_id, item_id, ts; optional day, position and
            context columns; no labels needed). A context column missing from the frame
            goes to its unknown slot; a missing ``position`` is ``default_position``.
        history : pandas.DataFrame, optional
            Exposure-level labelled samples replacing the fitted counting tables and
            click history (e.g. all logs up to the scored days). Only rows strictly
            before each sample's day (or ``ts - lag_seconds``) are used.
        dense : bool, default=True
            Also return the raw values (``FeatureMatrix.dense``); False leaves it with
            0 columns, for CSR-only consumers (the LR baseline), saving memory.
        chunk_size : int, default=32768
            Rows processed at a time; only memory and speed depend on it, never values.

        Returns
        -------
        features : FeatureMatrix
        """
        check_is_fitted(self, "space_")
        if not isinstance(chunk_size, numbers.Integral) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an int in [1, inf). Got {chunk_size!r} instead.")
        frame = self._prepare(samples, "samples", labels=False)
        if history is not None:
            stats, clicks = self._tables(self._prepare(history, "history", labels=True, context=False))
        else:
            stats, clicks = self.stats_, self.clicks_
        n = len(samples)
        # Per-day tables of the fitted tables persist across calls (serving reuses them);
        # those of a history frame live for this call and pay off only for tables with
        # fewer keys than the frame has rows per day (a table costs a query per key).
        if history is None:
            cache = getattr(self, "_day_tables_", None)
        else:
            n_days = int(np.count_nonzero(np.bincount(frame["day"] - frame["day"].min()))) if n else 1
            cache = {"entries": {}, "max_keys": min(_DAY_TABLE_MAX_KEYS, n // (2 * n_days))}
        n_bin = len(self.binned_names_)
        n_cat = len(self.categorical_)
        n_cont = len(self.continuous_names_)
        plan = getattr(self, "_bin_plan_", None) or self._bin_plan()
        attribute_codes = getattr(self, "_attribute_codes_", None)
        if attribute_codes is None:
            attribute_codes = self._attribute_codes()
        n_values = 1 if self._has_embedding_ else 0
        space = self.space_
        writer = _RowBlockWriter(n, space.n_levels, n_values, space.n_features)
        out_dense = np.empty((n, n_cont + n_cat), dtype=np.float64, order="F") if dense else np.empty((n, 0))
        scratch = None if dense else np.empty((min(n, chunk_size), n_cont), dtype=np.float64, order="F")
        # Row chunks keep the per-column work in cache and the float temporaries small;
        # every value is computed row by row, so chunking never changes a number.
        for start in range(0, n, chunk_size):
            rows = slice(start, min(start + chunk_size, n))
            m = rows.stop - rows.start
            sub = {name: arr[rows] for name, arr in frame.items()}
            columns, _ = self._continuous(sub, stats, clicks, cache)
            cont = out_dense[rows, :n_cont] if dense else scratch[:m]
            for j, col in enumerate(columns):
                cont[:, j] = col
            block = np.empty((m, n_bin + n_cat), dtype=np.int32, order="F")
            if n_bin:
                _bin_codes(cont, plan, block[:, :n_bin])
            if n_cat:
                block[:, n_bin:] = self._category_codes(sub, attribute_codes)
            values = None
            if n_values:
                cosine = cont[:, plan["cosine"]]
                values = np.where(np.isnan(cosine), 0.0, cosine)[:, None]
            writer.write(rows, block, values)
            if dense:
                out_dense[rows, n_cont:] = block[:, n_bin:]
        X = writer.finish()
        return FeatureMatrix(
            X=X,
            feature_names=list(self.feature_names_),
            dense=out_dense,
            dense_names=list(self.dense_names_) if dense else [],
        )

    def fit_transform(
        self,
        samples: pd.DataFrame,
        y: Any = None,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
    ) -> FeatureMatrix:
        """Fit on ``samples`` then transform them (point-in-time, from the fitted tables).

        Parameters
        ----------
        samples, y, items, users
            As in :meth:`fit`.

        Returns
        -------
        features : FeatureMatrix
        """
        return self.fit(samples, y, items=items, users=users).transform(samples)

    # ------------------------------------------------------------------ state
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export the fitted builder as JSON-able metadata and numpy arrays (no pickle).

        Returns
        -------
        meta : dict
            Parameters, families, priors, bin edges, categories, feature layout.
        arrays : dict of str -> ndarray
            Counting tables, click history and attribute tables; save with ``np.savez``
            and load with ``np.load(..., allow_pickle=False)``.
        """
        check_is_fitted(self, "space_")
        params = self.get_params()
        params["windows"] = [int(w) for w in self.windows]
        params["key_families"] = list(self.key_families)
        params["extra_keys"] = [list(k) for k in self.extra_keys]
        params["categorical"] = None if self.categorical is None else list(self.categorical)
        arrays: dict[str, np.ndarray] = {}
        stats_meta = {}
        for i, (family, table) in enumerate(self.stats_.items()):
            meta, arr = table.to_arrays(f"stats{i}.")
            stats_meta[family] = meta
            arrays.update(arr)
        items_meta = users_meta = None
        if self.items_ is not None:
            items_meta, arr = self.items_.to_arrays("items.")
            arrays.update(arr)
        if self.users_ is not None:
            users_meta, arr = self.users_.to_arrays("users.")
            arrays.update(arr)
        if self.clicks_ is not None:
            arrays.update(self.clicks_.to_arrays("clicks."))
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "params": params,
            "families": {f: list(c) for f, c in self.families_.items()},
            "stats": stats_meta,
            "priors": {f: p.to_dict() for f, p in self.priors_.items()},
            "binner": self.binner_.to_dict(),
            "encoders": {g: e.to_dict() for g, e in self.encoders_.items()},
            "groups": {g: list(c) for g, c in self._groups_.items()},
            "key_attributes": list(self._key_attributes_),
            "space": self.space_.to_dict(),
            "continuous_names": list(self.continuous_names_),
            "binned_names": list(self.binned_names_),
            "categorical": list(self.categorical_),
            "sample_columns": list(self._sample_columns_),
            "items": items_meta,
            "users": users_meta,
            "has_clicks": self.clicks_ is not None,
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FeatureBuilder:
        """Rebuild a fitted builder from :meth:`to_state` output.

        Parameters
        ----------
        meta : mapping
            The metadata (possibly after a JSON round trip).
        arrays : mapping of str -> ndarray
            The arrays (e.g. ``np.load(path, allow_pickle=False)``).

        Returns
        -------
        builder : FeatureBuilder
            Fitted; ``transform`` gives the same numbers as the exported builder.
        """
        if not isinstance(meta, Mapping):
            raise TypeError(f"meta must be a dict. Got {type(meta).__name__} instead.")
        if meta.get("format") != _FORMAT or meta.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"meta must have format {_FORMAT!r} version {_FORMAT_VERSION}. "
                f"Got format {meta.get('format')!r} version {meta.get('version')!r} instead."
            )
        try:
            params = dict(meta["params"])
            params["windows"] = tuple(params["windows"])
            params["key_families"] = tuple(params["key_families"])
            params["extra_keys"] = tuple(tuple(k) for k in params["extra_keys"])
            if params["categorical"] is not None:
                params["categorical"] = tuple(params["categorical"])
            self = cls(**params)
            self._validate_params()
            self.families_ = {f: tuple(c) for f, c in meta["families"].items()}
            self.stats_ = {
                f: DailyStats.from_arrays(meta["stats"][f], arrays, f"stats{i}.") for i, f in enumerate(self.families_)
            }
            self.priors_ = {f: BetaPrior.from_dict(p) for f, p in meta["priors"].items()}
            self.binner_ = QuantileBinner.from_dict(meta["binner"])
            self.encoders_ = {g: CategoryEncoder.from_dict(e) for g, e in meta["encoders"].items()}
            self._groups_ = {g: list(c) for g, c in meta["groups"].items()}
            self._key_attributes_ = list(meta["key_attributes"])
            self.space_ = FeatureSpace.from_dict(meta["space"])
            self.continuous_names_ = list(meta["continuous_names"])
            self.binned_names_ = list(meta["binned_names"])
            self.categorical_ = list(meta["categorical"])
            self._sample_columns_ = list(meta["sample_columns"])
            self.items_ = None if meta["items"] is None else _AttributeTable.from_arrays(meta["items"], arrays, "items.")
            self.users_ = None if meta["users"] is None else _AttributeTable.from_arrays(meta["users"], arrays, "users.")
            self._has_embedding_ = self.items_ is not None and self.items_.embedding is not None
            self.clicks_ = _ClickLog.from_arrays(arrays, "clicks.") if meta["has_clicks"] else None
            self.feature_names_ = list(self.space_.feature_names)
            self.dense_names_ = self.continuous_names_ + [f"{c}:code" for c in self.categorical_]
            self._attribute_codes_ = self._attribute_codes()
            self._bin_plan_ = self._bin_plan()
            self._day_tables_ = {"entries": {}, "max_keys": _DAY_TABLE_MAX_KEYS}
        except KeyError as exc:
            raise ValueError(f"meta/arrays must hold a complete FeatureBuilder state. Got no {exc.args[0]!r} instead.") from None
        return self
