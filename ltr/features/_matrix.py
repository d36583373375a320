"""The :class:`FeatureMatrix`, assembled from the feature blocks chunk by chunk.

A :class:`Layout` is the transform-time view of a fitted builder: its blocks in output
order, the fast binning of the binned continuous columns, the value columns and the column
space. :meth:`Layout.assemble` runs every block over row chunks and writes the CSR arrays
(and the dense values) in place; every value is computed row by row, so neither chunking
nor the per-day cache changes a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ltr.features._binning import BinCoder, QuantileBinner
from ltr.features._blocks import Batch, CategoricalBlock, ContinuousBlock
from ltr.features._day_tables import DayTableCache
from ltr.features._space import FeatureSpace
from ltr.features._sparse import RowBlockWriter
from ltr.features._tables import HistoryTables, cutoff

__all__ = ["FeatureMatrix", "Layout"]


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


@dataclass(frozen=True, eq=False)
class Layout:
    """How a fitted builder's blocks become the columns of a :class:`FeatureMatrix`.

    Parameters
    ----------
    continuous, categorical : tuple of blocks
        The feature blocks in output order.
    bin_coder : BinCoder
        Codes of the binned continuous columns.
    value_index : ndarray of intp
        Continuous columns also written raw into ``X``.
    space : FeatureSpace
        Column layout of ``X``.
    dense_names : tuple of str
        Column names of ``dense``: the continuous names, then ``"{name}:code"``.
    n_continuous, n_binned, n_categorical : int
        Column counts.
    lag_seconds : int or None
        The builder's cut-off rule.
    """

    continuous: tuple[ContinuousBlock, ...]
    categorical: tuple[CategoricalBlock, ...]
    bin_coder: BinCoder
    value_index: np.ndarray
    space: FeatureSpace
    dense_names: tuple[str, ...]
    n_continuous: int
    n_binned: int
    n_categorical: int
    lag_seconds: int | None

    @classmethod
    def build(
        cls,
        continuous: tuple[ContinuousBlock, ...],
        categorical: tuple[CategoricalBlock, ...],
        binner: QuantileBinner,
        binned_names: Sequence[str],
        space: FeatureSpace,
        lag_seconds: int | None,
    ) -> Layout:
        """The layout of fitted blocks, binner and space."""
        names = [name for block in continuous for name in block.names]
        position = {name: j for j, name in enumerate(names)}
        categorical_names = [name for block in categorical for name in block.names]
        return cls(
            continuous=continuous,
            categorical=categorical,
            bin_coder=BinCoder.from_binner(binner, [position[name] for name in binned_names], len(names)),
            value_index=np.array([position[n] for block in continuous for n in block.value_names], dtype=np.intp),
            space=space,
            dense_names=tuple(names) + tuple(f"{name}:code" for name in categorical_names),
            n_continuous=len(names),
            n_binned=len(binned_names),
            n_categorical=len(categorical_names),
            lag_seconds=lag_seconds,
        )

    def assemble(
        self,
        frame: Mapping[str, np.ndarray],
        tables: HistoryTables,
        cache: DayTableCache | None,
        dense: bool,
        chunk_size: int,
        continuous: Sequence[np.ndarray] | None = None,
        onehot: bool = True,
    ) -> FeatureMatrix:
        """Compute every block over ``frame`` chunk by chunk; write ``X`` (and ``dense``) in place.

        Parameters
        ----------
        frame : mapping of str -> ndarray
            The prepared frame of the rows.
        tables : HistoryTables
            What the point-in-time values are counted from.
        cache : DayTableCache or None
            Per-day tables to read counts from (day cut-offs only).
        dense : bool
            Also fill ``FeatureMatrix.dense``.
        chunk_size : int
            Rows per chunk.
        continuous : sequence of ndarray, optional
            The continuous columns of every row, already computed (``fit_transform``).
        onehot : bool, default=True
            Fill ``FeatureMatrix.X``; False leaves it with 0 columns (dense-only consumers).
        """
        n = frame["ts"].size
        n_cont, n_bin, n_cat = self.n_continuous, self.n_binned, self.n_categorical
        n_values = self.value_index.size
        writer = RowBlockWriter(n, self.space.n_levels, n_values, self.space.n_features) if onehot else None
        out_dense = np.empty((n, n_cont + n_cat), dtype=np.float64, order="F") if dense else np.empty((n, 0))
        scratch = None if dense else np.empty((min(n, chunk_size), n_cont), dtype=np.float64, order="F")
        # Row chunks keep the per-column work in cache and the float temporaries small.
        for start in range(0, n, chunk_size):
            rows = slice(start, min(start + chunk_size, n))
            sub = {name: arr[rows] for name, arr in frame.items()}
            end, span = cutoff(sub, self.lag_seconds)
            batch = Batch(sub, end, span, tables, cache)
            cont = out_dense[rows, :n_cont] if scratch is None else scratch[: rows.stop - start]
            if continuous is not None:
                for j, column in enumerate(continuous):
                    cont[:, j] = column[rows]
            else:
                j = 0
                for block in self.continuous:
                    for column in block.columns(batch):
                        cont[:, j] = column
                        j += 1
            codes = np.empty((rows.stop - start, n_bin + n_cat), dtype=np.int32, order="F")
            j = n_bin
            for cat in self.categorical:
                codes[:, j : j + len(cat.names)] = cat.codes(sub)
                j += len(cat.names)
            if writer is not None:
                self._write_onehot(writer, rows, cont, codes)
            if dense:
                out_dense[rows, n_cont:] = codes[:, n_bin:]
        return self._matrix(writer if onehot else None, out_dense, dense)

    def assemble_values(self, continuous: np.ndarray, categorical: np.ndarray, dense: bool,
                        onehot: bool = True) -> FeatureMatrix:
        """The matrix of rows whose continuous values and categorical codes are computed already.

        Parameters
        ----------
        continuous : ndarray of float64, shape (n_rows, n_continuous)
        categorical : ndarray of int32, shape (n_rows, n_categorical)
        dense : bool
            Also fill ``FeatureMatrix.dense``.
        onehot : bool, default=True
            Fill ``FeatureMatrix.X``.
        """
        n = continuous.shape[0]
        n_bin = self.n_binned
        writer = None
        if onehot:
            writer = RowBlockWriter(n, self.space.n_levels, self.value_index.size, self.space.n_features)
            codes = np.empty((n, n_bin + self.n_categorical), dtype=np.int32, order="F")
            codes[:, n_bin:] = categorical
            self._write_onehot(writer, slice(0, n), continuous, codes)
        out_dense = np.empty((n, 0))
        if dense:
            out_dense = np.empty((n, self.n_continuous + self.n_categorical), dtype=np.float64, order="F")
            out_dense[:, : self.n_continuous] = continuous
            out_dense[:, self.n_continuous :] = categorical
        return self._matrix(writer, out_dense, dense)

    def _write_onehot(self, writer: RowBlockWriter, rows: slice, cont: np.ndarray, codes: np.ndarray) -> None:
        """Bin ``cont`` into ``codes[:, :n_binned]`` (categorical codes are there already) and write
        the one-hot rows with the raw value columns (0 where NaN)."""
        if self.n_binned:
            self.bin_coder.codes_into(cont, codes[:, : self.n_binned])
        values = None
        if self.value_index.size:
            raw = cont[:, self.value_index]
            values = np.where(np.isnan(raw), 0.0, raw)
        writer.write(rows, codes, values)

    def _matrix(self, writer: RowBlockWriter | None, out_dense: np.ndarray, dense: bool) -> FeatureMatrix:
        n = out_dense.shape[0]
        return FeatureMatrix(
            X=writer.finish() if writer is not None else sp.csr_matrix((n, 0), dtype=np.float64),
            feature_names=list(self.space.feature_names) if writer is not None else [],
            dense=out_dense,
            dense_names=list(self.dense_names) if dense else [],
        )
