"""Column names seen at ``fit`` (``feature_names_in_``): how messages name a column, how state keeps them.

Shared by :class:`~ltr.features.QuantileBinner` and :class:`~ltr.features.CategoryEncoder`,
which follow scikit-learn: the names exist only when ``fit`` got a DataFrame with string
column names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["column_label", "names_from_state", "names_to_state"]


def column_label(estimator: Any, j: int) -> str:
    """How messages name column ``j``: its quoted name, or ``x{j}`` without names."""
    names = getattr(estimator, "feature_names_in_", None)
    return repr(str(names[j])) if names is not None else f"x{j}"


def names_to_state(estimator: Any) -> list[str] | None:
    """The fitted column names as JSON (None without names)."""
    names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def names_from_state(estimator: Any, names: list[str] | None, n_features: int) -> None:
    """Set ``feature_names_in_`` from :func:`names_to_state` output, checking the count."""
    if names is None:
        return
    array = np.asarray(names, dtype=object)
    if array.shape != (n_features,):
        raise ValueError(f"meta['feature_names_in'] must have {n_features} names. Got {array.tolist()!r} instead.")
    estimator.feature_names_in_ = array
