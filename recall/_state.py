"""Namespacing of component states that share one npz file of an artifact.

Components hand out un-prefixed arrays (``to_state() -> (meta, arrays)``); the artifact that
stores several of them in one npz puts each under its own prefix, ``"<prefix>.<name>"``.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["under_prefix", "with_prefix"]


def with_prefix(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` renamed ``"<prefix>.<name>"``."""
    return {f"{prefix}.{name}": value for name, value in arrays.items()}


def under_prefix(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays named ``"<prefix>.<name>"``, as ``name`` (the inverse of :func:`with_prefix`)."""
    head = f"{prefix}."
    return {name[len(head):]: value for name, value in arrays.items() if name.startswith(head)}
