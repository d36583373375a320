"""Argument checks with one error shape, shared by ``ltr``, ``recall`` and ``eval``.

Every check raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value
of the right kind outside its range, with the message ``"<name> must be <what>. Got <value>
instead."`` (scikit-learn's shape), so callers and tests can rely on one wording.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any, TypeVar

import numpy as np
import pandas as pd

__all__ = ["check_bool", "check_choice", "check_float", "check_frame", "check_int"]

T = TypeVar("T")


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low is None or low_open else "["
    right = ")" if high is None or high_open else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int, checked to lie in ``[minimum, maximum]``.

    Raises
    ------
    TypeError
        ``value`` is not an integer (bools are refused).
    ValueError
        ``value`` is outside the interval.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int. Got {value!r} instead.")
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        interval = _interval(minimum, maximum, False, False)
        raise ValueError(f"{name} must be an int in {interval}. Got {value!r} instead.")
    return number


def check_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite Python float, checked to lie in the interval ``low .. high``.

    ``low_open`` / ``high_open`` exclude the bound itself.

    Raises
    ------
    TypeError
        ``value`` is not a real number (bools are refused).
    ValueError
        ``value`` is not finite or is outside the interval.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float. Got {value!r} instead.")
    number = float(value)
    below = low is not None and (number < low or (low_open and number == low))
    above = high is not None and (number > high or (high_open and number == high))
    if not math.isfinite(number) or below or above:
        interval = _interval(low, high, low_open, high_open)
        raise ValueError(f"{name} must be a float in {interval}. Got {value!r} instead.")
    return number


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a Python bool; ``TypeError`` for anything else (0 and 1 included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool. Got {value!r} instead.")
    return bool(value)


def check_choice(value: T, name: str, choices: Collection[T]) -> T:
    """``value`` unchanged when it is one of ``choices``; ``ValueError`` naming them otherwise."""
    if value not in choices:
        options = ", ".join(sorted(repr(c) for c in choices))
        raise ValueError(f"{name} must be one of [{options}]. Got {value!r} instead.")
    return value


def check_frame(frame: Any, name: str, columns: Collection[str] = ()) -> pd.DataFrame:
    """``frame`` when it is a DataFrame holding every column in ``columns``.

    Raises
    ------
    TypeError
        ``frame`` is not a pandas DataFrame.
    ValueError
        A column is missing (all missing ones are named).
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame. Got {type(frame).__name__} instead.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} must have columns {list(columns)}. Got {list(frame.columns)} instead "
                         f"(missing {missing}).")
    return frame
