"""Sample-ratio-mismatch test: are the units split between buckets as designed?"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval.ab._stats import _chi2_goodness_of_fit
from ltr._validation import check_float

__all__ = ["SRM_THRESHOLD", "SRMResult", "srm_test"]

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio-mismatch chi-square test.

    Attributes
    ----------
    chi2 : float
        Pearson chi-square statistic of the unit counts against the expected split.
    p_value : float
        Its p-value with ``n_buckets - 1`` degrees of freedom.
    flagged : bool
        True when ``p_value < threshold`` (0.001 by default): the split is not to be trusted.
    """

    chi2: float
    p_value: float
    flagged: bool


def _observed(counts_by_bucket: object) -> tuple[dict, np.ndarray]:
    if not isinstance(counts_by_bucket, (Mapping, pd.Series)):
        raise TypeError(
            "counts_by_bucket must be a mapping or a pandas Series. "
            f"Got {type(counts_by_bucket).__name__} instead."
        )
    counts = dict(counts_by_bucket.items())
    if len(counts) < 2:
        raise ValueError(
            f"counts_by_bucket must have at least two buckets. Got {list(counts)} instead."
        )
    obs = np.array([counts[b] for b in counts], dtype=np.float64)
    if not np.all(np.isfinite(obs)) or np.any(obs < 0) or np.any(obs != np.round(obs)):
        raise ValueError(
            f"counts_by_bucket must hold non-negative integer counts. Got {counts} instead."
        )
    if obs.sum() == 0:
        raise ValueError(f"counts_by_bucket must have a positive total. Got {counts} instead.")
    return counts, obs


def _weights(expected: object, counts: dict) -> np.ndarray:
    if not isinstance(expected, Mapping):
        raise TypeError(f"expected must be a mapping. Got {type(expected).__name__} instead.")
    if set(expected) != set(counts):
        raise ValueError(
            f"expected must have the buckets {sorted(map(str, counts))}. "
            f"Got {sorted(map(str, expected))} instead."
        )
    weights = np.array([expected[b] for b in counts], dtype=np.float64)
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError(f"expected must hold positive weights. Got {dict(expected)} instead.")
    return weights


def srm_test(
    counts_by_bucket: Mapping[str, int] | pd.Series,
    expected: Mapping[str, float] | None = None,
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """Sample-ratio-mismatch chi-square goodness-of-fit test.

    Parameters
    ----------
    counts_by_bucket : mapping or pandas.Series
        Number of randomisation units per bucket (at least two buckets).
    expected : mapping, optional
        Expected share (any positive weights, normalised here) of every bucket in
        ``counts_by_bucket``; an equal split when None.
    threshold : float, default 0.001
        The split is flagged when the p-value is below it.

    Returns
    -------
    SRMResult
    """
    counts, obs = _observed(counts_by_bucket)
    check_float(threshold, "threshold", low=0, high=1, low_open=True, high_open=True)
    weights = np.ones_like(obs) if expected is None else _weights(expected, counts)
    chi2, p_value = _chi2_goodness_of_fit(obs, weights)
    return SRMResult(chi2=chi2, p_value=p_value, flagged=bool(p_value < threshold))
