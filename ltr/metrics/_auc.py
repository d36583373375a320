"""ROC AUC and group AUC, exact, with half credit for tied scores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ltr._validation import check_choice
from ltr.metrics._auc_kernels import auc_exact, group_auc_exact
from ltr.metrics._checks import check_binary_labels, check_group_ids, check_lengths, check_scores
from ltr.metrics._warnings import warn_undefined

__all__ = ["GroupAUC", "auc", "gauc"]

_GAUC_WEIGHTS = ("exposures", "positives")


@dataclass(frozen=True)
class GroupAUC:
    """Result of :func:`gauc`.

    Attributes
    ----------
    value : float
        Weighted mean of the per-group AUCs; NaN when no group has both classes.
    n_groups_used : int
        Groups with at least one positive and one negative row.
    n_groups_skipped : int
        Groups with a single class (their AUC is undefined); they carry no weight.
    weight : str
        ``"exposures"`` (rows per group) or ``"positives"`` (positive rows per group).
    """

    value: float
    n_groups_used: int
    n_groups_skipped: int
    weight: str

    def __float__(self) -> float:
        return float(self.value)


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve, exactly, with half credit for tied scores.

    ``AUC = (#{(p, n): s_p > s_n} + 0.5 * #{(p, n): s_p == s_n}) / (n_pos * n_neg)`` over
    all pairs of a positive row ``p`` and a negative row ``n``: the Mann-Whitney U
    statistic, equal to ``sklearn.metrics.roc_auc_score``. Computed in O(n log n) by
    sorting each class once; the arithmetic is in integers, so the result is exact up to
    the final division.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels: bool, or numbers equal to 0 or 1.
    y_score : array-like of shape (n,)
        Scores, higher = more likely positive. Any numeric dtype; no NaN. Only the order
        matters (float32 input is sorted as float32, which is faster).

    Returns
    -------
    float
        The AUC in [0, 1]; NaN with a :class:`MetricWarning` when ``y_true`` has one class.

    Raises
    ------
    ValueError
        Empty input, different lengths, labels other than 0/1, NaN scores.
    TypeError
        Non-numeric input.

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    is_pos = check_binary_labels(y_true)
    scores = check_scores(y_score)
    check_lengths(is_pos.shape[0], y_score=scores)
    value = auc_exact(is_pos, scores)
    if np.isnan(value):
        warn_undefined("auc is undefined when y_true has a single class; returning NaN.")
    return value


def gauc(
    y_true: ArrayLike,
    y_score: ArrayLike,
    groups: ArrayLike,
    weight: Literal["exposures", "positives"] = "exposures",
) -> GroupAUC:
    """Group AUC: per-group (usually per-user) AUC, averaged with group weights.

    For each group ``g`` with both classes, ``AUC_g`` is :func:`auc` on the group's rows
    (ties get half credit). The result is ``sum_g w_g * AUC_g / sum_g w_g`` where

    * ``weight="exposures"`` (default): ``w_g`` = number of rows of ``g`` (its exposures,
      as in FuxiCTR's impression-weighted GAUC);
    * ``weight="positives"``: ``w_g`` = number of positive rows of ``g`` (as in RecBole).

    Groups with a single class have no AUC; they are skipped, get no weight, and are
    counted in ``n_groups_skipped``. Each ``AUC_g`` is exact (integer pair counts); the
    whole runs in O(n log n) by sorting the rows keyed by (group, score) once per class.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels: bool, or numbers equal to 0 or 1.
    y_score : array-like of shape (n,)
        Scores, higher = more likely positive; no NaN.
    groups : array-like of shape (n,)
        Group id of each row (e.g. ``user_id``); any hashable values, no missing ids.
    weight : {"exposures", "positives"}, default="exposures"
        Group weight, see above.

    Returns
    -------
    GroupAUC
        ``value`` (NaN with a :class:`MetricWarning` when no group has both classes),
        ``n_groups_used``, ``n_groups_skipped``, ``weight``.

    Raises
    ------
    ValueError
        Empty input, different lengths, labels other than 0/1, NaN scores, missing group
        ids, unknown ``weight``.

    Examples
    --------
    >>> r = gauc([0, 1, 0, 1, 1], [0.2, 0.9, 0.5, 0.1, 0.3], ["a", "a", "b", "b", "c"])
    >>> (r.value, r.n_groups_used, r.n_groups_skipped)
    (0.5, 2, 1)
    """
    check_choice(weight, "weight", _GAUC_WEIGHTS)
    is_pos = check_binary_labels(y_true)
    scores = check_scores(y_score)
    n = is_pos.shape[0]
    check_lengths(n, y_score=scores)
    codes, n_groups = check_group_ids(groups, n)
    n_rows, n_pos, group_auc = group_auc_exact(is_pos, scores, codes, n_groups)
    used = ~np.isnan(group_auc)
    n_used = int(used.sum())
    if n_used == 0:
        warn_undefined("gauc is undefined when no group has both classes; returning NaN.")
        value = float("nan")
    else:
        w = (n_rows if weight == "exposures" else n_pos)[used]
        # fsum is correctly rounded, so the value does not depend on the group order.
        value = math.fsum(w * group_auc[used]) / float(w.sum())
    return GroupAUC(
        value=value, n_groups_used=n_used, n_groups_skipped=n_groups - n_used, weight=weight
    )
