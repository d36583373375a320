"""Guards against two ways a readout misleads while every formula is right.

* CUPED with a contaminated pre-period: when the treatment was already live before the
  readout's first day, the "pre-period" carries the effect, CUPED regresses it away and a real
  lift shrinks (a planted +26% read as +5%). :func:`pre_period_balance` tests whether the users
  of each arm already differed before the start; the comparison refuses CUPED when they clearly
  did (Holm p < 0.01 on any metric) and warns when the primary metric differs at p < 0.05.
* ``unit="request"`` on logs randomised by user: requests of one user are correlated, so a
  request-level test understates the variance (an A/A false positive rate of 0.28 for CTR).
  :func:`request_unit_warning` notices that no user ever straddles two buckets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval.ab._inference import Inference, arm_moments, infer
from eval.ab._stats import _holm, _moment_columns

__all__ = ["BALANCE_ALPHA", "WARN_ALPHA", "BalanceCheck", "pre_period_balance", "request_unit_warning"]

#: The pre-period is called imbalanced when a Holm-adjusted p-value is below this.
BALANCE_ALPHA = 0.01
#: A primary-metric difference in the pre-period below this (unadjusted) draws a warning.
WARN_ALPHA = 0.05
#: Users with several requests needed before "nobody straddles buckets" means anything:
#: under request randomisation each of them stays in one of two buckets with chance <= 1/2.
_MIN_REPEAT_USERS = 20


@dataclass(frozen=True)
class BalanceCheck:
    """Pre-period comparison of the experiment's arms (before the treatment could act).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (treatment, metric): ``treatment_bucket, metric, lift, p_value, p_holm``.
    balanced : bool
        No Holm-adjusted p-value below ``BALANCE_ALPHA``.
    worst : dict or None
        The row with the smallest adjusted p-value (``metric``, ``lift``, ``p_holm``).
    primary_differs : bool
        The primary metric differs at ``WARN_ALPHA`` (unadjusted) for some treatment: weaker
        evidence than ``balanced`` needs, worth a warning but not a refusal (chance imbalance is
        what CUPED corrects, and refusing it exactly then would bias the unadjusted readout).
    """

    table: pd.DataFrame
    balanced: bool
    worst: dict | None
    primary_differs: bool = False


def pre_period_balance(pre_units: pd.DataFrame, bucket_of: np.ndarray, control: str, treatments: list[str],
                       metrics: tuple[tuple[str, str, str | None], ...], primary: str) -> BalanceCheck:
    """Compare the experiment's arms on their pre-period sums, every metric, Holm-adjusted.

    ``pre_units`` holds the pre-period sums aligned with the experiment's units (zeros for a
    user without pre-period exposures) and ``bucket_of`` each unit's experiment bucket.
    """
    settings = Inference()
    rows = []
    for treatment in treatments:
        for metric, num, den in metrics:
            y = pre_units[num].to_numpy(np.float64)
            x = np.ones_like(y) if den is None else pre_units[den].to_numpy(np.float64)
            arms = [arm_moments(_moment_columns(y[m], x[m]).sum(axis=0))
                    for m in (bucket_of == control, bucket_of == treatment)]
            n_units = float(np.count_nonzero(bucket_of == control) + np.count_nonzero(bucket_of == treatment))
            rs = infer(arms[0], arms[1], n_units, settings)
            rows.append({"treatment_bucket": treatment, "metric": metric, "lift": float(rs.lift),
                         "p_value": float(rs.p_value)})
    table = pd.DataFrame(rows)
    table["p_holm"] = _holm(table["p_value"].to_numpy())
    finite = table.dropna(subset=["p_holm"])
    primary_p = table.loc[table["metric"] == primary, "p_value"].to_numpy()
    differs = bool(np.any(np.nan_to_num(primary_p, nan=1.0) < WARN_ALPHA))
    if len(finite) == 0:
        return BalanceCheck(table=table, balanced=True, worst=None, primary_differs=differs)
    worst = finite.loc[finite["p_holm"].idxmin()]
    return BalanceCheck(table=table, balanced=bool(worst["p_holm"] >= BALANCE_ALPHA),
                        worst={"treatment_bucket": str(worst["treatment_bucket"]), "metric": str(worst["metric"]),
                               "lift": float(worst["lift"]), "p_holm": float(worst["p_holm"])},
                        primary_differs=differs)


def request_unit_warning(samples: pd.DataFrame) -> str | None:
    """A warning when ``samples`` look randomised by user (no user in two buckets) while the
    analysis unit is the request; None when users do straddle buckets or there is too little
    evidence (fewer than 20 users with several requests)."""
    per_user = samples.groupby("user_id", sort=False).agg(requests=("request_id", "nunique"),
                                                         buckets=("bucket", "nunique"))
    repeat = per_user.loc[per_user["requests"] > 1]
    if len(repeat) < _MIN_REPEAT_USERS or (repeat["buckets"] > 1).any():
        return None
    return (f"unit='request' but the buckets look assigned per user: none of the {len(repeat):,d} users with "
            "several requests appears in two buckets. Requests of one user are correlated, so request-level "
            "intervals are too narrow and p-values too small; use unit='user' (--unit user).")
