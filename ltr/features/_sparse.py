"""Sparse design matrices straight from integer code columns, with aligned feature names.

Layout: code column ``j`` (one-hot of a binned or categorical feature with
``n_levels[j]`` codes) owns the column block ``[offsets[j], offsets[j] + n_levels[j])``
with ``offsets = concatenate([0], cumsum(n_levels)[:-1])``; real-valued columns follow
the last block, one column each. Every row has exactly one stored entry per code
column and per value column, so ``indptr`` is ``arange(n_rows + 1) * n_stored``
and the arrays are written directly, with no COO intermediate.

Index dtype: ``indices``/``indptr`` are int32 unless ``nnz`` or ``n_features`` exceeds
``int64_threshold`` (default ``2**31 - 1``), then int64. scipy keeps int64 arrays it is
given as attributes, but downcasts to int32 whenever it builds a new matrix whose
contents fit (``copy()``, slicing, ``tocsc()``, arithmetic, and the
``csr_matrix((data, indices, indptr))`` constructor itself), which is why the
matrix here is assembled attribute by attribute. Above 2**31 - 1 nothing can
downcast, so the int64 arrays survive. Downstream, measured with scikit-learn 1.9 and
LightGBM 4.7: ``LogisticRegression(solver="lbfgs")`` accepts int64-index CSR
(``accept_large_sparse``); LightGBM passes ``indptr`` as int64 to its C API and
casts ``indices`` to int32 (a copy of ``nnz`` int32s; column ids always fit).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

from ltr._validation import check_int

__all__ = ["INT32_MAX", "RowBlockWriter", "codes_to_csr", "write_libsvm"]

INT32_MAX = int(np.iinfo(np.int32).max)


def codes_to_csr(
    codes: Any,
    n_levels: Any,
    values: Any = None,
    *,
    n_features: int | None = None,
    index_dtype: Any = None,
    int64_threshold: int = INT32_MAX,
    dtype: Any = np.float64,
) -> sp.csr_matrix:
    """Assemble a one-hot (+ real-valued) CSR matrix from integer code columns.

    Parameters
    ----------
    codes : array-like of int, shape (n_rows, n_code_columns)
        Code of each row in each code column, ``0 <= codes[:, j] < n_levels[j]``
        (e.g. :class:`~ltr.binning.QuantileBinner` or
        :class:`~ltr.encoding.CategoryEncoder` output). May have 0 columns.
    n_levels : array-like of int, shape (n_code_columns,)
        Size of each code column's code space (``n_codes_`` of the transformers).
    values : array-like of float, shape (n_rows, n_value_columns), optional
        Real-valued columns placed after the one-hot blocks. Zeros are stored
        explicitly, keeping every row's entry count fixed. Must be finite.
    n_features : int, optional
        Number of matrix columns; at least ``sum(n_levels) + n_value_columns``
        (the default). Extra columns stay empty.
    index_dtype : {None, numpy.int32, numpy.int64}, default=None
        Force the dtype of ``indices`` and ``indptr``; None chooses int64 only when
        ``nnz`` or ``n_features`` exceeds ``int64_threshold``.
    int64_threshold : int, default=2**31 - 1
        Largest ``nnz``/``n_features`` still stored with int32 indices. Lower it in
        tests to exercise the int64 path; it cannot exceed 2**31 - 1.
    dtype : numpy dtype, default=numpy.float64
        dtype of the stored values.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_rows, n_features)
        Canonical CSR (sorted indices, no duplicates). See the module docstring for
        what happens to int64 indices downstream.

    Examples
    --------
    >>> X = codes_to_csr([[1, 0], [0, 2]], n_levels=[2, 3], values=[[0.5], [1.5]])
    >>> X.toarray().tolist()
    [[0.0, 1.0, 1.0, 0.0, 0.0, 0.5], [1.0, 0.0, 0.0, 0.0, 1.0, 1.5]]
    """
    codes_arr = _as_codes(codes)
    n_rows, n_code_cols = codes_arr.shape
    levels = _as_levels(n_levels, n_code_cols)
    values_arr = _as_values(values, n_rows, dtype)
    n_value_cols = values_arr.shape[1]
    width = n_code_cols + n_value_cols
    if width == 0:
        raise ValueError(
            "codes and values must provide at least one column together. "
            "Got 0 code columns and 0 value columns instead."
        )
    offsets = np.zeros(n_code_cols, dtype=np.int64)
    np.cumsum(levels[:-1], out=offsets[1:])
    needed = int(levels.sum()) + n_value_cols
    # At least one column per level of every code column plus one per value column.
    n_features = needed if n_features is None else check_int(n_features, "n_features", minimum=needed)
    _check_code_range(codes_arr, levels)

    nnz = n_rows * width
    idx_dtype = _choose_index_dtype(index_dtype, int64_threshold, nnz, n_features)
    indices = np.empty((n_rows, width), dtype=idx_dtype)
    data = np.empty((n_rows, width), dtype=dtype)
    if n_code_cols:
        indices[:, :n_code_cols] = codes_arr
        indices[:, :n_code_cols] += offsets.astype(idx_dtype)
        data[:, :n_code_cols] = 1
    if n_value_cols:
        indices[:, n_code_cols:] = np.arange(needed - n_value_cols, needed, dtype=idx_dtype)
        data[:, n_code_cols:] = values_arr
    return _fixed_width_csr(data, indices, n_features)


def _fixed_width_csr(data: np.ndarray, indices: np.ndarray, n_features: int) -> sp.csr_matrix:
    """The CSR matrix whose row ``i`` stores ``data[i]`` at columns ``indices[i]`` (sorted)."""
    n_rows, width = indices.shape
    indptr = np.arange(n_rows + 1, dtype=indices.dtype)
    indptr *= width
    # Assigning the arrays after construction is what keeps int64 indices that would
    # fit in int32: the (data, indices, indptr) constructor would downcast them.
    X = sp.csr_matrix((n_rows, n_features), dtype=data.dtype)
    X.data = data.reshape(-1)
    X.indices = indices.reshape(-1)
    X.indptr = indptr
    X.check_format(full_check=False)
    X.has_sorted_indices = True
    X.has_canonical_format = True
    return X


class RowBlockWriter:
    """Fill a :func:`codes_to_csr` matrix row block by row block, without a codes array.

    For trusted callers (``ltr.features``) whose codes are in range by construction: the
    indices and data arrays are written in place, chunk by chunk, so the full
    ``(n_rows, n_code_columns)`` codes array and its offset-shifted copy never exist.
    :meth:`finish` gives exactly the matrix ``codes_to_csr`` gives for the same codes
    and values (same dtypes, same canonical flags).
    """

    def __init__(self, n_rows: int, n_levels: np.ndarray, n_value_cols: int, n_features: int):
        levels = np.asarray(n_levels, dtype=np.int64)
        self.n_code_cols = levels.size
        width = self.n_code_cols + n_value_cols
        self.n_rows, self.n_features = n_rows, int(n_features)
        self.idx_dtype = _choose_index_dtype(None, INT32_MAX, n_rows * width, self.n_features)
        offsets = np.zeros(self.n_code_cols, dtype=np.int64)
        np.cumsum(levels[:-1], out=offsets[1:])
        self.offsets = offsets.astype(self.idx_dtype)
        needed = int(levels.sum()) + n_value_cols
        self.value_columns = np.arange(needed - n_value_cols, needed, dtype=self.idx_dtype)
        self.indices = np.empty((n_rows, width), dtype=self.idx_dtype)
        self.data = np.empty((n_rows, width), dtype=np.float64)

    def write(self, rows: slice, codes: np.ndarray, values: np.ndarray | None) -> None:
        k = self.n_code_cols
        if k:
            np.add(codes, self.offsets, out=self.indices[rows, :k], casting="unsafe")
            self.data[rows, :k] = 1
        if values is not None and values.shape[1]:
            _check_finite(values, first_row=rows.start)
            self.indices[rows, k:] = self.value_columns
            self.data[rows, k:] = values

    def finish(self) -> sp.csr_matrix:
        return _fixed_width_csr(self.data, self.indices, self.n_features)


def _as_codes(codes: Any) -> np.ndarray:
    array = np.asarray(codes)
    if array.ndim != 2:
        raise ValueError(
            f"codes must be a 2-D array (n_rows, n_code_columns). Got shape {array.shape} instead."
        )
    if array.dtype.kind not in "iu":
        if array.size == 0:
            return array.astype(np.int64)
        raise TypeError(f"codes must be an integer array. Got dtype {array.dtype} instead.")
    return array


def _as_levels(n_levels: Any, n_code_cols: int) -> np.ndarray:
    levels = np.asarray(n_levels)
    if levels.ndim != 1 or levels.size != n_code_cols:
        raise ValueError(
            f"n_levels must be a 1-D array with one entry per code column ({n_code_cols}). "
            f"Got shape {levels.shape} instead."
        )
    if levels.size and (levels.dtype.kind not in "iu" or levels.min() < 1):
        raise ValueError(
            f"n_levels must hold ints >= 1. Got {levels.tolist()[:20]!r} instead."
        )
    return levels.astype(np.int64)


def _as_values(values: Any, n_rows: int, dtype: Any) -> np.ndarray:
    if values is None:
        return np.empty((n_rows, 0), dtype=dtype)
    if sp.issparse(values):
        raise TypeError("values must be a dense array. Got a sparse matrix instead.")
    try:
        array = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"values must be numeric. Got {type(values).__name__} instead.") from exc
    if array.ndim != 2 or array.shape[0] != n_rows:
        raise ValueError(
            f"values must be a 2-D array with {n_rows} rows (one per codes row). "
            f"Got shape {array.shape} instead."
        )
    _check_finite(array, first_row=0)
    return array


def _check_finite(values: np.ndarray, first_row: int) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"values must be finite. Got {float(values[row, col])!r} at row {first_row + row}, value column "
            f"{col} instead; impute missing values before assembling."
        )


def _check_code_range(codes: np.ndarray, levels: np.ndarray) -> None:
    if codes.size == 0:
        return
    bad = (codes < 0) | (codes >= levels)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"codes in column {col} must be in [0, {levels[col]}). Got {codes[row, col]} "
            f"at row {row} instead."
        )


def _choose_index_dtype(index_dtype: Any, threshold: Any, nnz: int, n_features: int) -> Any:
    """``numpy.int32`` or ``numpy.int64``, the scalar type of the index arrays."""
    threshold = check_int(threshold, "int64_threshold", minimum=0, maximum=INT32_MAX)
    largest = max(nnz, n_features)
    if index_dtype is None:
        return np.int64 if largest > threshold else np.int32
    chosen = np.dtype(index_dtype)
    if chosen == np.int64:
        return np.int64
    if chosen == np.int32:
        if largest > INT32_MAX:
            raise ValueError(
                f"index_dtype must be int64 when nnz or n_features exceeds {INT32_MAX}. "
                f"Got int32 with nnz={nnz}, n_features={n_features} instead."
            )
        return np.int32
    raise ValueError(
        f"index_dtype must be None, numpy.int32 or numpy.int64. Got {index_dtype!r} instead."
    )


def write_libsvm(
    X: Any,
    y: Any,
    path: str | os.PathLike[str],
    *,
    zero_based: bool = True,
    comment: str | None = None,
) -> None:
    """Write a design matrix and labels in libsvm/svmlight text format.

    Parameters
    ----------
    X : scipy.sparse matrix or array-like of shape (n_rows, n_features)
        Features; stored entries are written as ``index:value`` pairs (explicit
        zeros are skipped by scikit-learn's writer only when ``X`` is dense).
    y : array-like of shape (n_rows,)
        Labels (e.g. 0/1 clicks), finite.
    path : str or path-like
        Output file, overwritten.
    zero_based : bool, default=True
        Column ids start at 0 (this package's convention) or at 1 (liblinear's).
    comment : str, optional
        Header comment (e.g. the feature space's version), written as ``# ...`` lines.

    Notes
    -----
    Writes through :func:`sklearn.datasets.dump_svmlight_file`, which prints values
    with 16 significant digits (a round trip can differ by one ulp; one-hot 1.0 and
    short dyadic values are exact). Read back with
    :func:`sklearn.datasets.load_svmlight_file` passing ``n_features`` (trailing
    empty columns are not recorded in the file) and the same ``zero_based``.
    """
    y_arr = np.asarray(y)
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if y_arr.ndim != 1 or y_arr.shape[0] != n_rows:
        raise ValueError(
            f"y must be a 1-D array with one label per row of X ({n_rows}). "
            f"Got shape {y_arr.shape} instead."
        )
    if y_arr.dtype.kind not in "biuf" or not np.isfinite(y_arr.astype(np.float64)).all():
        raise ValueError(
            f"y must hold finite numbers. Got dtype {y_arr.dtype} with non-finite or "
            "non-numeric labels instead."
        )
    dump_svmlight_file(X, y_arr, os.fspath(path), zero_based=zero_based, comment=comment)
