"""Checks of :class:`~ltr.features.FeatureBuilder`'s parameters, and their JSON form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ltr._validation import check_bool, check_choice, check_int
from ltr.features._plan import FORBIDDEN, KEY_FAMILIES, NOT_CONTEXT

__all__ = ["check_params", "params_from_state", "params_to_state"]

PRIOR_METHODS = ("moments", "mle")


def check_params(params: Mapping[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first bad parameter (``get_params()`` output)."""
    windows = _sequence(params["windows"])
    if not windows or any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1 for w in windows):
        raise ValueError(f"windows must be a non-empty tuple of ints >= 1. Got {params['windows']!r} instead.")
    if len(set(windows)) != len(windows):
        raise ValueError(f"windows must not repeat a window. Got {params['windows']!r} instead.")
    key_families = _sequence(params["key_families"])
    if key_families is None:
        raise TypeError(f"key_families must be a tuple of str. Got {params['key_families']!r} instead.")
    for name in key_families:
        check_choice(name, "key_families", KEY_FAMILIES)
    extra_keys = _sequence(params["extra_keys"])
    if extra_keys is None:
        raise TypeError(f"extra_keys must be a tuple of tuples of str. Got {params['extra_keys']!r} instead.")
    for key in extra_keys:
        columns = _sequence(key)
        if not columns or not all(isinstance(c, str) for c in columns):
            raise TypeError(f"extra_keys must be a tuple of tuples of str. Got {key!r} instead.")
        _check_not_forbidden(columns, "extra_keys must not use", key)
    check_int(params["n_bins"], "n_bins", minimum=2)
    check_int(params["min_count"], "min_count", minimum=1)
    check_int(params["history_len"], "history_len", minimum=1)
    if params["lag_seconds"] is not None:
        check_int(params["lag_seconds"], "lag_seconds", minimum=0)
    check_choice(params["prior_method"], "prior_method", PRIOR_METHODS)
    if params["categorical"] is not None:
        categorical = _sequence(params["categorical"])
        if categorical is None:
            raise TypeError(f"categorical must be a tuple of str or None. Got {params['categorical']!r} instead.")
        _check_not_forbidden(categorical, "categorical must not include", params["categorical"])
    if params["context"] is not None:
        if params["categorical"] is not None:
            raise ValueError(
                "context must be None when categorical is given (categorical lists every categorical "
                f"feature). Got context={params['context']!r} and categorical={params['categorical']!r} instead."
            )
        context = _str_sequence(params["context"], "context")
        _check_not_forbidden(context, "context must not include", params["context"])
        ids = [c for c in context if c in NOT_CONTEXT]
        if ids:
            raise ValueError(
                f"context must not include ids, times, labels or the online ranker's outputs {list(NOT_CONTEXT)}. "
                f"Got {ids} in {params['context']!r} instead."
            )
    _str_sequence(params["exclude"], "exclude")
    check_int(params["max_levels"], "max_levels", minimum=1)
    check_int(params["default_position"], "default_position")
    for name in ("all_history", "ids", "cross_keys", "recency"):
        check_bool(params[name], name)
    check_int(params["id_min_count"], "id_min_count", minimum=1)
    for name in ("item_keys", "frozen_families", "outcome_families"):
        if params[name] is not None:
            _str_sequence(params[name], name)
    _str_sequence(params["outcomes"], "outcomes")


def params_to_state(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON (tuples as lists, numpy ints as ints)."""
    out = dict(params)
    out["windows"] = [int(w) for w in params["windows"]]
    out["key_families"] = list(params["key_families"])
    out["extra_keys"] = [list(k) for k in params["extra_keys"]]
    out["categorical"] = None if params["categorical"] is None else list(params["categorical"])
    out["context"] = None if params["context"] is None else list(params["context"])
    out["exclude"] = list(params["exclude"])
    for name in ("item_keys", "frozen_families", "outcome_families"):
        out[name] = None if params[name] is None else list(params[name])
    out["outcomes"] = list(params["outcomes"])
    return out


def params_from_state(params: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments from :func:`params_to_state` output (lists back to tuples)."""
    out = dict(params)
    out["windows"] = tuple(out["windows"])
    out["key_families"] = tuple(out["key_families"])
    out["extra_keys"] = tuple(tuple(k) for k in out["extra_keys"])
    for name in ("categorical", "context"):
        if out.get(name) is not None:
            out[name] = tuple(out[name])
    out["exclude"] = tuple(out.get("exclude", ()))
    for name in ("item_keys", "frozen_families", "outcome_families"):
        if out.get(name) is not None:
            out[name] = tuple(out[name])
    out["outcomes"] = tuple(out.get("outcomes", ()))
    return out


def _sequence(value: Any) -> Sequence[Any] | None:
    """``value`` when it is a sequence other than a string, else None."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return None
    return value


def _str_sequence(value: Any, name: str) -> Sequence[str]:
    """``value`` when it is a sequence of str (not a str itself), else ``TypeError``."""
    items = _sequence(value)
    if items is None or not all(isinstance(c, str) for c in items):
        raise TypeError(f"{name} must be a tuple of str. Got {value!r} instead.")
    return items


def _check_not_forbidden(columns: Sequence[str], what: str, got: Any) -> None:
    for col in columns:
        if col in FORBIDDEN:
            raise ValueError(f"{what} {col!r}: the A/B bucket is never a feature. Got {got!r} instead.")
