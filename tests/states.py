"""Comparison of two fitted components by their exported state (``to_state``)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np


def assert_same_state(a: Any, b: Any) -> None:
    """``a.to_state()`` and ``b.to_state()`` hold the same metadata and bit-identical arrays."""
    meta_a, arrays_a = a.to_state()
    meta_b, arrays_b = b.to_state()
    assert json.dumps(meta_a, sort_keys=True, default=str) == json.dumps(meta_b, sort_keys=True, default=str)
    assert sorted(arrays_a) == sorted(arrays_b)
    for name, value in arrays_a.items():
        assert value.dtype == arrays_b[name].dtype, name
        assert np.array_equal(value, arrays_b[name], equal_nan=value.dtype.kind == "f"), name
