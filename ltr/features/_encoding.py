"""Categorical features to fixed integer codes with a minimum count and an unknown slot.

Code layout of feature ``j`` after ``fit`` (``k = len(categories_[j])``):

- ``0 .. k - 1``: the kept categories, in sorted order;
- ``k`` (``unknown_code_[j]``): ``"<unk>"``, shared by levels seen fewer than
  ``min_count`` times in training and by values never seen in training;
- ``k + 1`` (only with ``missing="separate"``): ``"<nan>"`` for NaN/None/pd.NA.
  With the default ``missing="unknown"`` missing values also go to ``k``.

Rare and unseen values share a slot on purpose: a linear model learns that slot's
weight from the rare training levels, and it is the best available guess for a
level that first appears online (a new item is by definition rare).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ltr._validation import check_choice, check_int
from ltr.artifacts import check_state
from ltr.features._category_lookup import CategoryLookup
from ltr.features._fitted_names import column_label, names_from_state, names_to_state

__all__ = ["CategoryEncoder"]

_FORMAT = "ltr.CategoryEncoder"
_FORMAT_VERSION = 1
_MISSING_MODES = ("unknown", "separate")
UNKNOWN_LEVEL = "<unk>"
MISSING_LEVEL = "<nan>"
_NUMERIC_KINDS = frozenset(
    {"integer", "floating", "mixed-integer-float", "boolean", "integer-na", "decimal"}
)


class CategoryEncoder(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Encode categorical columns as int32 codes with a rare/unknown slot.

    Parameters
    ----------
    min_count : int, default=1
        A level must occur at least this many times in the training rows to get its
        own code; rarer levels go to the ``"<unk>"`` slot. The default keeps every
        seen level; for high-cardinality ids a larger value (e.g. 5-20) keeps the
        one-hot space small and gives the unknown slot training rows to learn from.
    missing : {"unknown", "separate"}, default="unknown"
        Where NaN, None and pd.NA go: the ``"<unk>"`` slot, or a dedicated
        ``"<nan>"`` slot after it.

    Attributes
    ----------
    categories_ : list of list
        Kept levels per feature, sorted, as plain Python ``str``/``int``/``float``
        values (JSON-serialisable). ``categories_[j][c]`` is the level of code ``c``.
    unknown_code_ : ndarray of int64, shape (n_features_in_,)
        Code of the ``"<unk>"`` slot per feature (``len(categories_[j])``).
    missing_code_ : ndarray of int64, shape (n_features_in_,)
        Code given to missing values per feature.
    n_codes_ : ndarray of int64, shape (n_features_in_,)
        Size of each feature's code space; codes lie in ``[0, n_codes_[j])``.
    n_rare_levels_ : ndarray of int64, shape (n_features_in_,)
        Number of distinct training levels folded into ``"<unk>"`` by ``min_count``.
    value_kinds_ : list of str
        ``"str"``, ``"number"`` or ``"empty"`` (all missing) per feature; ``transform``
        rejects a column of the other kind (e.g. ids that turned from int to str).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str, shape (n_features_in_,)
        Column names seen in ``fit``; only set when ``X`` was a DataFrame with
        string column names.

    Notes
    -----
    Each column must hold only strings or only numbers (missing values aside);
    mixed columns raise ``TypeError`` so that ``1`` and ``"1"`` are never silently
    merged or split. Numbers compare by value, so ``2`` and ``2.0`` are one level.

    Examples
    --------
    >>> enc = CategoryEncoder(min_count=2).fit([["shoes"], ["shoes"], ["bags"]])
    >>> enc.categories_
    [['shoes']]
    >>> enc.transform([["shoes"], ["bags"], ["hats"], [None]]).ravel().tolist()
    [0, 1, 1, 1]
    """

    def __init__(self, min_count: int = 1, missing: str = "unknown"):
        self.min_count = min_count
        self.missing = missing

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        # The "string" tag would tell sklearn's checks that element types are not
        # validated; this encoder does validate them (see Notes), so it stays False
        # even though str columns are supported.
        tags.input_tags.string = False
        tags.transformer_tags.preserves_dtype = []
        return tags

    def _validate_params(self) -> None:
        check_int(self.min_count, "min_count", minimum=1)
        check_choice(self.missing, "missing", _MISSING_MODES)

    def _columns(self, X: Any, reset: bool) -> list[np.ndarray]:
        """Validate ``X`` and split it into 1-D columns, keeping each column's dtype."""
        if sp.issparse(X):
            raise TypeError(
                "X must be a dense array-like or DataFrame. Got a sparse matrix instead."
            )
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True, reset=reset)
            if X.shape[0] == 0:
                raise ValueError(
                    f"X must have at least 1 row. Got a DataFrame of shape {X.shape} instead."
                )
            if X.shape[1] == 0:
                raise ValueError(
                    f"X must have at least 1 column. Got a DataFrame of shape {X.shape} instead."
                )
            return [X.iloc[:, j].to_numpy() for j in range(X.shape[1])]
        if isinstance(X, (list, tuple)):
            # A plain list of mixed ints and strings would become all-str under
            # numpy's default promotion; object keeps each value's type.
            X = np.asarray(X, dtype=object)
        array = check_array(X, dtype=None, ensure_all_finite=False, estimator=self)
        validate_data(self, array, skip_check_array=True, reset=reset)
        return [array[:, j] for j in range(array.shape[1])]

    def _check_kind(self, values: np.ndarray, j: int) -> str:
        """Return "number", "str" or "empty" (all missing); raise for anything else."""
        if values.dtype.kind in "biuf":
            return "empty" if values.dtype.kind == "f" and np.isnan(values).all() else "number"
        if values.dtype.kind == "U":
            return "str"
        if values.dtype.kind == "c":
            raise ValueError(
                f"Column {column_label(self, j)} must not be complex. Got {values.dtype} instead."
            )
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind in _NUMERIC_KINDS:
            return "number"
        if kind in ("string", "empty"):
            return "str" if kind == "string" else "empty"
        # Error path only: find one offending row to show.
        is_str = np.frompyfunc(lambda v: isinstance(v, str), 1, 1)(values).astype(bool)
        is_num = np.frompyfunc(
            lambda v: isinstance(v, (numbers.Number, np.bool_)), 1, 1
        )(values).astype(bool)
        present = ~pd.isna(values) if values.dtype == object else np.ones(values.size, bool)
        bad = present & ~is_str & ~is_num
        if not bad.any():
            # Strings and numbers mixed: show the first value of the minority type.
            bad = present & (is_num if is_str.sum() >= is_num.sum() else is_str)
        row = int(np.flatnonzero(bad)[0])
        value = _plain(values[row])
        raise TypeError(
            f"Column {column_label(self, j)} must hold only strings or only numbers (each "
            f"argument must be a string or a number, one type per column). Got "
            f"{value!r} ({type(value).__name__}) at row {row} in a column of kind "
            f"{kind!r} instead."
        )

    def fit(self, X: Any, y: Any = None) -> CategoryEncoder:
        """Learn the kept levels of each column.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Categorical columns of strings or numbers; NaN/None/pd.NA are missing.
        y : None
            Ignored.

        Returns
        -------
        self : CategoryEncoder
            The fitted encoder.
        """
        self._validate_params()
        counts, kinds = self._level_counts(self._columns(X, reset=True))
        self._fit_counts(counts, kinds)
        return self

    def _level_counts(self, columns: list[np.ndarray]) -> tuple[list[pd.Series], list[str]]:
        """Rows per non-missing level of each column, and each column's kind."""
        out, kinds = [], []
        for j, values in enumerate(columns):
            kinds.append(self._check_kind(values, j))
            present = values[~pd.isna(values)]
            counts = pd.Series(present, dtype=object if present.dtype == object else None)
            out.append(counts.value_counts(sort=False, dropna=True))
        return out, kinds

    def _fit_counts(self, counts: Sequence[pd.Series], kinds: Sequence[str]) -> None:
        categories: list[list[Any]] = []
        n_rare = []
        for level_counts in counts:
            kept = level_counts.index[level_counts.to_numpy() >= self.min_count]
            n_rare.append(int(level_counts.size - kept.size))
            categories.append(_plain_sorted(kept.to_numpy()))
        self._set_state(categories)
        self.n_rare_levels_ = np.asarray(n_rare, dtype=np.int64)
        self.value_kinds_ = list(kinds)

    def level_counts(self, X: pd.DataFrame) -> tuple[list[pd.Series], list[str]]:
        """What :meth:`fit` learns from: rows per level of each column, and each column's kind.

        Counts of disjoint parts of the training rows add up (:meth:`fit_counts`), so an
        encoder is fitted from partitions exactly as from all rows. Never changes ``self``.

        Parameters
        ----------
        X : pandas.DataFrame
            Categorical columns (as for :meth:`fit`).

        Returns
        -------
        counts : list of pandas.Series
            Per column, rows per non-missing level (index: the levels).
        kinds : list of str
            Per column, "number", "str" or "empty" (all missing).
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame. Got {type(X).__name__} instead.")
        probe = CategoryEncoder(min_count=self.min_count, missing=self.missing)
        return probe._level_counts(probe._columns(X, reset=True))

    def fit_counts(self, counts: Sequence[Sequence[pd.Series]], kinds: Sequence[Sequence[str]],
                   feature_names: Sequence[str]) -> CategoryEncoder:
        """Fit from the :meth:`level_counts` of disjoint parts of the training rows.

        Parameters
        ----------
        counts : sequence of list of pandas.Series
            Per part, :meth:`level_counts`'s counts (one Series per column).
        kinds : sequence of list of str
            Per part, :meth:`level_counts`'s kinds.
        feature_names : sequence of str
            The column names.

        Returns
        -------
        self : CategoryEncoder
            Fitted exactly as :meth:`fit` on the rows of every part.
        """
        self._validate_params()
        names = [str(n) for n in feature_names]
        if not counts or any(len(part) != len(names) for part in counts):
            raise ValueError(f"counts must hold one Series per feature ({len(names)}) for every part. "
                             f"Got {[len(part) for part in counts]} instead.")
        summed = []
        for j in range(len(names)):
            parts = [part[j] for part in counts if len(part[j])]
            summed.append(pd.concat(parts).groupby(level=0, sort=False).sum() if parts else counts[0][j])
        merged_kinds = []
        for j, name in enumerate(names):
            found = sorted({part[j] for part in kinds} - {"empty"})
            if len(found) > 1:
                raise TypeError(f"Column {name!r} must hold only strings or only numbers. Got both kinds "
                                f"{found} in different parts instead.")
            merged_kinds.append(found[0] if found else "empty")
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self._fit_counts(summed, merged_kinds)
        return self

    def _set_state(self, categories: list[list[Any]]) -> None:
        self.categories_ = categories
        sizes = np.array([len(c) for c in categories], dtype=np.int64)
        self.unknown_code_ = sizes
        if self.missing == "separate":
            self.missing_code_ = sizes + 1
            self.n_codes_ = sizes + 2
        else:
            self.missing_code_ = sizes.copy()
            self.n_codes_ = sizes + 1
        self._lookups = [CategoryLookup(c) for c in categories]

    def transform(self, X: Any) -> np.ndarray:
        """Map values to codes.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features_in_)
            Same column types as in ``fit``; unseen levels are allowed.

        Returns
        -------
        codes : ndarray of int32, shape (n_samples, n_features_in_)
            Kept levels get ``0 .. len(categories_[j]) - 1``, rare and unseen levels
            ``unknown_code_[j]``, missing values ``missing_code_[j]``.
        """
        check_is_fitted(self, "categories_")
        return self.encode_columns(self._columns(X, reset=False))

    def encode_columns(self, columns: list[np.ndarray]) -> np.ndarray:
        """Codes of already split 1-D columns (:meth:`transform` minus the frame validation).

        Callers that own the column layout (the feature builder on the serving path) skip
        the DataFrame round trip; the per-column kind checks still run.

        Parameters
        ----------
        columns : list of ndarray
            One 1-D array per fitted feature, in fit order, all of one length.

        Returns
        -------
        codes : ndarray of int32, shape (n_rows, len(columns))
        """
        n_rows = columns[0].shape[0] if columns else 0
        codes = np.empty((n_rows, len(columns)), dtype=np.int32)
        for j, values in enumerate(columns):
            codes[:, j] = self._codes(values, j)
        return codes

    def _codes(self, values: np.ndarray, j: int) -> np.ndarray:
        """Codes of one column's values (checked against the kind seen in fit)."""
        kind = self._check_kind(values, j)
        fitted = self.value_kinds_[j]
        if "empty" not in (kind, fitted) and kind != fitted:
            # e.g. ids read as int at training and as str online: every value would
            # silently fall into <unk>.
            raise TypeError(
                f"Column {column_label(self, j)} must hold {fitted} values as in fit. "
                f"Got {kind} values (first: {_plain(values[0])!r}) instead."
            )
        found = self._lookups[j](values, kind)
        found[found < 0] = self.unknown_code_[j]
        found[pd.isna(values)] = self.missing_code_[j]
        return found

    def get_level_names(self) -> list[list[str]]:
        """Names of each feature's codes, in code order.

        Returns
        -------
        level_names : list of list of str
            The levels of ``categories_[j]`` as text (integral floats without
            ``.0``, since ``2`` and ``2.0`` are one level) then ``"<unk>"`` (plus
            ``"<nan>"`` with ``missing="separate"``), so ``level_names[j][code]``
            names a code (e.g. for ``"category=shoes"``, ``"category=<unk>"``).
        """
        check_is_fitted(self, "categories_")
        extra = [UNKNOWN_LEVEL] + ([MISSING_LEVEL] if self.missing == "separate" else [])
        return [[_level_name(c) for c in cats] + extra for cats in self.categories_]

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export the fitted state as JSON-serialisable metadata (no arrays needed).

        Returns
        -------
        meta : dict
            Format tag and version, parameters, feature names (or None), the kept
            categories per feature and the rare-level counts.
        arrays : dict
            Empty: categories of mixed Python types are kept exactly in the metadata.
        """
        check_is_fitted(self, "categories_")
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "params": {"min_count": int(self.min_count), "missing": self.missing},
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": names_to_state(self),
            "categories": [list(c) for c in self.categories_],
            "n_rare_levels": self.n_rare_levels_.tolist(),
            "value_kinds": list(self.value_kinds_),
        }
        return meta, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> CategoryEncoder:
        """Rebuild a fitted encoder from :meth:`to_state` output.

        Parameters
        ----------
        meta : dict
            As returned by :meth:`to_state` (possibly after a JSON round trip).
        arrays : mapping of str -> ndarray
            As returned by :meth:`to_state` (unused: the encoder keeps no arrays).

        Returns
        -------
        encoder : CategoryEncoder
            A fitted encoder whose ``transform`` equals the exported one's.
        """
        needed = (
            "params",
            "n_features_in",
            "feature_names_in",
            "categories",
            "n_rare_levels",
            "value_kinds",
        )
        check_state(meta, _FORMAT, _FORMAT_VERSION, needed)
        encoder = cls(**meta["params"])
        encoder._validate_params()
        n_features = int(meta["n_features_in"])
        categories = [list(c) for c in meta["categories"]]
        if len(categories) != n_features:
            raise ValueError(
                f"meta['categories'] must have {n_features} lists. Got {len(categories)} instead."
            )
        for j, cats in enumerate(categories):
            if len(set(cats)) != len(cats) or any(
                not isinstance(c, (str, int, float)) or (isinstance(c, float) and c != c)
                for c in cats
            ):
                raise ValueError(
                    f"meta['categories'][{j}] must be distinct non-missing str/int/float "
                    f"values. Got {cats[:10]!r} instead."
                )
        encoder.n_features_in_ = n_features
        names_from_state(encoder, meta["feature_names_in"], n_features)
        encoder._set_state(categories)
        encoder.n_rare_levels_ = np.asarray(meta["n_rare_levels"], dtype=np.int64)
        kinds = list(meta["value_kinds"])
        if len(kinds) != n_features or not set(kinds) <= {"str", "number", "empty"}:
            raise ValueError(
                f"meta['value_kinds'] must have {n_features} entries among 'str', 'number', "
                f"'empty'. Got {kinds!r} instead."
            )
        encoder.value_kinds_ = kinds
        return encoder


def _plain_sorted(levels: np.ndarray) -> list[Any]:
    """Sort levels and turn numpy scalars into plain Python values for JSON."""
    ordered = np.sort(np.asarray(levels, dtype=object) if levels.dtype.kind == "O" else levels)
    return [v.item() if isinstance(v, np.generic) else v for v in ordered.tolist()]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _level_name(level: Any) -> str:
    if isinstance(level, float) and level.is_integer():
        return str(int(level))
    return str(level)
