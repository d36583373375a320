"""Argument checks particular to recall sources (the generic ones live in :mod:`ltr._validation`)."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from ltr._validation import check_frame

__all__ = ["REQUEST_COLUMNS", "check_requests", "check_train_end_day", "id_array"]

#: Columns every ``requests`` frame handed to ``retrieve`` must have.
REQUEST_COLUMNS = ("request_id", "user_id", "ts")


def check_requests(requests: Any) -> pd.DataFrame:
    """``requests`` with a fresh 0..n-1 index, once it holds :data:`REQUEST_COLUMNS` and unique ids.

    Raises
    ------
    TypeError
        ``requests`` is not a DataFrame.
    ValueError
        A column is missing, or a request id repeats (one list per request).
    """
    check_frame(requests, "requests", REQUEST_COLUMNS)
    dup = requests["request_id"].duplicated().to_numpy()
    if dup.any():
        raise ValueError(f"requests must have unique request_id. Got {int(dup.sum())} duplicate(s), e.g. "
                         f"request_id {requests['request_id'].to_numpy()[dup][0]!r}, instead.")
    return requests.reset_index(drop=True)


def check_train_end_day(value: Any) -> int:
    """The last training day as an int (days since epoch); ``TypeError`` for anything else."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"train_end_day must be an int (days since epoch). Got {value!r} instead.")
    return int(value)


def id_array(values: Any) -> np.ndarray:
    """Ids in an npz-safe dtype: int64 for integer ids, unicode for string ids.

    Raises
    ------
    TypeError
        Ids that are neither all integers nor all strings (never converted silently).
    """
    arr = np.asarray(values)
    if arr.size == 0 or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    if arr.dtype.kind in ("U", "O", "T") and all(isinstance(v, str) for v in arr.tolist()):
        return arr.astype(str)
    raise TypeError(f"item ids must be integers or strings. Got dtype {arr.dtype} instead.")
