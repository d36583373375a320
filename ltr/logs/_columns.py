"""Checks that normalise one column of a log table: ids, timestamps, positions, scores.

Each check raises :class:`LogValidationError` naming the table, the column and the first
offending row (:func:`example_row`), and returns the normalised column where it converts one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.logs._contract import LogValidationError
from ltr.logs._time import PLAUSIBLE_SECONDS, TS_UNITS, likely_ts_unit, unit_name

__all__ = [
    "check_finite",
    "check_id",
    "check_optional_id",
    "check_positive_int",
    "example_row",
    "normalise_category",
    "to_epoch_ns",
    "to_epoch_seconds",
]

_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


def example_row(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> dict:
    """The first row of ``frame`` where ``mask`` holds, as ``{"row": index, column: value ...}``."""
    idx = int(np.flatnonzero(np.asarray(mask))[0])
    out: dict = {"row": idx}
    for col in frame.columns:
        # Column by column, so an int id is not shown as a float because of its neighbours.
        val = frame[col].iloc[idx]
        out[str(col)] = val.item() if hasattr(val, "item") else val
    return out


def _all(frame: pd.DataFrame) -> np.ndarray:
    return np.ones(len(frame), bool)


def check_id(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    """An id column as int64 or str; NaN, booleans, floats and mixed types are refused."""
    col = frame[column].infer_objects()
    null = col.isna().to_numpy()
    if null.any():
        raise LogValidationError(table, column, f"{int(null.sum())} row(s) have a missing (NaN) id.",
                                 example_row(frame, null))
    if pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, "ids must be integers or strings, got booleans.",
                                 example_row(frame, _all(frame)))
    if pd.api.types.is_float_dtype(col):
        values = col.to_numpy()
        frac = values != np.round(values)
        if frac.any():
            raise LogValidationError(table, column, "ids must be integers or strings, got non-integral floats.",
                                     example_row(frame, frac))
        raise LogValidationError(
            table, column,
            "ids must be integers or strings, got floats (a CSV id column with blanks reads as float; fix the blanks).",
            example_row(frame, _all(frame)),
        )
    if pd.api.types.is_integer_dtype(col):
        return col.astype(np.int64)
    if pd.api.types.is_string_dtype(col) or col.dtype == object:
        return _object_id(frame, col, table, column)
    raise LogValidationError(table, column, f"ids must be integers or strings, got dtype {col.dtype}.",
                             example_row(frame, _all(frame)))


def _object_id(frame: pd.DataFrame, col: pd.Series, table: str, column: str) -> pd.Series:
    is_str = col.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if is_str.all():
        return col.astype(str)
    is_int = col.map(lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)).to_numpy(dtype=bool)
    if is_int.all():
        return col.astype(np.int64)
    bad = ~is_str if is_str.any() else ~is_int
    if bad.any():
        raise LogValidationError(table, column, "ids must all be integers or all be strings; found mixed types.",
                                 example_row(frame, bad))
    return col.astype(str)


def check_optional_id(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    """An id column that may be missing on some rows: nullable ``Int64`` or object strings."""
    present = frame[column].notna().to_numpy()
    if present.all():
        return check_id(frame, table, column)
    sub = frame.loc[present]
    col = sub[column]
    if pd.api.types.is_float_dtype(col):
        # Parquet/CSV turn an int column with blanks into floats; accept integral values.
        frac = (col != np.round(col)).to_numpy()
        if frac.any():
            raise LogValidationError(table, column, "ids must be integers or strings, got non-integral floats.",
                                     example_row(sub, frac))
        return frame[column].astype("Int64")
    checked = check_id(sub, table, column)
    if pd.api.types.is_integer_dtype(checked):
        return frame[column].astype("Int64")
    return frame[column].astype(object).where(present, None)


_NS_PER_SECOND = 1_000_000_000


def _datetime_to_ns(frame: pd.DataFrame, table: str, column: str, col: pd.Series) -> np.ndarray:
    """Epoch nanoseconds of aware datetimes of any resolution (ns, us, ms, s), in 2000..2100."""
    low, high = (pd.Timestamp(bound, unit="s", tz="UTC") for bound in PLAUSIBLE_SECONDS)
    outside = ((col < low) | (col >= high)).to_numpy()
    if outside.any():
        raise LogValidationError(
            table, column,
            f"{int(outside.sum()):,d} timestamp(s) lie outside 2000-01-01..2100-01-01 (datetimes made from epoch "
            "numbers with the wrong unit do this: check the unit= of pd.to_datetime).",
            example_row(frame, outside),
        )
    naive_utc = col.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns")
    return naive_utc.to_numpy().astype(np.int64)


def _check_plausible(frame: pd.DataFrame, table: str, column: str, values: np.ndarray, unit: str) -> None:
    """Numeric epochs must lie in 2000..2100 in ``unit``; else name the unit they look like."""
    seconds = values / TS_UNITS[unit]
    low, high = PLAUSIBLE_SECONDS
    outside = ~((seconds >= low) & (seconds < high))
    if not outside.any():
        return
    guess = likely_ts_unit(values)
    if guess is not None and guess != unit:
        hint = f"these look like {unit_name(guess)}: pass --ts-unit {guess} (ts_unit={guess!r} in Python)."
    elif guess == unit:
        hint = f"the other rows look like epoch {unit_name(unit)}; these rows are broken."
    else:
        hint = "these are not epoch timestamps in seconds, milliseconds, microseconds or nanoseconds."
    raise LogValidationError(
        table, column,
        f"{int(outside.sum()):,d} timestamp(s) lie outside 2000-01-01..2100-01-01 when read as epoch "
        f"{unit_name(unit)}; {hint}",
        example_row(frame, outside),
    )


def _numbers_to_ns(frame: pd.DataFrame, table: str, column: str, values: np.ndarray, unit: str) -> np.ndarray:
    """Epoch nanoseconds of plausible numeric epochs in ``unit`` (exact for integers)."""
    _check_plausible(frame, table, column, values, unit)
    per_second = TS_UNITS[unit]
    if values.dtype.kind in "iu":
        return values.astype(np.int64) * (_NS_PER_SECOND // per_second)
    # Floats: sub-tick fractions are dropped (floor), like the integer path.
    return np.floor(values.astype(np.float64) * (_NS_PER_SECOND / per_second)).astype(np.int64)


def _text_to_ns(frame: pd.DataFrame, table: str, column: str, unit: str) -> np.ndarray:
    """Text timestamps (CSV): all epoch numbers, or all ISO 8601 strings with an offset."""
    text = frame[column].astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        values = numeric.to_numpy()
        return _numbers_to_ns(frame, table, column, values, unit)
    has_offset = text.str.contains(_TZ_SUFFIX, regex=True).to_numpy()
    parsed = pd.to_datetime(text.where(has_offset), errors="coerce", utc=True, format="ISO8601")
    bad = (parsed.isna() & numeric.isna()).to_numpy()
    if not bad.any():
        bad = parsed.isna().to_numpy()
    if bad.any():
        raise LogValidationError(
            table, column,
            "timestamps must be numeric epochs or timezone-aware datetimes "
            "(ISO strings need an offset such as +00:00 or Z; numbers and dates cannot be mixed).",
            example_row(frame, bad),
        )
    return _datetime_to_ns(frame, table, column, parsed)


def to_epoch_ns(frame: pd.DataFrame, table: str, column: str, unit: str = "s") -> np.ndarray:
    """A timestamp column as int64 epoch nanoseconds, the exact order of the input kept.

    Accepted: numbers (epoch ``unit``: ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``; values that are
    not a date in 2000..2100 in that unit are refused, naming the unit they look like), aware
    datetimes of any resolution, and text holding either (ISO strings need an offset). Naive
    datetimes are refused whatever the ``tz`` of calendar days: the clock of a log and the zone
    in which its days are counted are different facts, and guessing one from the other would
    shift every timestamp by the zone's offset without a word.
    """
    col = frame[column].infer_objects()
    if pd.api.types.is_datetime64_any_dtype(col):
        if getattr(col.dt, "tz", None) is None:
            raise LogValidationError(
                table, column,
                "timestamps are naive datetimes (no time zone); use epoch numbers, timezone-aware datetimes "
                "(pandas: .dt.tz_localize('Asia/Shanghai')) or ISO strings with an offset.",
                example_row(frame, _all(frame)),
            )
        null = col.isna().to_numpy()
        if null.any():
            raise LogValidationError(table, column, "missing timestamps.", example_row(frame, null))
        return _datetime_to_ns(frame, table, column, col)
    if pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, "timestamps must be numeric epochs or datetimes, got booleans.",
                                 example_row(frame, _all(frame)))
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise LogValidationError(table, column, "missing or non-finite timestamps.", example_row(frame, bad))
        exact = col.to_numpy(dtype=np.int64) if pd.api.types.is_integer_dtype(col) else values
        return _numbers_to_ns(frame, table, column, exact, unit)
    if pd.api.types.is_string_dtype(col) or col.dtype == object:
        return _text_to_ns(frame, table, column, unit)
    raise LogValidationError(table, column, f"timestamps must be numeric or datetime, got dtype {col.dtype}.",
                             example_row(frame, _all(frame)))


def to_epoch_seconds(frame: pd.DataFrame, table: str, column: str, unit: str = "s") -> pd.Series:
    """A timestamp column as int64 epoch seconds (floored); accepts what :func:`to_epoch_ns` accepts."""
    ns = to_epoch_ns(frame, table, column, unit)
    return pd.Series(np.floor_divide(ns, _NS_PER_SECOND), index=frame.index)


def check_positive_int(frame: pd.DataFrame, table: str, column: str, minimum: int) -> pd.Series:
    """An integer column (positions, ranks) with every value ``>= minimum``, as int64."""
    col = frame[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, f"must be integers >= {minimum}, got dtype {col.dtype}.",
                                 example_row(frame, _all(frame)))
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < minimum)
    if bad.any():
        raise LogValidationError(table, column, f"{int(bad.sum())} row(s) are not integers >= {minimum}.",
                                 example_row(frame, bad))
    return pd.Series(values.astype(np.int64), index=frame.index)


def normalise_category(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    """A category column as strings (object dtype), missing categories kept as NaN.

    Integers become their decimal text, integral floats too (a CSV integer column with blanks
    reads as floats: 39.0 is category "39"); a missing category stays missing, it is never
    turned into a made-up string. Booleans are refused.
    """
    col = frame[column]
    present = col.notna().to_numpy()
    if pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, "categories must be strings or integers, got booleans.",
                                 example_row(frame, _all(frame)))
    values = col[present]
    if pd.api.types.is_float_dtype(values):
        integral = (values == np.round(values)).to_numpy()
        text = values.astype(str)
        text[integral] = values[integral].astype(np.int64).astype(str)
    else:
        text = values.astype(str)
    out = np.full(len(col), np.nan, dtype=object)
    out[present] = text.to_numpy(dtype=object)
    return pd.Series(out, index=frame.index, dtype=object)


def check_finite(frame: pd.DataFrame, table: str, column: str) -> None:
    """A numeric column (scores) with no missing or infinite value."""
    col = frame[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, f"must be numeric, got dtype {col.dtype}.",
                                 example_row(frame, _all(frame)))
    bad = ~np.isfinite(col.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        raise LogValidationError(table, column, f"{int(bad.sum())} row(s) are missing or not finite.",
                                 example_row(frame, bad))
