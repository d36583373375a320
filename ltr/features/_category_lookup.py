"""Code of each value among a categorical column's kept levels: the look-up behind ``CategoryEncoder``.

A :class:`CategoryLookup` is built once per fitted column and answers with the level's code, or
-1 for a value that is not a kept level (the encoder then gives it the unknown or the missing
code). Three equivalent ways, chosen by speed: a binary search over float64 levels when every
level is a number float64 holds exactly, a dict for string levels and a few thousand values (a
serving request), and a pandas object index otherwise. All compare by Python equality.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CategoryLookup"]

#: Integers up to this magnitude are exact in float64 (the binary search compares floats).
_EXACT_INT = 2**53
#: Most rows looked up by dict for string levels (beyond, a pandas index is faster).
_DICT_ROWS = 4096


class CategoryLookup:
    """Codes of values among ``levels`` (code = position in ``levels``; -1 when not a level).

    Parameters
    ----------
    levels : list
        The kept levels of one column, plain Python values.
    """

    def __init__(self, levels: list[Any]):
        # Built once, so look-ups (also of single online rows) are cheap and never mutate anything.
        self._index = pd.Index(levels, dtype=object)
        self._numeric = _numeric_lookup(levels)
        self._strings = ({level: code for code, level in enumerate(levels)}
                         if levels and all(isinstance(v, str) for v in levels) else None)

    def __call__(self, values: np.ndarray, kind: str) -> np.ndarray:
        """Code of each value (-1: not a level, missing values included).

        Parameters
        ----------
        values : ndarray
            One column's values.
        kind : {"number", "str", "empty"}
            What the values hold (``CategoryEncoder._check_kind``).
        """
        found = None
        if self._numeric is not None and values.dtype.kind in "iuf":
            found = _numeric_indexer(self._numeric, values)
        if found is None and self._strings is not None and kind == "str" and values.size <= _DICT_ROWS:
            get = self._strings.get
            found = np.fromiter((get(v, -1) for v in values.tolist()), dtype=np.intp, count=values.size)
        if found is None:
            # An explicit object index skips pandas' type inference of the target (which would
            # build a string array per call); look-ups are by Python equality and hash either way.
            target = pd.Index(values, dtype=object, copy=False) if values.dtype == object else values
            found = self._index.get_indexer(target)
        return found


def _numeric_lookup(categories: list[Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted float64 levels and their codes, when every level is a number float64 holds exactly.

    Python compares ``2 == 2.0`` by value and so does float64 for integers up to 2**53,
    so a binary search over these floats finds exactly the levels the object index finds.
    """
    if not categories:
        return None
    for c in categories:
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            return None
        if isinstance(c, int) and abs(c) > _EXACT_INT:
            return None
    levels = np.array(categories, dtype=np.float64)
    order = np.argsort(levels, kind="stable")
    return levels[order], order.astype(np.int64)


def _numeric_indexer(lookup: tuple[np.ndarray, np.ndarray], values: np.ndarray) -> np.ndarray | None:
    """Codes of numeric ``values`` (-1 unseen; NaN gets -1 too), or None to fall back."""
    if values.dtype.kind in "iu":
        if values.size and (values.max() > _EXACT_INT or values.min() < -_EXACT_INT):
            return None
        as_float = values.astype(np.float64)
    elif values.dtype.itemsize == 8:
        as_float = values
    else:
        return None
    levels, codes = lookup
    pos = np.searchsorted(levels, as_float)
    np.minimum(pos, levels.size - 1, out=pos)
    return np.where(levels[pos] == as_float, codes[pos], -1)
