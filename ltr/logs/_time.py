"""Calendar-day arithmetic on epoch seconds.

Every timestamp inside the project is int64 epoch seconds (UTC). A *day* is an integer
count of calendar days since 1970-01-01 in a given time zone (UTC unless ``tz`` says
otherwise), so "strictly before the sample's day" is an integer comparison.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

__all__ = ["SECONDS_PER_DAY", "as_day", "day_index", "format_day", "parse_day"]

SECONDS_PER_DAY = 86_400


def day_index(ts: np.ndarray | pd.Series, tz: str = "UTC") -> np.ndarray:
    """Calendar day (days since 1970-01-01 in ``tz``) of epoch-second timestamps.

    Parameters
    ----------
    ts : array-like of int64
        Epoch seconds.
    tz : str, default "UTC"
        IANA time zone name in which calendar days are counted.

    Returns
    -------
    numpy.ndarray of int32
    """
    ts = np.asarray(ts, dtype=np.int64)
    if tz == "UTC":
        return np.floor_divide(ts, SECONDS_PER_DAY).astype(np.int32)
    local = pd.to_datetime(ts, unit="s", utc=True).tz_convert(tz).tz_localize(None)
    return np.floor_divide(local.asi8, SECONDS_PER_DAY * 10**9).astype(np.int32)


def parse_day(text: str, name: str = "date") -> int:
    """Parse ``YYYY-MM-DD`` into a day index; raise ValueError naming ``name`` otherwise."""
    try:
        date = _dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a date like 2026-01-31. Got {text!r} instead.") from None
    return (date - _dt.date(1970, 1, 1)).days


def as_day(value: int | str, name: str = "day") -> int:
    """A day index from a ``YYYY-MM-DD`` string or an int day index.

    Raises
    ------
    TypeError
        ``value`` is neither a string nor an integer (bools are refused).
    ValueError
        A string that is not a ``YYYY-MM-DD`` date.
    """
    if isinstance(value, str):
        return parse_day(value, name)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise TypeError(f"{name} must be a 'YYYY-MM-DD' string or a day index. Got {value!r} instead.")


def format_day(day: int) -> str:
    """Inverse of :func:`parse_day`."""
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=int(day))).isoformat()
