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
values; ratio metrics use the delta method on per-unit sums. Each row's p-value and lift
interval come from one test (:mod:`eval.ab._inference`: the log-ratio z-test, the exact
conditional test for few events, or an always-valid confidence sequence), and the primary
metric decides which rows are flagged (:mod:`eval.ab._decide`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from eval.ab._checks import REQUIRED, check_samples, known_buckets
from eval.ab._cuped import cuped_arms
from eval.ab._decide import STATUS_NAMES, decide
from eval.ab._guards import BalanceCheck, pre_period_balance, request_unit_warning
from eval.ab._inference import (
    METHOD_NAMES,
    MIN_EVENTS,
    SEQUENTIAL_TUNING_UNITS,
    Inference,
    RowStats,
    arm_moments,
    infer,
    interval,
    mde,
)
from eval.ab._srm import SRMResult, srm_test
from eval.ab._stats import _moment_columns
from eval.ab._table import UnitDays
from eval.ab._units import METRICS_BY_UNIT, UNITS, Unit, pre_sums_of, pre_unit_sums
from ltr._validation import check_choice

__all__ = ["TABLE_COLUMNS", "ABResult", "PrePeriod", "compare_all", "compare_buckets", "compare_table", "metric_names"]

Adjust = Literal["holm", "bh"] | None

_ADJUST = (None, "holm", "bh")

TABLE_COLUMNS = (
    "control_bucket",
    "treatment_bucket",
    "metric",
    "role",
    "control",
    "treatment",
    "abs_diff",
    "lift",
    "ci_low",
    "ci_high",
    "ci_level",
    "p_value",
    "p_family",
    "p_adjusted",
    "significant",
    "direction",
    "status",
    "method",
    "z",
    "events_control",
    "events_treatment",
    "mde",
    "n_control",
    "n_treatment",
    "var_reduction",
)


def metric_names(unit: str) -> list[str]:
    """The metric names of the A/B table for ``unit`` ("user" or "request"), in table order."""
    return [name for name, _, _ in METRICS_BY_UNIT[check_choice(unit, "unit", UNITS)]]


@dataclass(frozen=True)
class CupedReport:
    """Whether CUPED was applied, and the pre-period balance check that decided it.

    Attributes
    ----------
    applied : bool
        False when the arms already differed in the pre-period (the treatment was probably live
        then): the table is then the unadjusted one.
    pre_period : tuple of int
        First and last ``day`` of the pre-period.
    balance : BalanceCheck
    """

    applied: bool
    pre_period: tuple[int, int]
    balance: BalanceCheck


@dataclass(frozen=True)
class ABResult:
    """Readout of one or several treatment buckets against a control bucket.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (treatment bucket, metric) with columns ``TABLE_COLUMNS``: ``role``
        (``primary`` or ``secondary``), the arm estimates ``control`` and ``treatment``
        (CUPED-adjusted when CUPED was applied), ``abs_diff = treatment - control``, ``lift =
        treatment / control - 1`` with its interval ``[ci_low, ci_high]`` at level
        ``ci_level`` (``1 - alpha`` widened where the p-value was adjusted), the raw two-sided
        ``p_value``, ``p_family`` (adjusted within its family), ``p_adjusted`` (the decisive
        one, see :mod:`eval.ab._decide`), ``significant`` (``p_adjusted < alpha``),
        ``direction`` (``up``/``down``: the sign of ``abs_diff``, empty when equal),
        ``status`` (``tested``, ``gated``, ``exploratory`` or ``not tested``), ``method``
        (``delta``, ``exact``, ``sequential`` or ``undefined``), the test statistic ``z``
        (NaN for the exact test), the event counts behind the metric, ``mde`` (the relative
        lift detectable with 80% power at this sample size), the unit counts and
        ``var_reduction`` (share of the variance removed by CUPED; NaN without it).
    unit : {"user", "request"}
        Randomisation unit.
    alpha : float
        Significance level.
    adjust : {None, "holm", "bh"}
        Adjustment of the secondary metrics (None: exploratory).
    primary : str
        The metric that decides the verdict.
    control : str
        Control bucket.
    treatments : tuple of str
        Treatment buckets, in table order.
    srm : SRMResult
        Sample-ratio-mismatch test on the unit counts of the compared buckets.
    experiment_days : tuple of int
        First and last ``day`` of the experiment samples.
    pre_period : tuple of int or None
        First and last ``day`` of the CUPED pre-period when CUPED was applied, else None.
    inference : Inference
        The test settings (alpha, minimum events, sequential and its tuning).
    cuped : CupedReport or None
        The pre-period balance check and whether CUPED was applied (None without pre-period).
    warnings : tuple of str
        What makes the readout less trustworthy (CUPED refused, request unit on user-randomised
        logs).
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
    primary: str = "ctr"
    inference: Inference = field(default_factory=Inference)
    cuped: CupedReport | None = None
    warnings: tuple[str, ...] = ()


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


@dataclass(frozen=True)
class PrePeriod:
    """Per-user sums of a CUPED pre-period (``exposures``, ``clicks``, ``orders`` indexed by
    ``user_id``) and its first and last day."""

    sums: pd.DataFrame
    days: tuple[int, int]


def _cuped(pre: PrePeriod | None, unit: str, units: pd.DataFrame, control: str, treatments: list[str],
           primary: str) -> tuple[pd.DataFrame | None, CupedReport | None, list[str]]:
    """Pre-period sums aligned with ``units`` when CUPED may use them, its report and warnings."""
    if pre is None:
        return None, None, []
    pre_units = pre_unit_sums(pre.sums, units)
    pre_period = pre.days
    balance = pre_period_balance(pre_units, units["bucket"].to_numpy(), control, treatments,
                                 METRICS_BY_UNIT[unit], primary)
    if balance.balanced:
        warnings = []
        if balance.primary_differs:
            warnings.append(f"CUPED applied, but {primary} already differed between the arms in the pre-period "
                            "(p < 0.05): if the treatment was live then, CUPED removes part of its effect; check "
                            "the pre-period balance table and give --experiment-start if the start is known.")
        return pre_units, CupedReport(applied=True, pre_period=pre_period, balance=balance), warnings
    w = balance.worst or {}
    warning = (f"CUPED refused: the arms already differed before the experiment window ({w.get('metric')} "
               f"{w.get('lift', float('nan')):+.1%} in {w.get('treatment_bucket')}, Holm p = "
               f"{w.get('p_holm', float('nan')):.2g}), so the treatment was probably live in the pre-period "
               "and CUPED would remove part of its effect. The numbers are unadjusted; give the day the "
               "treatment started (--experiment-start) to use the days before it.")
    return None, CupedReport(applied=False, pre_period=pre_period, balance=balance), [warning]


def _arm(units: pd.DataFrame, pre_units: pd.DataFrame | None, num: str, den: str | None,
         masks: tuple[np.ndarray, np.ndarray]) -> tuple[list[tuple], float]:
    """(estimate, variance, events, weight) of the control and the treatment arm, and the CUPED
    variance reduction (NaN without CUPED)."""
    y = units[num].to_numpy(np.float64)
    x = np.ones_like(y) if den is None else units[den].to_numpy(np.float64)
    arms = [arm_moments(_moment_columns(y[m], x[m]).sum(axis=0)) for m in masks]
    if pre_units is None:
        return [tuple(float(v) for v in a) for a in arms], np.nan
    yp = pre_units[num].to_numpy(np.float64)
    xp = np.ones_like(yp) if den is None else pre_units[den].to_numpy(np.float64)
    means, variances = cuped_arms([(y[m], x[m], yp[m], xp[m]) for m in masks])
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = 1.0 - (variances[0] + variances[1]) / (arms[0][1] + arms[1][1])
    adjusted = [(float(means[i]), float(variances[i]), float(arms[i][2]), float(arms[i][3])) for i in range(2)]
    return adjusted, float(reduction)


def _row_stats(units: pd.DataFrame, pre_units: pd.DataFrame | None, unit: str, control: str,
               treatments: list[str], settings: Inference) -> tuple[RowStats, list[dict]]:
    """Every (treatment, metric) row tested at once (rows on the last axis), and the row labels."""
    bucket_of = units["bucket"].to_numpy()
    arms_c, arms_t, n_units, labels = [], [], [], []
    for treatment in treatments:
        masks = (bucket_of == control, bucket_of == treatment)
        for metric, num, den in METRICS_BY_UNIT[unit]:
            (arm_c, arm_t), reduction = _arm(units, pre_units, num, den, masks)
            arms_c.append(arm_c)
            arms_t.append(arm_t)
            n_units.append(int(masks[0].sum() + masks[1].sum()))
            labels.append({"control_bucket": control, "treatment_bucket": treatment, "metric": metric,
                           "n_control": int(masks[0].sum()), "n_treatment": int(masks[1].sum()),
                           "var_reduction": reduction})
    columns_c, columns_t = np.array(arms_c).T, np.array(arms_t).T
    return infer(tuple(columns_c), tuple(columns_t), np.array(n_units), settings), labels


def _table(rs: RowStats, labels: list[dict], primary: str, adjust: str | None, settings: Inference) -> pd.DataFrame:
    is_primary = np.array([row["metric"] == primary for row in labels])
    treatment_index = pd.factorize(pd.Series([row["treatment_bucket"] for row in labels]))[0]
    decision = decide(rs.p_value, is_primary, treatment_index, adjust, settings.alpha)
    low, high = interval(rs, decision.ci_alpha, settings)
    diff = rs.treatment - rs.control
    table = pd.DataFrame(labels)
    table["role"] = np.where(is_primary, "primary", "secondary")
    for name, values in (("control", rs.control), ("treatment", rs.treatment), ("abs_diff", diff),
                         ("lift", rs.lift), ("ci_low", low), ("ci_high", high),
                         ("ci_level", 1.0 - decision.ci_alpha), ("p_value", rs.p_value),
                         ("p_family", decision.p_family), ("p_adjusted", decision.p_adjusted),
                         ("z", rs.z), ("events_control", rs.events[0]), ("events_treatment", rs.events[1]),
                         ("mde", mde(rs, settings))):
        table[name] = np.asarray(values, dtype=np.float64)
    table["significant"] = decision.significant
    table["direction"] = np.where(diff > 0, "up", np.where(diff < 0, "down", ""))
    table["status"] = np.asarray(STATUS_NAMES)[decision.status]
    table["method"] = np.asarray(METHOD_NAMES)[rs.method]
    return table[list(TABLE_COLUMNS)]


def _check_pre(unit: str, pre_samples: pd.DataFrame | None, first_day: int) -> PrePeriod | None:
    if pre_samples is None:
        return None
    if unit != "user":
        raise ValueError(
            "unit must be 'user' when pre_samples is given (requests do not recur across "
            f"periods). Got {unit!r} instead."
        )
    return PrePeriod(*pre_sums_of(pre_samples, first_day))


def _compare(
    samples: pd.DataFrame,
    control: str | None,
    treatments: Sequence[str] | None,
    unit: str,
    settings: Inference,
    adjust: str | None,
    primary: str,
    pre_samples: pd.DataFrame | None,
    expected_split: Mapping[str, float] | None,
) -> ABResult:
    check_choice(unit, "unit", UNITS)
    settings = settings.checked()
    check_choice(adjust, "adjust", _ADJUST)
    check_choice(primary, "primary", metric_names(unit))
    frame = check_samples(samples, "samples", REQUIRED)
    table = UnitDays.of(frame, unit, buckets=known_buckets(frame))
    pre = _check_pre(unit, pre_samples, table.days()[0])
    return compare_table(table, control, treatments, settings, adjust, primary, pre, expected_split)


def compare_table(
    table: UnitDays,
    control: str | None,
    treatments: Sequence[str] | None,
    settings: Inference,
    adjust: str | None,
    primary: str,
    pre: PrePeriod | None = None,
    expected_split: Mapping[str, float] | None = None,
) -> ABResult:
    """:func:`compare_buckets` (one treatment) or :func:`compare_all` (``treatments=None``) on a
    unit-day table (:class:`eval.ab.UnitDays`) and the per-user sums of a CUPED pre-period."""
    unit = table.unit
    check_choice(unit, "unit", UNITS)
    settings = settings.checked()
    check_choice(adjust, "adjust", _ADJUST)
    check_choice(primary, "primary", metric_names(unit))
    if pre is not None and unit != "user":
        raise ValueError(f"unit must be 'user' with a CUPED pre-period (requests do not recur across periods). "
                         f"Got {unit!r} instead.")
    units = table.unit_sums()
    known = table.known_buckets()
    counts = units["bucket"].value_counts().reindex(known, fill_value=0)
    control, treatments = _pick_buckets(known, counts, control, treatments, unit)
    compared = [control, *treatments]
    srm = srm_test({b: int(counts[b]) for b in compared},
                   expected=_expected_split(expected_split, compared, counts, known))
    first_day, last_day = table.days()
    pre_units, cuped, warnings = _cuped(pre, unit, units, control, treatments, primary)
    if unit == "request" and (warning := request_unit_warning(table.frame)) is not None:
        warnings.append(warning)
    rs, labels = _row_stats(units, pre_units, unit, control, treatments, settings)
    table_out = _table(rs, labels, primary, adjust, settings)
    return ABResult(table=table_out, unit=unit, alpha=float(settings.alpha), adjust=adjust, control=control,
                    treatments=tuple(treatments), srm=srm, experiment_days=(first_day, last_day),
                    pre_period=cuped.pre_period if cuped is not None and cuped.applied else None,
                    primary=primary, inference=settings, cuped=cuped, warnings=tuple(warnings))


def compare_buckets(
    samples: pd.DataFrame,
    control: str,
    treatment: str,
    unit: Unit = "user",
    alpha: float = 0.05,
    adjust: Adjust = "holm",
    primary: str = "ctr",
    pre_samples: pd.DataFrame | None = None,
    expected_split: Mapping[str, float] | None = None,
    sequential: bool = False,
    tuning_units: int = SEQUENTIAL_TUNING_UNITS,
    min_events: int = MIN_EVENTS,
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
        a unit is respected. With ``"request"`` on logs where no user straddles two buckets
        the result carries a warning (the logs look randomised by user).
    alpha : float, default 0.05
        Significance level of the whole readout (family-wise, see ``primary``).
    adjust : {"holm", "bh", None}, default "holm"
        Adjustment of the secondary metrics (every metric but ``primary``): Holm (family-wise
        error) or Benjamini-Hochberg (false discovery rate); they are only flagged when the
        primary metric is significant. None makes them exploratory: raw p-values, never flagged.
        Metrics with an undefined p-value are left out of the family.
    primary : str, default "ctr"
        The metric that decides: tested at ``alpha`` unadjusted (one treatment).
    pre_samples : pandas.DataFrame, optional
        Samples of a pre-period (all days before the experiment's first day) with
        ``user_id``, ``click``, ``order``, ``day``. When given (``unit="user"`` only), every
        metric is CUPED-adjusted with the same metric of the user in the pre-period as the
        covariate (0 for users without pre-period exposures); ratio metrics use their
        delta-method linearisations in both periods; theta is pooled across the two arms.
        CUPED is refused (the table is unadjusted, with a warning) when the arms already
        differ in the pre-period: a Holm-adjusted p-value below 0.01 on any metric.
    expected_split : mapping, optional
        Expected share of units per compared bucket for the SRM test; equal when None.
    sequential : bool, default False
        Always-valid confidence sequences and p-values (valid however often one looks)
        instead of fixed-horizon ones.
    tuning_units : int, default 5000
        Units (both arms) at which the confidence sequence is tightest; fix it in advance.
    min_events : int, default 30
        An arm with fewer events of a metric sends that row to the exact test.

    Returns
    -------
    ABResult
        The tidy table, the SRM test, the CUPED balance check, the warnings and the settings.

    Notes
    -----
    One test gives each row's p-value and interval (:mod:`eval.ab._inference`): the log-ratio
    z-test, ``z = log(t / c) / sqrt(v_t / t**2 + v_c / c**2)`` with delta-method variances and
    the interval ``exp(log(t / c) +- z_{1-a/2} se) - 1``, so the interval excludes 0 exactly when
    ``p < alpha``; the exact conditional Poisson test with a Clopper-Pearson interval when an
    arm has fewer than ``min_events`` events; the asymptotic confidence sequence when
    ``sequential``. Variances are plug-in (ddof=0) moments. A metric whose denominator or arm
    values are 0 has NaN for what is undefined.
    """
    settings = Inference(alpha=alpha, min_events=min_events, sequential=sequential, tuning_units=tuning_units)
    return _compare(samples, control, [treatment], unit, settings, adjust, primary, pre_samples, expected_split)


def compare_all(
    samples: pd.DataFrame,
    control: str | None = None,
    unit: Unit = "user",
    alpha: float = 0.05,
    adjust: Adjust = "holm",
    primary: str = "ctr",
    pre_samples: pd.DataFrame | None = None,
    expected_split: Mapping[str, float] | None = None,
    sequential: bool = False,
    tuning_units: int = SEQUENTIAL_TUNING_UNITS,
    min_events: int = MIN_EVENTS,
) -> ABResult:
    """Compare every bucket with the control (the first bucket in sorted order when None).

    Same parameters and statistics as :func:`compare_buckets`; the primary metric is then
    Holm-adjusted across the treatments, the secondary family spans all treatments, the SRM
    test covers all buckets, and the CUPED theta is pooled over each (control, treatment) pair.
    """
    settings = Inference(alpha=alpha, min_events=min_events, sequential=sequential, tuning_units=tuning_units)
    return _compare(samples, control, None, unit, settings, adjust, primary, pre_samples, expected_split)
