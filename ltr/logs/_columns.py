"""Checks that normalise one column of a log table: ids, timestamps, positions, scores.

Each check raises :class:`LogValidationError` naming the table, the column and the first
offending row (:func:`example_row`), and returns the normalised column where it converts one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.logs._contract import LogValidationError

__all__ = ["check_finite", "check_id", "check_optional_id", "check_positive_int", "example_row", "to_epoch_seconds"]

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


def _datetime_to_seconds(col: pd.Series) -> pd.Series:
    # Works for any datetime resolution (ns, us, s): floor-divide a Timedelta.
    return ((col.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype(np.int64)


def _text_to_seconds(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    """Text timestamps (CSV): all epoch numbers, or all ISO 8601 strings with an offset."""
    text = frame[column].astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        return pd.Series(np.floor(numeric.to_numpy(dtype=np.float64)).astype(np.int64), index=frame.index)
    has_offset = text.str.contains(_TZ_SUFFIX, regex=True).to_numpy()
    parsed = pd.to_datetime(text.where(has_offset), errors="coerce", utc=True, format="ISO8601")
    bad = (parsed.isna() & numeric.isna()).to_numpy()
    if not bad.any():
        bad = parsed.isna().to_numpy()
    if bad.any():
        raise LogValidationError(
            table, column,
            "timestamps must be numeric epoch seconds or timezone-aware datetimes "
            "(ISO strings need an offset such as +00:00; numbers and dates cannot be mixed).",
            example_row(frame, bad),
        )
    return _datetime_to_seconds(parsed)


def to_epoch_seconds(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    """A timestamp column as int64 epoch seconds (from numbers, aware datetimes or ISO text)."""
    col = frame[column].infer_objects()
    if pd.api.types.is_datetime64_any_dtype(col):
        if getattr(col.dt, "tz", None) is None:
            raise LogValidationError(
                table, column,
                "timestamps are naive datetimes; use epoch seconds or timezone-aware datetimes.",
                example_row(frame, _all(frame)),
            )
        null = col.isna().to_numpy()
        if null.any():
            raise LogValidationError(table, column, "missing timestamps.", example_row(frame, null))
        return _datetime_to_seconds(col)
    if pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, "timestamps must be numeric epoch seconds or datetimes, got booleans.",
                                 example_row(frame, _all(frame)))
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise LogValidationError(table, column, "missing or non-finite timestamps.", example_row(frame, bad))
        return pd.Series(np.floor(values).astype(np.int64), index=frame.index)
    if pd.api.types.is_string_dtype(col) or col.dtype == object:
        return _text_to_seconds(frame, table, column)
    raise LogValidationError(table, column, f"timestamps must be numeric or datetime, got dtype {col.dtype}.",
                             example_row(frame, _all(frame)))


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
