"""Input checks of the score-quality metrics: 1-D labels, scores, probabilities, group ids.

Every check raises in the project's one error shape (``"<name> must be ... Got ... instead."``,
``TypeError`` for the wrong kind, ``ValueError`` for a bad value) and names the first
offending row. Generic scalar checks live in :mod:`ltr._validation`; these are the ones
specific to metric inputs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "as_1d",
    "check_binary_labels",
    "check_group_ids",
    "check_labels_and_probabilities",
    "check_lengths",
    "check_probabilities",
    "check_scores",
    "show",
]


def show(value: object) -> str:
    """repr of a value as users typed it (2, not np.int64(2))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def as_1d(values: object, name: str) -> np.ndarray:
    """``values`` as a 1-D numpy array (a pandas Series or Index by its values)."""
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D. Got an array of shape {arr.shape} instead.")
    return arr


def check_lengths(n: int, **named: np.ndarray) -> None:
    """Every array in ``named`` has ``n`` rows (the length of ``y_true``)."""
    for name, arr in named.items():
        if arr.shape[0] != n:
            lengths = ", ".join(f"{k}={v.shape[0]}" for k, v in named.items())
            raise ValueError(
                f"{name} must have the same length as y_true ({n}). Got {lengths} instead."
            )


def check_binary_labels(values: object, name: str = "y_true") -> np.ndarray:
    """Return labels as a bool array; only bool or numeric 0/1 are accepted."""
    arr = as_1d(values, name)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must be non-empty. Got 0 rows instead.")
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be a bool or numeric array of 0/1 labels. Got dtype {arr.dtype} instead."
        )
    is_one = arr == 1
    bad = ~(is_one | (arr == 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must contain only 0 and 1. Got {show(arr[row])} at row {row} instead."
        )
    return is_one


def check_scores(values: object, name: str = "y_score") -> np.ndarray:
    """Return numeric scores without NaN, keeping float32/float64/int dtypes as they are."""
    arr = as_1d(values, name)
    if arr.dtype.kind == "b":
        return arr.astype(np.int8)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a numeric array. Got dtype {arr.dtype} instead.")
    if arr.dtype.kind == "f":
        if arr.dtype.itemsize < 4:
            arr = arr.astype(np.float32)  # exact widening; float16 has no fast sort
        elif arr.dtype.itemsize > 8:
            raise TypeError(
                f"{name} must be float32 or float64. Got dtype {arr.dtype} instead."
            )
        nan = np.isnan(arr)
        if nan.any():
            row = int(np.flatnonzero(nan)[0])
            raise ValueError(f"{name} must not contain NaN. Got NaN at row {row} instead.")
    return arr


def check_probabilities(values: object, name: str = "y_pred") -> np.ndarray:
    """Return float64 probabilities, each in [0, 1]."""
    arr = check_scores(values, name).astype(np.float64, copy=False)
    bad = (arr < 0.0) | (arr > 1.0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must contain probabilities in [0, 1]. "
            f"Got {show(arr[row])} at row {row} instead."
        )
    return arr


def check_labels_and_probabilities(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Labels (bool) and predicted probabilities (float64) of the same length."""
    is_pos = check_binary_labels(y_true)
    pred = check_probabilities(y_pred)
    check_lengths(is_pos.shape[0], y_pred=pred)
    return is_pos, pred


def check_group_ids(values: object, n: int, name: str = "groups") -> tuple[np.ndarray, int]:
    """Factorise group ids into dense int64 codes; missing ids are an error."""
    arr = values if isinstance(values, (pd.Series, pd.Index)) else as_1d(values, name)
    if getattr(arr, "ndim", 1) != 1:
        raise ValueError(f"{name} must be 1-D. Got an array of shape {arr.shape} instead.")
    if len(arr) != n:
        raise ValueError(
            f"{name} must have the same length as y_true ({n}). Got {len(arr)} instead."
        )
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    missing = codes < 0
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{name} must not contain missing ids. Got {show(np.asarray(arr, dtype=object)[row])} "
            f"at row {row} instead."
        )
    return codes.astype(np.int64, copy=False), len(uniques)
