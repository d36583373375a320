"""Comparison of a result with a golden file's numbers (``fixtures/expected/``)."""
from __future__ import annotations

import math
from typing import Any


def assert_close(got: Any, exp: Any, path: str = "readout") -> None:
    """Exact for counts, strings, flags and None; rel 1e-9 for floats; ``path`` names the first
    difference."""
    if isinstance(exp, dict):
        assert isinstance(got, dict) and set(got) == set(exp), f"{path}: keys {sorted(got)} != {sorted(exp)}"
        for key in exp:
            assert_close(got[key], exp[key], f"{path}.{key}")
    elif isinstance(exp, list):
        assert isinstance(got, list) and len(got) == len(exp), f"{path}: length {len(got)} != {len(exp)}"
        for i, (g, e) in enumerate(zip(got, exp, strict=True)):
            assert_close(g, e, f"{path}[{i}]")
    elif isinstance(exp, float):
        assert isinstance(got, float), f"{path}: {got!r} is not a float"
        assert math.isclose(got, exp, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {got!r} != {exp!r}"
    else:
        assert type(got) is type(exp) and got == exp, f"{path}: {got!r} != {exp!r}"
