"""Checks of the exposure-level ``samples`` (and ``pre_samples``) frames the A/B functions read.

Type and column presence go through :func:`ltr._validation.check_frame`; the rest (missing
ids, 0/1 labels, integer days, string buckets) names an example row.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ltr._validation import check_frame
from ltr.metrics._checks import show

__all__ = ["PRE_REQUIRED", "REQUIRED", "check_samples", "example_row", "known_buckets"]

REQUIRED = ("request_id", "user_id", "bucket", "click", "order", "day")
PRE_REQUIRED = ("user_id", "click", "order", "day")


def example_row(frame: pd.DataFrame, mask: np.ndarray, column: str) -> str:
    """``row <index> has <column>=<value>`` for the first row where ``mask`` holds."""
    pos = int(np.flatnonzero(mask)[0])
    return f"row {show(frame.index[pos])} has {column}={show(frame[column].iloc[pos])}"


def _check_not_missing(frame: pd.DataFrame, name: str, column: str) -> None:
    na = frame[column].isna().to_numpy()
    if na.any():
        raise ValueError(
            f"{name}.{column} must not be missing. Got a missing value instead: "
            f"{example_row(frame, na, column)}."
        )


def _check_labels(frame: pd.DataFrame, name: str) -> None:
    for col in ("click", "order"):
        if not pd.api.types.is_numeric_dtype(frame[col].dtype):
            raise TypeError(
                f"{name}.{col} must be a 0/1 integer column. Got dtype {frame[col].dtype} instead."
            )
        bad = ~frame[col].isin([0, 1]).to_numpy()
        if bad.any():
            raise ValueError(
                f"{name}.{col} must be 0 or 1. Got another value instead: "
                f"{example_row(frame, bad, col)}."
            )


def _check_bucket_strings(frame: pd.DataFrame, name: str) -> None:
    col = frame["bucket"]
    values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else col
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        raise TypeError(
            f"{name}.bucket must hold strings. Got dtype {col.dtype} "
            f"(first value {show(col.iloc[0])}) instead."
        )


def check_samples(frame: object, name: str, required: Sequence[str]) -> pd.DataFrame:
    """``frame`` when it is a non-empty samples frame with valid ``required`` columns."""
    data = check_frame(frame, name, required)
    if len(data) == 0:
        raise ValueError(f"{name} must have at least one row. Got an empty frame instead.")
    for col in ("request_id", "user_id", "bucket"):
        if col in required:
            _check_not_missing(data, name, col)
    _check_labels(data, name)
    if not pd.api.types.is_integer_dtype(data["day"].dtype):
        raise TypeError(
            f"{name}.day must be an integer column (days since epoch). "
            f"Got dtype {data['day'].dtype} instead."
        )
    _check_not_missing(data, name, "day")
    if "bucket" in required:
        _check_bucket_strings(data, name)
    return data


def known_buckets(samples: pd.DataFrame) -> list[str]:
    """Sorted bucket names of ``samples``, unused categories of a categorical column included."""
    col = samples["bucket"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return sorted(str(c) for c in col.cat.categories)
    return sorted(str(b) for b in pd.unique(col))
