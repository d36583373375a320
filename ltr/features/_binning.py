"""Equal-frequency (quantile) binning of continuous features into integer codes.

The fitted edges are plain floats so that online code can reproduce the codes
without this package: for feature ``j`` with edges ``e = bin_edges_[j]`` the code
of a finite value ``x`` is the number of inner edges ``e[1:-1]`` that are ``<= x``
(``numpy.searchsorted(e[1:-1], x, side="right")``), and the code of NaN is
``n_bins_[j]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ltr._validation import check_choice, check_int
from ltr.artifacts import check_state
from ltr.features._fitted_names import column_label, names_from_state, names_to_state

__all__ = ["BinCoder", "BinCollapseWarning", "QuantileBinner", "sum_value_counts", "value_counts"]

_FORMAT = "ltr.QuantileBinner"
_FORMAT_VERSION = 1
_QUANTILE_METHODS = ("averaged_inverted_cdf", "inverted_cdf")
_NAN_LEVEL = "<nan>"


class BinCollapseWarning(UserWarning):
    """Quantile edges of some features coincided, so they got fewer bins than asked.

    This is expected for features with a point mass (for example 60% zeros); the
    warning names the features so the loss of resolution is never silent. Filter
    it with ``warnings.filterwarnings("ignore", category=BinCollapseWarning)``.
    """


class QuantileBinner(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Bin continuous features into equal-frequency bins with fixed integer codes.

    Parameters
    ----------
    n_bins : int, default=10
        Number of bins asked for per feature, at least 2. Features with ties get
        fewer (see ``n_bins_``).
    quantile_method : {"averaged_inverted_cdf", "inverted_cdf"}, \
            default="averaged_inverted_cdf"
        Quantile definition (as in :func:`numpy.quantile`) for the edges, over the
        ``m`` non-NaN training values ``x_(1) <= ... <= x_(m)`` of a feature: edge
        ``i`` sits at sample position ``h = m * i / n_bins``. ``"inverted_cdf"``
        takes ``x_(ceil(h))`` (an observed value); ``"averaged_inverted_cdf"``
        (scikit-learn's default) takes the midpoint of ``x_(h)`` and ``x_(h+1)``
        when ``h`` is a whole number, which gives exactly equal counts when ``m``
        is a multiple of ``n_bins``. ``h`` is computed in integer arithmetic.

    Attributes
    ----------
    bin_edges_ : list of ndarray of float64
        One array per feature of length ``n_bins_[j] + 1``: the training minimum,
        the inner edges, the training maximum. Strictly increasing, except
        ``[c, c]`` for a feature that was constant ``c`` on the training rows.
    n_bins_ : ndarray of int64, shape (n_features_in_,)
        Number of finite-value bins per feature, between 1 and ``n_bins``.
    n_codes_ : ndarray of int64, shape (n_features_in_,)
        Size of each feature's code space, ``n_bins_ + 1``: codes
        ``0 .. n_bins_[j] - 1`` are the bins, code ``n_bins_[j]`` is NaN. The NaN
        code exists even when training had no NaN, so the code space is fixed at fit.
    collapsed_edges_ : list of ndarray of float64
        Per feature, the quantile edges that were dropped (duplicates of a kept
        edge, or edges that would have left a bin empty on the training rows).
        Empty for features that got all ``n_bins`` bins.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str, shape (n_features_in_,)
        Column names seen in ``fit``; only set when ``X`` was a DataFrame with
        string column names.

    Notes
    -----
    Boundaries are left-closed, like :class:`sklearn.preprocessing.KBinsDiscretizer`:
    a value equal to an inner edge goes to the upper bin. Values below the training
    minimum fall in bin 0 and values above the training maximum in the last bin.

    On data without ties the edges equal ``KBinsDiscretizer(strategy="quantile")``'s
    for the same ``quantile_method``, except where :func:`numpy.percentile`'s float
    levels put ``h`` a hair above a whole number (e.g. 7 values into 7 bins: level
    ``100/7`` gives ``h = 1.0000000000000002``); there numpy takes the next order
    statistic and the bins are no longer equal-frequency, while the exact ``h``
    used here keeps them equal.

    Duplicate quantile edges (from ties) are merged, then any inner edge whose bin
    would hold no training row is dropped, so every bin ``0 .. n_bins_[j] - 1`` holds
    at least one training row. A :class:`BinCollapseWarning` lists the features that
    lost bins. Infinite values are rejected; a feature that is NaN on every
    training row is rejected too because it has no edges to learn.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.0], [1.0], [2.0], [np.nan]])
    >>> binner = QuantileBinner(n_bins=2).fit(X)
    >>> binner.bin_edges_[0].tolist()
    [0.0, 0.5, 2.0]
    >>> binner.transform(np.array([[-5.0], [0.4], [0.5], [9.0], [np.nan]])).ravel().tolist()
    [0, 0, 1, 1, 2]
    """

    def __init__(self, n_bins: int = 10, quantile_method: str = "averaged_inverted_cdf"):
        self.n_bins = n_bins
        self.quantile_method = quantile_method

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        # Output is int32 codes whatever the input float dtype.
        tags.transformer_tags.preserves_dtype = []
        return tags

    def _validate_params(self) -> None:
        check_int(self.n_bins, "n_bins", minimum=2)
        check_choice(self.quantile_method, "quantile_method", _QUANTILE_METHODS)

    def fit(self, X: Any, y: Any = None) -> QuantileBinner:
        """Learn per-feature quantile edges from the training rows.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Continuous features; NaN allowed, infinities are not.
        y : None
            Ignored.

        Returns
        -------
        self : QuantileBinner
            The fitted binner.
        """
        self._validate_params()
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        n_bins = int(self.n_bins)
        finite = ~np.isnan(X)
        empty = np.flatnonzero(~finite.any(axis=0))
        if empty.size:
            labels = ", ".join(column_label(self, int(j)) for j in empty)
            raise ValueError(
                "Every feature must have at least one non-NaN training value. "
                f"Got only NaN in feature(s) {labels} instead; drop or impute them."
            )
        edges_out: list[np.ndarray] = []
        collapsed_out: list[np.ndarray] = []
        for j in range(X.shape[1]):
            column = X[finite[:, j], j]
            quantiles = _exact_quantiles(column, n_bins, self.quantile_method)
            edges, collapsed = _fit_edges(column, quantiles)
            edges_out.append(edges)
            collapsed_out.append(collapsed)
        self.bin_edges_ = edges_out
        self.n_bins_ = np.array([e.size - 1 for e in edges_out], dtype=np.int64)
        self.n_codes_ = self.n_bins_ + 1
        self.collapsed_edges_ = collapsed_out
        self._warn_collapsed()
        return self

    def fit_counts(self, values: Sequence[np.ndarray], counts: Sequence[np.ndarray],
                   feature_names: Sequence[str]) -> QuantileBinner:
        """Fit from the distinct finite training values of each feature and their counts.

        The edges equal :meth:`fit`'s on the rows the counts come from (counts of disjoint
        parts of the rows add up: :func:`value_counts`, :func:`sum_value_counts`).

        Parameters
        ----------
        values : sequence of ndarray
            Per feature, the sorted distinct finite values.
        counts : sequence of ndarray of int
            Per feature, how many rows hold each value.
        feature_names : sequence of str

        Returns
        -------
        self : QuantileBinner
        """
        self._validate_params()
        names = [str(n) for n in feature_names]
        if len(values) != len(names) or len(counts) != len(names):
            raise ValueError(f"values and counts must have one array per feature ({len(names)}). "
                             f"Got {len(values)} and {len(counts)} instead.")
        empty = [name for name, c in zip(names, counts, strict=True) if int(np.sum(c)) == 0]
        if empty:
            raise ValueError("Every feature must have at least one non-NaN training value. "
                             f"Got only NaN in feature(s) {', '.join(empty)} instead; drop or impute them.")
        fitted = [_fit_edges(v, _exact_quantiles(v, int(self.n_bins), self.quantile_method, c), c)
                  for v, c in zip(values, counts, strict=True)]
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.bin_edges_ = [edges for edges, _ in fitted]
        self.n_bins_ = np.array([e.size - 1 for e in self.bin_edges_], dtype=np.int64)
        self.n_codes_ = self.n_bins_ + 1
        self.collapsed_edges_ = [collapsed for _, collapsed in fitted]
        self._warn_collapsed()
        return self

    def _warn_collapsed(self) -> None:
        lost = np.flatnonzero(self.n_bins_ < self.n_bins)
        if lost.size == 0:
            return
        shown = ", ".join(f"{column_label(self, j)}: {self.n_bins_[j]}" for j in lost[:20])
        more = f" and {lost.size - 20} more" if lost.size > 20 else ""
        warnings.warn(
            f"Quantile edges collapsed (ties) in {lost.size} feature(s); bins kept out of "
            f"{self.n_bins}: {shown}{more}. See n_bins_ and collapsed_edges_.",
            BinCollapseWarning,
            stacklevel=3,
        )

    def transform(self, X: Any) -> np.ndarray:
        """Map values to bin codes.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features_in_)
            Continuous features; NaN allowed, infinities are not.

        Returns
        -------
        codes : ndarray of int32, shape (n_samples, n_features_in_)
            Bin code per value: ``0 .. n_bins_[j] - 1`` for finite values (clipped
            into the end bins outside the training range), ``n_bins_[j]`` for NaN.
        """
        check_is_fitted(self, "bin_edges_")
        X = validate_data(
            self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False
        )
        codes = np.empty(X.shape, dtype=np.int32)
        for j, edges in enumerate(self.bin_edges_):
            column = X[:, j]
            # NaN sorts after every number, so searchsorted alone would put it in the
            # last bin; it gets its own code instead.
            codes[:, j] = np.searchsorted(edges[1:-1], column, side="right")
            codes[np.isnan(column), j] = self.n_bins_[j]
        return codes

    def get_level_names(self) -> list[list[str]]:
        """Names of each feature's codes, in code order.

        Returns
        -------
        level_names : list of list of str
            ``["bin0", ..., "bin{n_bins_[j]-1}", "<nan>"]`` per feature, so
            ``level_names[j][code]`` names a code (e.g. for ``"item_ctr_7d=bin3"``).
        """
        check_is_fitted(self, "bin_edges_")
        return [[f"bin{b}" for b in range(k)] + [_NAN_LEVEL] for k in self.n_bins_.tolist()]

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export the fitted state as JSON-serialisable metadata (no arrays needed).

        Returns
        -------
        meta : dict
            Format tag and version, parameters, feature names (or None), and per
            feature the edges as lists of floats (JSON keeps every float64 exactly).
        arrays : dict
            Empty: the edges are few and readable in the metadata.
        """
        check_is_fitted(self, "bin_edges_")
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "params": {"n_bins": int(self.n_bins), "quantile_method": self.quantile_method},
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": names_to_state(self),
            "bin_edges": [[float(v) for v in e] for e in self.bin_edges_],
            "collapsed_edges": [[float(v) for v in c] for c in self.collapsed_edges_],
        }
        return meta, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> QuantileBinner:
        """Rebuild a fitted binner from :meth:`to_state` output.

        Parameters
        ----------
        meta : dict
            As returned by :meth:`to_state` (possibly after a JSON round trip).
        arrays : mapping of str -> ndarray
            As returned by :meth:`to_state` (unused: the binner keeps no arrays).

        Returns
        -------
        binner : QuantileBinner
            A fitted binner whose ``transform`` equals the exported one's.
        """
        needed = ("params", "n_features_in", "feature_names_in", "bin_edges", "collapsed_edges")
        check_state(meta, _FORMAT, _FORMAT_VERSION, needed)
        binner = cls(**meta["params"])
        binner._validate_params()
        edges = [np.asarray(e, dtype=np.float64) for e in meta["bin_edges"]]
        n_features = int(meta["n_features_in"])
        if len(edges) != n_features:
            raise ValueError(
                f"meta['bin_edges'] must have {n_features} entries. Got {len(edges)} instead."
            )
        for j, e in enumerate(edges):
            ok = (
                e.ndim == 1
                and 2 <= e.size <= binner.n_bins + 1
                and np.isfinite(e).all()
                and (e.size == 2 or bool(np.all(np.diff(e) > 0)))
                and e[0] <= e[-1]
            )
            if not ok:
                raise ValueError(
                    f"meta['bin_edges'][{j}] must be 2 to n_bins + 1 finite increasing "
                    f"floats. Got {e.tolist()!r} instead."
                )
        binner.n_features_in_ = n_features
        names_from_state(binner, meta["feature_names_in"], n_features)
        binner.bin_edges_ = edges
        binner.n_bins_ = np.array([e.size - 1 for e in edges], dtype=np.int64)
        binner.n_codes_ = binner.n_bins_ + 1
        binner.collapsed_edges_ = [
            np.asarray(c, dtype=np.float64) for c in meta["collapsed_edges"]
        ]
        return binner


def _exact_quantiles(values: np.ndarray, n_bins: int, method: str, counts: np.ndarray | None = None) -> np.ndarray:
    """Quantiles at levels ``i / n_bins`` (``i = 0 .. n_bins``) of finite 1-D ``values``.

    Sample positions are ``m * i / n_bins`` as exact integer ratios, so no float
    rounding can move an edge to a neighbouring order statistic. With ``counts``,
    ``values`` are sorted distinct values each occurring ``counts`` times.
    """
    m = values.size if counts is None else int(counts.sum())
    level = np.arange(n_bins + 1, dtype=np.int64)
    numerator = level * m
    # 0-based index of the order statistic of rank ceil(h), at least rank 1 so that
    # level 0 is the minimum.
    pick = np.maximum(-(-numerator // n_bins), 1) - 1
    whole = np.zeros(n_bins + 1, dtype=bool)
    if method == "averaged_inverted_cdf":
        whole = (numerator % n_bins == 0) & (level > 0) & (level < n_bins)
    upper = np.where(whole, numerator // n_bins, pick)  # h < m when whole, so in range
    # Only these order statistics are needed: a partial partition is O(m log n_bins)
    # where a full sort is O(m log m).
    if counts is None:
        needed = np.unique(np.concatenate([pick, upper]))
        ordered = np.partition(values, needed)
        low, high = ordered[pick], ordered[upper]
    else:
        # Sorted distinct values with their counts: order statistic k is the first value
        # whose cumulative count passes k.
        cum = np.cumsum(counts)
        low = values[np.searchsorted(cum, pick, side="right")]
        high = values[np.searchsorted(cum, upper, side="right")]
    # Same midpoint formula as numpy's interpolation at 0.5, so tie-free edges match
    # KBinsDiscretizer's bit for bit. For whole h, pick = h - 1 and upper = h.
    return np.where(whole, high - (high - low) * 0.5, low)


def _fit_edges(column: np.ndarray, quantiles: np.ndarray, weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw quantiles of one column into edges with no empty bin.

    ``column`` holds the finite training values (or distinct values occurring ``weights``
    times), ``quantiles`` the ``n_bins + 1`` quantile values (first = min, last = max).
    Returns the kept edges and the dropped ones.
    """
    unique = np.unique(quantiles)
    if unique.size == 1:
        # Constant feature: one bin; [c, c] keeps "edges = [min, ..., max]" true.
        return np.array([unique[0], unique[0]]), quantiles[1:-1].copy()
    inner = unique[1:-1]
    counts = np.bincount(np.searchsorted(inner, column, side="right"), weights=weights, minlength=inner.size + 1)
    # Bin 0 always holds the minimum and the last bin the maximum; an empty bin i
    # (possible with averaged quantiles between tied values) is merged into the
    # bin below it by dropping its lower edge inner[i - 1].
    keep_inner = counts[1:] > 0
    edges = np.concatenate(([unique[0]], inner[keep_inner], [unique[-1]]))
    # Multiset difference: quantiles that did not survive as edges.
    dropped = _multiset_difference(quantiles, edges)
    return edges, dropped


def _multiset_difference(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    # Each kept edge consumes one occurrence of its value; the rest were dropped.
    first = np.searchsorted(values, kept, side="left")
    mask = np.ones(values.size, dtype=bool)
    mask[first] = False
    return values[mask]


# Above this many inner edges per feature, one binary search per column beats counting
# edges over the whole block.
_MAX_STACKED_EDGES = 16


@dataclass(frozen=True, eq=False)
class BinCoder:
    """A fitted binner's codes for selected columns of a float block, many columns at once.

    ``codes_into`` gives exactly :meth:`QuantileBinner.transform`'s codes (left-closed
    bins, NaN code last): the code of ``x`` is the number of inner edges ``<= x``, which
    equals ``searchsorted(inner, x, side="right")``. For the handful of edges of count
    features, counting over the whole (rows, features) block is several times faster than
    a binary search per column, and one pass per edge rank instead of one per
    (feature, edge) keeps small (serving) batches cheap too.

    Parameters
    ----------
    index : ndarray of intp
        Column of the block read by each binner feature, in binner order.
    identity : bool
        Whether ``index`` is every block column in order (no gather needed).
    edges : ndarray of shape (K, n_features) or None
        Every feature's inner edges stacked and padded with NaN (``x >= NaN`` is False,
        so padding never counts); None when some feature has more than 16 inner edges
        (then each column gets a binary search over ``inner``).
    inner : tuple of ndarray
        Inner edges per feature.
    nan_codes : ndarray of int32
        Code of NaN per feature (``n_bins_``).
    """

    index: np.ndarray
    identity: bool
    edges: np.ndarray | None
    inner: tuple[np.ndarray, ...]
    nan_codes: np.ndarray

    @classmethod
    def from_binner(cls, binner: QuantileBinner, index: Sequence[int], n_columns: int) -> BinCoder:
        """Coder of the fitted ``binner`` whose feature ``j`` is block column ``index[j]``.

        Parameters
        ----------
        binner : QuantileBinner
            Fitted.
        index : sequence of int
            Block column of each binner feature.
        n_columns : int
            Width of the blocks that will be coded.

        Returns
        -------
        coder : BinCoder
        """
        check_is_fitted(binner, "bin_edges_")
        index_arr = np.asarray(index, dtype=np.intp)
        inner = tuple(np.asarray(e[1:-1], dtype=np.float64) for e in binner.bin_edges_)
        k = max((e.size for e in inner), default=0)
        edges = None
        if k <= _MAX_STACKED_EDGES:
            edges = np.full((k, len(inner)), np.nan)
            for j, e in enumerate(inner):
                edges[: e.size, j] = e
        return cls(
            index=index_arr,
            identity=bool(np.array_equal(index_arr, np.arange(n_columns))),
            edges=edges,
            inner=inner,
            nan_codes=np.asarray(binner.n_bins_, dtype=np.int32),
        )

    def codes_into(self, block: np.ndarray, out: np.ndarray) -> None:
        """Write the codes of ``block[:, index]`` into ``out`` (int32, rows x features)."""
        x = block if self.identity else block[:, self.index]
        if self.edges is not None:
            out[...] = 0
            above = np.empty(x.shape, dtype=bool, order="F")
            for row in self.edges:
                np.greater_equal(x, row, out=above)
                out += above
        else:
            for j, inner in enumerate(self.inner):
                out[:, j] = np.searchsorted(inner, x[:, j], side="right")
        np.copyto(out, np.broadcast_to(self.nan_codes, out.shape), where=np.isnan(x))


def value_counts(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct finite values of a float column and their counts (what
    :meth:`QuantileBinner.fit_counts` needs from one part of the rows)."""
    column = np.asarray(column, dtype=np.float64)
    values, counts = np.unique(column[~np.isnan(column)], return_counts=True)
    return values, counts.astype(np.int64)


def sum_value_counts(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The :func:`value_counts` of the union of disjoint parts of the rows."""
    values, inverse = np.unique(np.concatenate([v for v, _ in parts]), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([c for _, c in parts]), minlength=values.size)
    return values, counts.astype(np.int64)
