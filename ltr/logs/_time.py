"""Time inside the project: epoch-second timestamps, their units, and calendar days in a time zone.

Every timestamp inside the project is int64 epoch seconds (UTC). A *day* is an integer count of
calendar days since 1970-01-01 in a given time zone (UTC unless ``tz`` says otherwise), so
"strictly before the sample's day" is an integer comparison. :func:`day_index` is the one
implementation of "calendar day in a time zone": it goes through the local wall-clock date
(so DST changes are right) and never through a resolution-dependent integer view of
datetimes (pandas 3 gives ``datetime64[us]`` or ``[s]`` where pandas 2 gave ``[ns]``).

Logs arrive with numeric timestamps in some unit (epoch seconds, milliseconds ...): the unit is
given (:data:`TS_UNITS`), and values that are implausible in it are refused with the unit they
look like (:func:`likely_ts_unit`), instead of landing tens of thousands of years away.
"""
from __future__ import annotations

import datetime as _dt
import zoneinfo

import numpy as np
import pandas as pd

__all__ = [
    "PLAUSIBLE_SECONDS",
    "SECONDS_PER_DAY",
    "TS_UNITS",
    "as_day",
    "check_ts_unit",
    "check_tz",
    "day_index",
    "format_day",
    "likely_ts_unit",
    "local_seconds",
    "parse_day",
    "unit_name",
]

SECONDS_PER_DAY = 86_400
#: Up to this many timestamps, a non-UTC day index goes through :func:`local_seconds`.
_FEW_ROWS = 4096
#: Up to this many distinct instants, :func:`local_seconds` asks the zone rule one by one.
_FEW_INSTANTS = 64

#: Ticks per second of each numeric timestamp unit (``--ts-unit``).
TS_UNITS: dict[str, int] = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}

#: Plausible epoch seconds of a log: 2000-01-01 (inclusive) to 2100-01-01 (exclusive), UTC.
PLAUSIBLE_SECONDS: tuple[int, int] = (946_684_800, 4_102_444_800)


def check_tz(tz: object, name: str = "tz") -> str:
    """``tz`` as a valid IANA time zone name.

    Raises
    ------
    TypeError
        ``tz`` is not a string.
    ValueError
        No such time zone.
    """
    if not isinstance(tz, str):
        raise TypeError(f"{name} must be an IANA time zone name such as 'Asia/Shanghai'. Got {tz!r} instead.")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name} must be an IANA time zone name such as 'Asia/Shanghai'. Got {tz!r} instead."
        ) from None
    return tz


def check_ts_unit(unit: object, name: str = "ts_unit") -> str:
    """``unit`` as one of :data:`TS_UNITS` (``"s"``, ``"ms"``, ``"us"``, ``"ns"``).

    Raises
    ------
    ValueError
        Any other value.
    """
    if not isinstance(unit, str) or unit not in TS_UNITS:
        raise ValueError(f"{name} must be one of {list(TS_UNITS)}. Got {unit!r} instead.")
    return unit


def unit_name(unit: str) -> str:
    """``"ms"`` -> ``"milliseconds"``."""
    return _UNIT_NAMES[unit]


def likely_ts_unit(values: np.ndarray) -> str | None:
    """The unit in which the median of numeric epoch ``values`` is a plausible date, or None.

    The median, so a few broken rows (a zero, a sentinel) do not decide the answer.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return None
    middle = float(np.median(finite))
    low, high = PLAUSIBLE_SECONDS
    for unit, per_second in TS_UNITS.items():
        if low <= middle / per_second < high:
            return unit
    return None


def _utc_seconds(ts: np.ndarray | pd.Series | pd.Index) -> np.ndarray:
    """Epoch seconds (floored) of integer seconds or datetimes of any resolution."""
    if pd.api.types.is_datetime64_any_dtype(getattr(ts, "dtype", None)):
        stamps = pd.DatetimeIndex(ts)
        if stamps.tz is not None:
            stamps = stamps.tz_convert("UTC").tz_localize(None)
        # Whole seconds whatever the stored resolution (s, ms, us, ns): numpy floors on the cast.
        return stamps.to_numpy().astype("datetime64[s]").astype(np.int64)
    values = np.asarray(ts)
    if values.dtype.kind == "f":
        return np.floor(values).astype(np.int64)
    return values.astype(np.int64)


def day_index(ts: np.ndarray | pd.Series | pd.Index, tz: str = "UTC") -> np.ndarray:
    """Calendar day (days since 1970-01-01 in ``tz``) of each timestamp.

    Parameters
    ----------
    ts : array-like
        Epoch seconds (integers), or datetimes of any resolution (s, ms, us, ns): timezone-aware
        ones are instants, naive ``datetime64`` values are read as UTC.
    tz : str, default "UTC"
        IANA time zone name in which calendar days are counted (DST included).

    Returns
    -------
    numpy.ndarray of int32
        Equal to the days since 1970-01-01 of
        ``pd.to_datetime(ts, unit="s", utc=True).tz_convert(tz).normalize()``.
    """
    seconds = _utc_seconds(ts)
    if tz == "UTC":
        return np.floor_divide(seconds, SECONDS_PER_DAY).astype(np.int32)
    check_tz(tz)
    if seconds.size <= _FEW_ROWS and seconds.dtype.kind == "i":
        return np.floor_divide(local_seconds(seconds, tz), SECONDS_PER_DAY).astype(np.int32)
    local = pd.to_datetime(seconds, unit="s", utc=True).tz_convert(tz).tz_localize(None)
    # The local wall-clock date, floored to days by numpy whatever the datetime resolution.
    return local.to_numpy().astype("datetime64[D]").astype(np.int64).astype(np.int32)


def local_seconds(seconds: np.ndarray, tz: str) -> np.ndarray:
    """Epoch seconds shifted to ``tz``'s wall clock (DST included): ``// 86400`` is the local day.

    Parameters
    ----------
    seconds : ndarray of int64
        Epoch seconds.
    tz : str
        IANA time zone name.

    Returns
    -------
    ndarray of int64
        ``seconds`` plus the zone's UTC offset at each instant, so that
        ``local % 86400 // 3600`` is the local hour and ``local // 86400`` the local day, as
        ``pd.to_datetime(seconds, unit="s", utc=True).tz_convert(tz)`` gives them.
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    if tz == "UTC":
        return seconds
    check_tz(tz)
    instants, inverse = np.unique(seconds, return_inverse=True)
    offsets = _zone_offsets(instants, tz) if instants.size <= _FEW_INSTANTS else None
    if offsets is None:
        local = pd.to_datetime(instants, unit="s", utc=True).tz_convert(tz).tz_localize(None)
        offsets = local.to_numpy().astype("datetime64[s]").astype(np.int64) - instants
    return seconds + offsets[inverse.reshape(seconds.shape)]


def _zone_offsets(instants: np.ndarray, tz: str) -> np.ndarray | None:
    """UTC offsets by the zone's rule, instant by instant (None outside datetime's range)."""
    # A serving request has one or a few instants: this is cheaper than a pandas conversion
    # (~0.1 ms of overhead per call).
    zone = zoneinfo.ZoneInfo(tz)
    out = np.empty(instants.size, dtype=np.int64)
    try:
        for j, second in enumerate(instants.tolist()):
            offset = _dt.datetime.fromtimestamp(second, zone).utcoffset()
            out[j] = int(offset.total_seconds()) if offset is not None else 0
    except (OverflowError, OSError, ValueError):
        return None
    return out


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
