"""Exact AUC and per-group AUC kernels behind :func:`ltr.metrics.auc` and :func:`ltr.metrics.gauc`.

Inputs are already checked (bool labels, numeric scores without NaN, dense group codes);
the public functions in :mod:`ltr.metrics._auc` document the definitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["auc_counts", "auc_exact", "group_auc_exact", "group_twice_u_counts"]

_UINT32_SIGN = np.uint32(0x80000000)
_UINT64_SIGN = np.uint64(0x8000000000000000)


def _narrow_to_float32(scores: np.ndarray) -> np.ndarray:
    """float64 scores that float32 holds exactly, as float32 (sorts ~1.5x faster)."""
    if scores.dtype != np.float64:
        return scores
    with np.errstate(over="ignore"):  # out-of-range values become inf and fail the test
        as32 = scores.astype(np.float32)
    return as32 if np.array_equal(as32, scores) else scores


def auc_exact(is_pos: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with half credit for ties; NaN when a class is missing.

    Sorting the two classes separately costs about one sort of all rows, and a
    sorted query array makes ``searchsorted`` cache friendly, which beats an
    argsort of all scores by about 2x.
    """
    scores = _narrow_to_float32(scores)
    pos = np.sort(scores[is_pos])
    neg = np.sort(scores[~is_pos])
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")
    below_or_equal = np.searchsorted(neg, pos, side="right")
    # Integer sums are exact: twice the U statistic fits int64 for any n < 3e9.
    twice_u = int(below.sum(dtype=np.int64)) + int(below_or_equal.sum(dtype=np.int64))
    return twice_u / (2.0 * pos.size * neg.size)


def _mono32(values: np.ndarray) -> np.ndarray:
    """Map float32 to uint32 with the same order; -0.0 and 0.0 map to one key."""
    values = values + np.float32(0.0)  # IEEE: -0.0 + 0.0 == +0.0
    bits = values.view(np.uint32)
    negative = (bits & _UINT32_SIGN) != 0
    return np.where(negative, ~bits, bits | _UINT32_SIGN)


def _mono64(values: np.ndarray) -> np.ndarray:
    """Map float64 or 64-bit integers to uint64 with the same order and ties."""
    if values.dtype.kind == "f":
        values = values.astype(np.float64, copy=False) + 0.0  # merge -0.0 into +0.0
        bits = values.view(np.uint64)
        negative = (bits & _UINT64_SIGN) != 0
        return np.where(negative, ~bits, bits | _UINT64_SIGN)
    if values.dtype.kind == "i":
        return values.astype(np.int64, copy=False).view(np.uint64) ^ _UINT64_SIGN
    return values.astype(np.uint64, copy=False)


def _score_keys(scores: np.ndarray, budget: int) -> tuple[np.ndarray, int, np.ndarray | None, int]:
    """Order-preserving uint64 keys below ``2**bits`` with ``bits <= budget``.

    Returns ``(keys, bits, exact, shift)``. Float32-exact scores map to exact 32-bit
    keys. Other scores use their 64-bit order key minus its minimum (exact whenever the
    range fits ``budget`` bits, e.g. integers); when it does not, ``keys = exact >> shift``
    keeps the top ``budget`` bits: ``s1 < s2`` still implies ``key1 <= key2``, but two
    distinct scores may share a key, so ``exact`` and ``shift`` (else None and 0) let the
    caller check for such collisions.
    This avoids an argsort, which costs about twice a plain sort.
    """
    scores = _narrow_to_float32(scores)
    if scores.dtype == np.float32 and budget >= 32:
        return _mono32(scores).astype(np.uint64), 32, None, 0
    exact = _mono64(scores)
    low = exact.min()
    offset = exact - low
    width = max(int(offset.max()).bit_length(), 1)
    shift = max(width - budget, 0)
    keys = offset >> np.uint64(shift) if shift else offset
    return keys, width - shift, (offset if shift else None), shift


def _truncation_merges_scores(exact: np.ndarray, shift: int) -> bool:
    """Whether two distinct exact keys share their truncated key (``>> shift``)."""
    ordered = np.sort(exact)
    distinct = ordered[1:] != ordered[:-1]
    shifted = ordered >> np.uint64(shift)
    return bool(np.any(distinct & (shifted[1:] == shifted[:-1])))


def _dense_rank_keys(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ranks (0 = lowest) as uint64: exact at the price of one argsort."""
    order = np.argsort(scores)
    ordered = scores[order]
    step = np.empty(ordered.size, dtype=np.uint64)
    step[0] = 0
    np.not_equal(ordered[1:], ordered[:-1], out=step[1:], casting="unsafe")
    dense = np.cumsum(step)
    keys = np.empty_like(dense)
    keys[order] = dense
    return keys, max(int(dense[-1]).bit_length(), 1)


def _twice_u_by_group(
    packed: np.ndarray, is_pos: np.ndarray, g_pos: np.ndarray, g_neg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Twice the per-group U statistic, and the packed keys where a pos and a neg tie.

    ``packed`` holds (group, score key) in one uint64. Positives and negatives are
    sorted separately and each positive's lower and equal negatives counted with
    ``searchsorted``; subtracting the negatives of earlier groups leaves the counts
    within the positive's own group.
    """
    pos_keys = np.sort(packed[is_pos])
    neg_keys = np.sort(packed[~is_pos])
    below = np.searchsorted(neg_keys, pos_keys, side="left")
    below_or_equal = np.searchsorted(neg_keys, pos_keys, side="right")
    neg_start = np.concatenate(([0], np.cumsum(g_neg)[:-1]))
    pos_start = np.concatenate(([0], np.cumsum(g_pos)[:-1]))
    twice_u = np.add.reduceat(below + below_or_equal, pos_start) - 2 * g_pos * neg_start
    tied = pos_keys[below_or_equal > below]
    tied_keys = tied[np.concatenate(([True], tied[1:] != tied[:-1]))] if tied.size else tied
    return twice_u, tied_keys


def _ties_are_exact(
    packed: np.ndarray, exact: np.ndarray, shift: int, tied_keys: np.ndarray
) -> bool:
    """Whether all rows sharing a tied packed key also share their exact score key.

    Only such rows can turn a truncated tie into a wrong half credit. A few tied keys
    are looked up by hashing (no sort of all rows); with many, one sort first checks
    whether truncation merged any two distinct scores at all.
    """
    if tied_keys.size == 0:
        return True
    if tied_keys.size * 64 > packed.size and not _truncation_merges_scores(exact, shift):
        return True
    rows = pd.Series(packed, copy=False).isin(tied_keys).to_numpy()
    sub_packed, sub_exact = packed[rows], exact[rows]
    order = np.lexsort((sub_exact, sub_packed))
    sub_packed, sub_exact = sub_packed[order], sub_exact[order]
    same_key = sub_packed[1:] == sub_packed[:-1]
    return not bool(np.any(same_key & (sub_exact[1:] != sub_exact[:-1])))


def group_auc_exact(
    is_pos: np.ndarray, scores: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group exact AUC. Returns (n_rows, n_pos, auc) per group; auc NaN if one class."""
    n_rows = np.bincount(codes, minlength=n_groups)
    n_pos = np.bincount(codes[is_pos], minlength=n_groups)
    n_neg = n_rows - n_pos
    used = (n_pos > 0) & (n_neg > 0)
    auc = np.full(n_groups, np.nan)
    if not used.any():
        return n_rows, n_pos, auc

    # Most users in click logs have no click; dropping their rows first shrinks the sorts.
    keep = used[codes]
    if not keep.all():
        is_pos, scores, codes = is_pos[keep], scores[keep], codes[keep]
    used_ids = np.flatnonzero(used)
    compact = np.full(n_groups, -1, dtype=np.int64)
    compact[used_ids] = np.arange(used_ids.size)
    group_key = compact[codes].astype(np.uint64)
    g_pos, g_neg = n_pos[used_ids], n_neg[used_ids]

    group_bits = int(used_ids.size - 1).bit_length()
    keys, bits, exact, shift = _score_keys(scores, 64 - group_bits)
    packed = keys | (group_key << np.uint64(bits))
    twice_u, tied_keys = _twice_u_by_group(packed, is_pos, g_pos, g_neg)
    # A truncated key can only err by calling two distinct scores a tie, so the
    # result is exact unless such a tie was counted.
    if exact is not None and not _ties_are_exact(packed, exact, shift, tied_keys):
        keys, bits = _dense_rank_keys(scores)
        packed = keys | (group_key << np.uint64(bits))
        twice_u, _ = _twice_u_by_group(packed, is_pos, g_pos, g_neg)
    auc[used_ids] = twice_u / (2.0 * g_pos * g_neg)
    return n_rows, n_pos, auc


def auc_counts(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Mann-Whitney AUC with half credit for ties from positive and negative counts per
    distinct score, in ascending score order; NaN when a class is missing.

    Each positive at a score beats the negatives at lower scores and ties those at its own:
    ``2U = sum_k pos_k (2 neg_below_k + neg_k)``, in integers (exact).
    """
    pos = np.asarray(positives, dtype=np.int64)
    neg = np.asarray(negatives, dtype=np.int64)
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    twice_u = int(np.dot(pos, 2 * below + neg))
    return twice_u / (2.0 * n_pos * n_neg)


def group_twice_u_counts(codes: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """Twice the per-group U statistic from counts per (group, distinct score), the rows
    sorted by group code (every code from 0 up present) then ascending score (int64, exact)."""
    pos = np.asarray(positives, dtype=np.int64)
    neg = np.asarray(negatives, dtype=np.int64)
    cum = np.cumsum(neg)
    first = np.concatenate(([True], codes[1:] != codes[:-1]))
    # Negatives of the earlier groups, subtracted so the running count restarts per group.
    offset = np.maximum.accumulate(np.where(first, cum - neg, 0))
    below = cum - neg - offset
    return np.add.reduceat(pos * (2 * below + neg), np.flatnonzero(first)) if pos.size else pos
