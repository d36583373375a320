"""Components stored inside one artifact share one set of arrays, namespaced by prefix.

Every stored component speaks ``to_state() -> (meta, arrays)`` and
``from_state(meta, arrays)`` with un-prefixed array names; the owner that stores several
components in one ``npz`` puts each one's arrays under its own prefix (``"stats.0."``,
``"items."`` ...) with :func:`export_state` and reads them back with :func:`import_state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import numpy as np

__all__ = ["Stateful", "export_state", "import_state"]

T = TypeVar("T", bound="Stateful")


class Stateful(Protocol):
    """Anything with the project's persistence vocabulary."""

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...

    @classmethod
    def from_state(cls: type[T], meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> T: ...


def export_state(component: Stateful, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Add ``component``'s arrays to ``arrays`` under ``prefix``; return its metadata.

    ``prefix`` should end with a separator (``"."``) so that no prefix is the start of another.
    """
    meta, own = component.to_state()
    arrays.update({prefix + name: value for name, value in own.items()})
    return meta


def import_state(cls: type[T], meta: dict[str, Any], prefix: str, arrays: Mapping[str, np.ndarray]) -> T:
    """``cls.from_state`` of the metadata and of the arrays stored under ``prefix``."""
    own = {name[len(prefix):]: value for name, value in arrays.items() if name.startswith(prefix)}
    return cls.from_state(meta, own)
