"""Which rows are flagged: the primary metric decides, the other metrics wait behind it.

The family-wise error rate of a readout is the chance that an A/A test flags anything. Seven
correlated metrics each tested at ``alpha`` flag at least one in about a quarter of A/A tests.
The rule here keeps the whole readout at ``alpha`` without weakening the primary metric
(fixed-sequence gatekeeping, as in clinical trials with a primary endpoint):

1. the primary metric is tested at ``alpha`` (Holm across treatments when there are several);
2. the other (secondary) metrics form one family adjusted by Holm (or Benjamini-Hochberg);
   a secondary row can only be flagged when the primary metric of its treatment is
   significant: its decisive adjusted p-value is ``max(p_primary_adjusted, p_family)``;
3. with ``adjust=None`` the secondary rows are exploratory: raw p-values, never flagged.

With one treatment this controls the family-wise error rate strongly at ``alpha``; with several
treatments each treatment's secondaries are opened by its own primary (the primary family is
Holm-adjusted), which is the usual practice but not a strict guarantee across treatments.

Intervals follow their p-values: a row whose p-value was multiplied by the adjustment (the
Holm factor ``p_family / p``) gets its interval at the level ``1 - alpha p / p_family``, so
the interval excludes 0 exactly when the family-adjusted p-value is below ``alpha``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.ab._stats import _adjusted

__all__ = ["Decision", "decide"]

# Status codes of Decision.status.
TESTED, GATED, EXPLORATORY, NOT_TESTED = 0, 1, 2, 3
STATUS_NAMES = ("tested", "gated", "exploratory", "not tested")


@dataclass(frozen=True)
class Decision:
    """Adjusted p-values, interval levels and flags of every row (arrays, rows on the last axis).

    Attributes
    ----------
    p_family : ndarray
        p-value adjusted within its family (primary rows: across treatments; secondary rows:
        across all secondary rows); the raw p-value for exploratory rows.
    p_adjusted : ndarray
        The decisive p-value: ``p_family`` for primary rows, ``max(primary, p_family)`` for
        secondary rows (NaN for exploratory rows, which are not tested).
    ci_alpha : ndarray
        Two-sided level of each row's interval (``alpha`` unadjusted).
    significant : ndarray of bool
        ``p_adjusted < alpha``.
    status : ndarray of int
        ``TESTED``, ``GATED`` (secondary, primary not significant), ``EXPLORATORY`` or
        ``NOT_TESTED`` (no p-value).
    """

    p_family: np.ndarray
    p_adjusted: np.ndarray
    ci_alpha: np.ndarray
    significant: np.ndarray
    status: np.ndarray


def _family(p: np.ndarray, members: np.ndarray, adjust: str | None) -> np.ndarray:
    """``p`` adjusted across the ``members`` columns (last axis); NaN elsewhere."""
    sub = np.where(members, p, np.nan)
    return _adjusted(sub, adjust)


def decide(p_values: np.ndarray, primary: np.ndarray, treatment: np.ndarray, adjust: str | None,
           alpha: float) -> Decision:
    """Flags of every row under the primary-metric gatekeeping rule of this module.

    Parameters
    ----------
    p_values : ndarray
        Raw p-values, rows on the last axis (leading axes: independent readouts, e.g. splits).
    primary : ndarray of bool
        Per row: is it the primary metric of its treatment.
    treatment : ndarray of int
        Per row: the index of its treatment.
    adjust : {"holm", "bh", None}
        Adjustment of the secondary family; None makes the secondary rows exploratory.
    alpha : float
    """
    p = np.asarray(p_values, dtype=np.float64)
    primary = np.asarray(primary, dtype=bool)
    treatment = np.asarray(treatment)
    p_primary = _family(p, primary, "holm")
    # The gate of each row: the adjusted primary p-value of its treatment.
    gate = np.full(p.shape, np.nan)
    for t in np.unique(treatment):
        rows = treatment == t
        gate[..., rows] = np.nanmin(np.where(primary & rows, p_primary, np.inf), axis=-1, keepdims=True)
    gate = np.where(np.isinf(gate), np.nan, gate)
    if adjust is None:
        p_secondary = np.where(primary, np.nan, p)
        p_decisive = np.where(primary, p_primary, np.nan)
    else:
        p_secondary = _family(p, ~primary, adjust)
        # np.maximum propagates NaN: no primary test closes the gate.
        p_decisive = np.where(primary, p_primary, np.maximum(gate, p_secondary))
    p_fam = np.where(primary, p_primary, p_secondary)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(p > 0, p_fam / p, np.nan)
    # p = 0 (an infinite z): no finite factor; the Bonferroni factor of the family bounds it.
    family_size = np.where(primary, np.count_nonzero(primary & ~np.isnan(p), axis=-1, keepdims=True),
                           np.count_nonzero(~primary & ~np.isnan(p), axis=-1, keepdims=True))
    factor = np.where(np.isfinite(factor), factor, np.maximum(family_size, 1))
    factor = np.where(np.isnan(p), 1.0, factor)  # no test, no adjustment
    if adjust is None:
        factor = np.where(primary, factor, 1.0)
    ci_alpha = alpha / np.maximum(factor, 1.0)
    significant = np.nan_to_num(p_decisive, nan=1.0) < alpha
    status = np.where(np.isnan(p), NOT_TESTED, TESTED)
    if adjust is None:
        status = np.where(~primary & ~np.isnan(p), EXPLORATORY, status)
    else:
        gated = ~primary & ~np.isnan(p) & ~(np.nan_to_num(gate, nan=1.0) < alpha)
        status = np.where(gated, GATED, status)
    return Decision(p_family=p_fam, p_adjusted=p_decisive, ci_alpha=ci_alpha, significant=significant,
                    status=status)
