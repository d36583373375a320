"""Input checks of the candidate-list metrics: cut-offs, candidate lists and target pairs.

Messages follow the project's one error shape (``"<name> must be ... Got ... instead."``);
type and column presence go through :func:`ltr._validation.check_frame`.
"""
from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral

import numpy as np
import pandas as pd

from ltr._validation import check_frame, check_int
from ltr.metrics._checks import show

__all__ = ["check_candidates", "check_ks", "check_targets"]


def check_ks(k: int | Iterable[int]) -> np.ndarray:
    """Sorted distinct cut-offs as int64; each must be an int >= 1."""
    if isinstance(k, (Integral, np.integer)) and not isinstance(k, (bool, np.bool_)):
        values: list[object] = [k]
    elif isinstance(k, (str, bytes)) or not isinstance(k, Iterable):
        raise TypeError(f"k must be an int in [1, inf) or a sequence of them. Got {show(k)} instead.")
    else:
        values = list(k)
        if not values:
            raise ValueError(
                f"k must be an int in [1, inf) or a non-empty sequence of them. Got {show(k)} instead."
            )
    return np.unique(np.asarray([check_int(v, "k", minimum=1) for v in values], dtype=np.int64))


def _check_no_missing(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    for column in columns:
        na = frame[column].isna().to_numpy()
        if na.any():
            row = frame.index[int(np.flatnonzero(na)[0])]
            raise ValueError(
                f"{name}[{column!r}] must not contain missing values. "
                f"Got a missing value at index {show(row)} instead."
            )


def _check_unique(frame: pd.DataFrame, name: str, columns: list[str], hint: str) -> None:
    dup = frame.duplicated(subset=columns, keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = frame.iloc[rows[0]]
        values = ", ".join(f"{c}={show(first[c])}" for c in columns)
        twins = frame.index[rows[:2]].tolist()
        raise ValueError(
            f"{name} must have one row per ({', '.join(columns)}). Got duplicate ({values}) "
            f"at index {show(twins[0])} and {show(twins[1])} instead. {hint}"
        )


def check_candidates(candidates: object, rank_col: str) -> pd.DataFrame:
    """A candidate-list frame: ids without missing values, integer ranks >= 1, unique pairs."""
    cols = ["request_id", "item_id", rank_col]
    frame = check_frame(candidates, "candidates", cols)
    _check_no_missing(frame, "candidates", cols)
    rank = frame[rank_col]
    if not pd.api.types.is_integer_dtype(rank.dtype) or pd.api.types.is_bool_dtype(rank.dtype):
        raise TypeError(
            f"candidates[{rank_col!r}] must be an integer column (1 = best). "
            f"Got dtype {rank.dtype} instead."
        )
    low = rank.to_numpy() < 1
    if low.any():
        row = int(np.flatnonzero(low)[0])
        raise ValueError(
            f"candidates[{rank_col!r}] must be >= 1 (1 = best). Got {show(rank.iloc[row])} "
            f"at index {show(frame.index[row])} instead."
        )
    _check_unique(frame, "candidates", ["request_id", "item_id"], "Deduplicate the lists first.")
    _check_unique(frame, "candidates", ["request_id", rank_col], "Each position holds one item.")
    return frame


def check_targets(targets: object) -> pd.DataFrame:
    """A target-pair frame: at least one row, ids without missing values, unique pairs."""
    cols = ["request_id", "item_id"]
    frame = check_frame(targets, "targets", cols)
    _check_no_missing(frame, "targets", cols)
    if len(frame) == 0:
        raise ValueError("targets must have at least one row. Got 0 rows instead.")
    _check_unique(
        frame,
        "targets",
        cols,
        "Drop repeated clicks first: targets.drop_duplicates(['request_id', 'item_id']).",
    )
    return frame
