"""Column layout of a design matrix: named one-hot blocks, then real-valued columns.

:class:`FeatureSpace` names every column of a :func:`~ltr.features.codes_to_csr` matrix
(``"item_ctr_7d=bin3"``, ``"device=<unk>"``, ``"cosine_recent_clicks"``) and finds the column
or block of a name, so a model's weights can be read by feature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from ltr.artifacts import check_state
from ltr.features._sparse import INT32_MAX, codes_to_csr

__all__ = ["FeatureSpace"]

_FORMAT = "ltr.FeatureSpace"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureSpace:
    """Column layout of a design matrix: one-hot blocks then real-valued columns.

    Parameters
    ----------
    code_features : sequence of str
        Name of each code column, e.g. ``"item_ctr_7d"``, ``"category"``.
    levels : sequence of sequence of str
        Level names per code column, in code order, e.g. ``["bin0", ..., "<nan>"]``
        or ``["bags", "shoes", "<unk>"]`` (``get_level_names()`` of the transformers).
    value_features : sequence of str, default=()
        Names of the real-valued columns, in order.

    Notes
    -----
    Column ``offsets[j] + code`` is named ``f"{code_features[j]}={levels[j][code]}"``;
    value columns keep their own names. Names must be unique across the space.

    Examples
    --------
    >>> space = FeatureSpace(["category"], [["bags", "shoes", "<unk>"]], ["cosine"])
    >>> space.feature_names
    ('category=bags', 'category=shoes', 'category=<unk>', 'cosine')
    >>> space.column_index("category=<unk>")
    2
    """

    code_features: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    value_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        code_features = _str_tuple(self.code_features, "code_features")
        value_features = _str_tuple(self.value_features, "value_features")
        if isinstance(self.levels, (str, bytes)) or not isinstance(self.levels, Sequence):
            raise TypeError(
                f"levels must be a sequence of sequences of str. Got {self.levels!r} instead."
            )
        levels = tuple(_str_tuple(lv, f"levels[{j}]") for j, lv in enumerate(self.levels))
        if len(levels) != len(code_features):
            raise ValueError(
                f"levels must have one list per code feature ({len(code_features)}). "
                f"Got {len(levels)} instead."
            )
        empty = [code_features[j] for j, lv in enumerate(levels) if not lv]
        if empty:
            raise ValueError(
                f"levels must be non-empty for every code feature. Got none for {empty!r} instead."
            )
        object.__setattr__(self, "code_features", code_features)
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "value_features", value_features)
        seen: set[str] = set()
        for name in self.feature_names:
            if name in seen:
                raise ValueError(
                    f"feature names must be unique. Got {name!r} more than once instead; rename "
                    "the feature or the level."
                )
            seen.add(name)

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        """Name of every matrix column, in column order."""
        onehot = [
            f"{name}={level}" for name, lv in zip(self.code_features, self.levels, strict=True) for level in lv
        ]
        return tuple(onehot) + self.value_features

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.feature_names)}

    @property
    def n_levels(self) -> np.ndarray:
        """Code space size per code column (int64 array)."""
        return np.array([len(lv) for lv in self.levels], dtype=np.int64)

    @property
    def offsets(self) -> np.ndarray:
        """First matrix column of each code column's block (int64 array)."""
        n_levels = self.n_levels
        return np.concatenate(([0], np.cumsum(n_levels)[:-1])).astype(np.int64)[: n_levels.size]

    @property
    def n_features(self) -> int:
        """Total number of matrix columns."""
        return len(self.feature_names)

    def column_index(self, name: str) -> int:
        """Matrix column of a feature name such as ``"category=shoes"``.

        Parameters
        ----------
        name : str
            A name from :attr:`feature_names`.

        Returns
        -------
        index : int
            Its column.
        """
        try:
            return self._positions[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"name must be a feature name of this space. Got {name!r} instead."
            ) from None

    def block(self, feature: str) -> slice:
        """Column slice of one code feature's one-hot block.

        Parameters
        ----------
        feature : str
            One of :attr:`code_features`.

        Returns
        -------
        columns : slice
            ``slice(offset, offset + n_levels)``.
        """
        if feature not in self.code_features:
            raise ValueError(
                f"feature must be one of the code features {list(self.code_features)[:20]}. "
                f"Got {feature!r} instead."
            )
        j = self.code_features.index(feature)
        start = int(self.offsets[j])
        return slice(start, start + len(self.levels[j]))

    def to_csr(
        self,
        codes: Any,
        values: Any = None,
        *,
        index_dtype: Any = None,
        int64_threshold: int = INT32_MAX,
        dtype: Any = np.float64,
    ) -> sp.csr_matrix:
        """Assemble rows in this space with :func:`codes_to_csr`.

        Parameters
        ----------
        codes : array-like of int, shape (n_rows, len(code_features))
            Codes per code feature, in ``code_features`` order.
        values : array-like of float, shape (n_rows, len(value_features)), optional
            Real-valued columns in ``value_features`` order.
        index_dtype, int64_threshold, dtype
            As in :func:`codes_to_csr`.

        Returns
        -------
        X : scipy.sparse.csr_matrix of shape (n_rows, n_features)
            Columns aligned with :attr:`feature_names`.
        """
        if values is None and self.value_features:
            raise ValueError(
                f"values must be given for the value features {list(self.value_features)}. "
                "Got None instead."
            )
        if values is not None:
            shape = np.shape(values)
            if len(shape) != 2 or shape[1] != len(self.value_features):
                raise ValueError(
                    f"values must have {len(self.value_features)} columns "
                    f"({list(self.value_features)}). Got shape {shape} instead."
                )
        return codes_to_csr(
            codes,
            self.n_levels,
            values,
            n_features=self.n_features,
            index_dtype=index_dtype,
            int64_threshold=int64_threshold,
            dtype=dtype,
        )

    @classmethod
    def from_transformers(
        cls, *transformers: Any, value_features: Sequence[str] = ()
    ) -> FeatureSpace:
        """Build the space of fitted transformers' outputs, concatenated in order.

        Parameters
        ----------
        *transformers
            Fitted objects with ``get_feature_names_out()`` and ``get_level_names()``,
            such as :class:`~ltr.binning.QuantileBinner` and
            :class:`~ltr.encoding.CategoryEncoder`; their ``transform`` outputs,
            ``numpy.hstack``-ed in the same order, are the ``codes`` of :meth:`to_csr`.
        value_features : sequence of str, default=()
            Names of real-valued columns appended after the blocks.

        Returns
        -------
        space : FeatureSpace
            The combined layout.
        """
        names: list[str] = []
        levels: list[list[str]] = []
        for i, transformer in enumerate(transformers):
            if not (
                hasattr(transformer, "get_feature_names_out")
                and hasattr(transformer, "get_level_names")
            ):
                raise TypeError(
                    f"transformers[{i}] must have get_feature_names_out() and "
                    f"get_level_names(). Got {type(transformer).__name__} instead."
                )
            names.extend(str(n) for n in transformer.get_feature_names_out())
            levels.extend(transformer.get_level_names())
        return cls(tuple(names), tuple(tuple(lv) for lv in levels), tuple(value_features))

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export as JSON-serialisable metadata (no arrays needed).

        Returns
        -------
        meta : dict
            ``format``, ``version``, ``code_features``, ``levels``, ``value_features``.
        arrays : dict
            Empty.
        """
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "code_features": list(self.code_features),
            "levels": [list(lv) for lv in self.levels],
            "value_features": list(self.value_features),
        }
        return meta, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> FeatureSpace:
        """Rebuild from :meth:`to_state` output.

        Parameters
        ----------
        meta : dict
            As returned by :meth:`to_state` (possibly after a JSON round trip).
        arrays : mapping of str -> ndarray
            As returned by :meth:`to_state` (unused).

        Returns
        -------
        space : FeatureSpace
            Equal to the exported space.
        """
        check_state(meta, _FORMAT, _FORMAT_VERSION, ("code_features", "levels", "value_features"))
        return cls(
            tuple(meta["code_features"]),
            tuple(tuple(lv) for lv in meta["levels"]),
            tuple(meta["value_features"]),
        )


def _str_tuple(items: Any, name: str) -> tuple[str, ...]:
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of str. Got {items!r} instead.")
    items = tuple(items)
    bad = [x for x in items if not isinstance(x, str)]
    if bad:
        raise TypeError(
            f"{name} must hold only str. Got {bad[0]!r} ({type(bad[0]).__name__}) instead."
        )
    return items
