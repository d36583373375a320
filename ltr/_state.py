"""Checks shared by the ``from_dict`` loaders of exported (JSON) component states."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def check_state(state: Any, fmt: str, version: int, keys: Iterable[str]) -> None:
    """Raise unless ``state`` is a dict of format ``fmt`` / ``version`` holding every key in ``keys``.

    Raises
    ------
    TypeError
        ``state`` is not a dict.
    ValueError
        Another format or version, or missing keys (named).
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict. Got {type(state).__name__} instead.")
    if state.get("format") != fmt or state.get("version") != version:
        raise ValueError(
            f"state must have format {fmt!r} version {version}. "
            f"Got format {state.get('format')!r} version {state.get('version')!r} instead."
        )
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"state must have keys {missing}. Got keys {sorted(state)} instead.")
