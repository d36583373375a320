"""Lazy package exports (PEP 562), shared by the ``ltr``, ``recall`` and ``eval`` packages.

Importing names on first use keeps ``python -m package.module`` from importing the module
twice, and keeps ``import ltr`` light for online code that only needs the ranker.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose public ``name`` lives in ``exports[name]``."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
