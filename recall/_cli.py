"""Shared command-line plumbing for ``recall.train`` and ``recall.retrieve``."""
from __future__ import annotations

import inspect
from typing import Any


def parse_settings(cls: type, pairs: list[str]) -> dict[str, Any]:
    """Turn ``["epochs=3", "dim=32"]`` into constructor keywords of ``cls``, typed by its defaults.

    Raises
    ------
    ValueError
        Unknown parameter names (the known ones are listed) or values of the wrong type.
    """
    params = inspect.signature(cls.__init__).parameters
    known = {name: p.default for name, p in params.items() if name != "self"}
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set must look like name=value. Got {pair!r} instead.")
        name, text = pair.split("=", 1)
        if name not in known:
            raise ValueError(f"--set {name}: {cls.__name__} has no parameter {name!r}; known: {sorted(known)}.")
        default = known[name]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value: Any = text.lower() in ("true", "1")
            elif isinstance(default, int):
                value = int(text)
            elif isinstance(default, float):
                value = float(text)
            elif isinstance(default, tuple):
                value = tuple(type(default[0])(v) if default else v for v in text.split(","))
            else:
                value = text
        except ValueError:
            raise ValueError(f"--set {name} must be a {type(default).__name__}. Got {text!r} instead.") from None
        out[name] = value
    return out
