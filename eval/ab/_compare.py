"""A/B statistics for recommender experiments.

Input is the exposure-level ``samples`` frame of :func:`ltr.join_samples`: one row per exposure
with at least ``request_id``, ``user_id``, ``bucket`` (str), ``click`` (0/1), ``order`` (0/1)
and ``day`` (int, days since epoch).

Metrics per bucket, for the randomisation unit ``unit`` (``"user"`` by default, ``"request"``
when buckets are assigned per request):

====================  =====================================================================
metric                definition
====================  =====================================================================
exposures_per_<unit>  mean over units of exposures
clicks_per_<unit>     mean over units of clicks
orders_per_<unit>     mean over units of orders
ctr                   clicks / exposures (ratio of sums over units)
cvr                   orders / clicks (ratio of sums over units)
uctr                  share of exposed units with a click (``request_ctr`` when unit=request)
ucvr                  share of exposed units with an order (``request_cvr`` when unit=request)
====================  =====================================================================

Inference treats the unit as independent: means of per-unit values use the variance of those
values; ratio metrics use the delta method on per-unit sums. The relative lift
``treatment / control - 1`` gets a delta-method interval on the **log** scale; the p-value is
the two-sided Wald test of the difference of the two arm estimates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from eval.ab._checks import REQUIRED, check_samples, known_buckets
from eval.ab._cuped import cuped_arms
from eval.ab._srm import SRMResult, srm_test
from eval.ab._stats import Floats, _adjusted, _diff_test, _estimate_from_moments, _moments, _relative_lift
from eval.ab._units import UNITS, Unit, pre_unit_sums, unit_sums_checked
from ltr._validation import check_choice, check_float

__all__ = ["TABLE_COLUMNS", "ABResult", "compare_all", "compare_buckets"]

Adjust = Literal["holm", "bh"] | None

_ADJUST = (None, "holm", "bh")

# (metric name per unit, numerator column of unit_sums, denominator column or None for a mean)
_METRICS_BY_UNIT: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    unit: (
        (f"exposures_per_{unit}", "exposures", None),
        (f"clicks_per_{unit}", "clicks", None),
        (f"orders_per_{unit}", "orders", None),
        ("ctr", "clicks", "exposures"),
        ("cvr", "orders", "clicks"),
        ("uctr" if unit == "user" else "request_ctr", "has_click", None),
        ("ucvr" if unit == "user" else "request_cvr", "has_order", None),
    )
    for unit in UNITS
}

TABLE_COLUMNS = (
    "control_bucket",
    "treatment_bucket",
    "metric",
    "control",
    "treatment",
    "abs_diff",
    "lift",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    "n_control",
    "n_treatment",
    "var_reduction",
)


@dataclass(frozen=True)
class ABResult:
    """Readout of one or several treatment buckets against a control bucket.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (treatment bucket, metric) with columns ``TABLE_COLUMNS``: the arm
        estimates ``control`` and ``treatment`` (CUPED-adjusted when a pre-period was given),
        ``abs_diff = treatment - control``, ``lift = treatment / control - 1`` with its
        ``1 - alpha`` interval ``[ci_low, ci_high]`` (delta method, log form), the two-sided
        ``p_value``, ``p_adjusted`` (equal to ``p_value`` when ``adjust`` is None),
        ``significant`` (``p_adjusted < alpha``), the unit counts ``n_control`` and
        ``n_treatment``, and ``var_reduction`` (share of the variance of the difference
        removed by CUPED; NaN without a pre-period).
    unit : {"user", "request"}
        Randomisation unit.
    alpha : float
        Significance level; intervals are at level ``1 - alpha``.
    adjust : {None, "holm", "bh"}
        Multiple-testing adjustment applied across all rows of ``table``.
    control : str
        Control bucket.
    treatments : tuple of str
        Treatment buckets, in table order.
    srm : SRMResult
        Sample-ratio-mismatch test on the unit counts of the compared buckets.
    experiment_days : tuple of int
        First and last ``day`` of the experiment samples.
    pre_period : tuple of int or None
        First and last ``day`` of the CUPED pre-period, None when CUPED was not used.
    """

    table: pd.DataFrame
    unit: str
    alpha: float
    adjust: str | None
    control: str
    treatments: tuple[str, ...]
    srm: SRMResult
    experiment_days: tuple[int, int]
    pre_period: tuple[int, int] | None


def _pick_buckets(
    known: list[str], counts: pd.Series, control: str | None, treatments: Sequence[str] | None, unit: str
) -> tuple[str, list[str]]:
    """The control (default: the first bucket) and treatments (default: every other bucket)."""
    if control is None:
        control = known[0]
    if treatments is None:
        treatments = [b for b in known if b != control]
        if not treatments:
            raise ValueError(
                f"samples.bucket must have at least two buckets to compare. Got {known} instead."
            )
    for name, bucket in [("control", control)] + [("treatment", t) for t in treatments]:
        if bucket not in counts.index:
            raise ValueError(f"{name} must be one of the buckets {known}. Got {bucket!r} instead.")
        if counts[bucket] == 0:
            raise ValueError(
                f"{name} must be a bucket with {unit}s. Got {bucket!r}, which has no {unit}s."
            )
    if control in treatments:
        raise ValueError(f"treatment must differ from control. Got {control!r} for both instead.")
    return control, list(treatments)


def _expected_split(
    expected_split: Mapping[str, float] | None, compared: list[str], counts: pd.Series, known: list[str]
) -> dict[str, float] | None:
    """The expected weights of the compared buckets for the SRM test (None: an equal split)."""
    if expected_split is None:
        return None
    if not isinstance(expected_split, Mapping):
        raise TypeError(
            f"expected_split must be a mapping. Got {type(expected_split).__name__} instead."
        )
    unknown = sorted(str(b) for b in expected_split if b not in counts.index)
    absent = [b for b in compared if b not in expected_split]
    if unknown or absent:
        raise ValueError(
            f"expected_split must give a weight to each of {compared} among the buckets "
            f"{known}. Got {sorted(map(str, expected_split))} instead."
        )
    return {b: expected_split[b] for b in compared}


def _pre_period(
    pre_samples: pd.DataFrame | None, unit: str, units: pd.DataFrame, first_day: int
) -> tuple[pd.DataFrame | None, tuple[int, int] | None]:
    """Pre-period sums aligned with ``units`` and the pre-period's first and last day."""
    if pre_samples is None:
        return None, None
    if unit != "user":
        raise ValueError(
            "unit must be 'user' when pre_samples is given (requests do not recur across "
            f"periods). Got {unit!r} instead."
        )
    pre_units = pre_unit_sums(pre_samples, units, first_day)
    return pre_units, (int(pre_samples["day"].min()), int(pre_samples["day"].max()))


def _arm_estimates(
    units: pd.DataFrame,
    pre_units: pd.DataFrame | None,
    num: str,
    den: str | None,
    arms: tuple[np.ndarray, np.ndarray],
) -> tuple[tuple[Floats, Floats], tuple[Floats, Floats], Floats]:
    """(control mean, variance), (treatment mean, variance) and the CUPED variance reduction.

    ``arms`` are the row masks of the control and the treatment units.
    """
    ones = np.ones(len(units), dtype=np.float64)
    y = units[num].to_numpy(np.float64)
    x = ones if den is None else units[den].to_numpy(np.float64)
    (m_c, v_c), (m_t, v_t) = [_estimate_from_moments(_moments(y[m], x[m])) for m in arms]
    if pre_units is None:
        return (m_c, v_c), (m_t, v_t), np.nan
    yp = pre_units[num].to_numpy(np.float64)
    xp = ones if den is None else pre_units[den].to_numpy(np.float64)
    (adj_m_c, adj_m_t), (adj_v_c, adj_v_t) = cuped_arms([(y[m], x[m], yp[m], xp[m]) for m in arms])
    with np.errstate(divide="ignore", invalid="ignore"):
        var_reduction = 1.0 - (adj_v_c + adj_v_t) / (v_c + v_t)
    return (adj_m_c, adj_v_c), (adj_m_t, adj_v_t), var_reduction


def _metric_row(control_arm: tuple[Floats, Floats], treatment_arm: tuple[Floats, Floats], z: float) -> dict[str, float]:
    """The estimates, lift, interval and p-value columns of one table row."""
    (m_c, v_c), (m_t, v_t) = control_arm, treatment_arm
    lift, low, high = _relative_lift(m_c, v_c, m_t, v_t, z)
    return {
        "control": float(m_c),
        "treatment": float(m_t),
        "abs_diff": float(m_t - m_c),
        "lift": float(lift),
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(_diff_test(m_c, v_c, m_t, v_t)),
    }


def _compare(
    samples: pd.DataFrame,
    control: str | None,
    treatments: Sequence[str] | None,
    unit: str,
    alpha: float,
    adjust: str | None,
    pre_samples: pd.DataFrame | None,
    expected_split: Mapping[str, float] | None,
) -> ABResult:
    check_choice(unit, "unit", UNITS)
    check_float(alpha, "alpha", low=0, high=1, low_open=True, high_open=True)
    check_choice(adjust, "adjust", _ADJUST)
    check_samples(samples, "samples", REQUIRED)
    units = unit_sums_checked(samples, unit)
    known = known_buckets(samples)
    counts = units["bucket"].value_counts().reindex(known, fill_value=0)
    control, treatments = _pick_buckets(known, counts, control, treatments, unit)
    compared = [control, *treatments]
    srm = srm_test({b: int(counts[b]) for b in compared},
                   expected=_expected_split(expected_split, compared, counts, known))
    first_day, last_day = int(samples["day"].min()), int(samples["day"].max())
    pre_units, pre_period = _pre_period(pre_samples, unit, units, first_day)

    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    bucket_of = units["bucket"].to_numpy()
    rows = []
    for treatment in treatments:
        arms = (bucket_of == control, bucket_of == treatment)
        for metric, num, den in _METRICS_BY_UNIT[unit]:
            control_arm, treatment_arm, var_reduction = _arm_estimates(units, pre_units, num, den, arms)
            rows.append({"control_bucket": control, "treatment_bucket": treatment, "metric": metric,
                         **_metric_row(control_arm, treatment_arm, z),
                         "n_control": int(counts[control]), "n_treatment": int(counts[treatment]),
                         "var_reduction": float(var_reduction)})
    table = pd.DataFrame(rows)
    p_adj = _adjusted(table["p_value"].to_numpy(), adjust)
    table["p_adjusted"] = p_adj
    table["significant"] = np.nan_to_num(p_adj, nan=1.0) < alpha
    return ABResult(table=table[list(TABLE_COLUMNS)], unit=unit, alpha=float(alpha), adjust=adjust, control=control,
                    treatments=tuple(treatments), srm=srm, experiment_days=(first_day, last_day),
                    pre_period=pre_period)


def compare_buckets(
    samples: pd.DataFrame,
    control: str,
    treatment: str,
    unit: Unit = "user",
    alpha: float = 0.05,
    adjust: Adjust = None,
    pre_samples: pd.DataFrame | None = None,
    expected_split: Mapping[str, float] | None = None,
) -> ABResult:
    """Compare one treatment bucket with a control bucket on every A/B metric.

    Parameters
    ----------
    samples : pandas.DataFrame
        Exposure-level samples with ``request_id``, ``user_id``, ``bucket``, ``click``,
        ``order``, ``day``.
    control, treatment : str
        Bucket names.
    unit : {"user", "request"}, default "user"
        Randomisation unit. Per-unit metrics are means of per-unit values and ratio metrics
        (CTR, CVR) use the delta method on per-unit sums, so clustering of exposures within
        a unit is respected.
    alpha : float, default 0.05
        Significance level; lift intervals are at level ``1 - alpha``.
    adjust : {None, "holm", "bh"}, default None
        Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjustment of the
        p-values across the metrics; metrics with an undefined p-value are left out.
    pre_samples : pandas.DataFrame, optional
        Samples of a pre-period (all days before the experiment's first day) with
        ``user_id``, ``click``, ``order``, ``day``. When given (``unit="user"`` only), every
        metric is CUPED-adjusted with the same metric of the user in the pre-period as the
        covariate (0 for users without pre-period exposures); ratio metrics use their
        delta-method linearisations in both periods; theta is pooled across the two arms.
    expected_split : mapping, optional
        Expected share of units per compared bucket for the SRM test; equal when None.

    Returns
    -------
    ABResult
        The tidy table, the SRM test and the metadata (unit, alpha, adjust, days).

    Notes
    -----
    Lift interval: the delta method for the ratio of two independent estimates, in log form,
    ``exp(log(t / c) +- z sqrt(v_t / t**2 + v_c / c**2)) - 1``. The p-value is the two-sided
    Wald test of ``t - c`` with unpooled variances ``v_t + v_c`` (with one exposure per
    request and ``unit="request"`` this is the unpooled two-proportion z-test). Variances are
    plug-in (ddof=0) moments; normal quantiles are used throughout, which suits the
    thousands of units an online experiment has. A metric whose denominator or arm value is 0
    has NaN for what is undefined.
    """
    return _compare(samples, control, [treatment], unit, alpha, adjust, pre_samples,
                    expected_split)


def compare_all(
    samples: pd.DataFrame,
    control: str | None = None,
    unit: Unit = "user",
    alpha: float = 0.05,
    adjust: Adjust = None,
    pre_samples: pd.DataFrame | None = None,
    expected_split: Mapping[str, float] | None = None,
) -> ABResult:
    """Compare every bucket with the control (the first bucket in sorted order when None).

    Same parameters and statistics as :func:`compare_buckets`; ``adjust`` then runs across
    all (treatment, metric) rows, the SRM test covers all buckets, and the CUPED theta is
    pooled over each (control, treatment) pair.
    """
    return _compare(samples, control, None, unit, alpha, adjust, pre_samples, expected_split)
