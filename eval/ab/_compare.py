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

from eval.ab._stats import (
    _benjamini_hochberg,
    _chi2_goodness_of_fit,
    _diff_test,
    _estimate_from_moments,
    _holm,
    _moments,
    _relative_lift,
)

__all__ = [
    "ABResult",
    "SRMResult",
    "compare_all",
    "compare_buckets",
    "srm_test",
    "unit_sums",
]

Unit = Literal["user", "request"]
Adjust = Literal["holm", "bh"] | None

_UNITS = ("user", "request")
_ADJUST = (None, "holm", "bh")
_REQUIRED = ("request_id", "user_id", "bucket", "click", "order", "day")
_PRE_REQUIRED = ("user_id", "click", "order", "day")
SRM_THRESHOLD = 0.001

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
    for unit in _UNITS
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


# ----------------------------------------------------------------------------- validation


def _check_unit(unit: object) -> None:
    if unit not in _UNITS:
        raise ValueError(f"unit must be one of {list(_UNITS)}. Got {unit!r} instead.")


def _check_alpha(alpha: object) -> None:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float, np.floating))
        or not 0.0 < float(alpha) < 1.0
    ):
        raise ValueError(f"alpha must be a float in (0, 1). Got {alpha!r} instead.")


def _check_adjust(adjust: object) -> None:
    if adjust not in _ADJUST:
        raise ValueError(f"adjust must be one of {list(_ADJUST)}. Got {adjust!r} instead.")


def _plain(value: object) -> object:
    """Python scalar for messages (``1`` rather than ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _example_row(frame: pd.DataFrame, mask: np.ndarray, column: str) -> str:
    pos = int(np.flatnonzero(mask)[0])
    return f"row {_plain(frame.index[pos])!r} has {column}={_plain(frame[column].iloc[pos])!r}"


def _check_frame(frame: object, name: str, required: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame. Got {type(frame).__name__} instead.")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} must have columns {list(required)}. Missing {missing} in columns "
            f"{[str(c) for c in frame.columns]} instead."
        )
    if len(frame) == 0:
        raise ValueError(f"{name} must have at least one row. Got an empty frame instead.")
    for col in ("request_id", "user_id", "bucket"):
        if col in required:
            na = frame[col].isna().to_numpy()
            if na.any():
                raise ValueError(
                    f"{name}.{col} must not be missing. Got a missing value instead: "
                    f"{_example_row(frame, na, col)}."
                )
    for col in ("click", "order"):
        if not pd.api.types.is_numeric_dtype(frame[col].dtype):
            raise TypeError(
                f"{name}.{col} must be a 0/1 integer column. Got dtype {frame[col].dtype} instead."
            )
        bad = ~frame[col].isin([0, 1]).to_numpy()
        if bad.any():
            raise ValueError(
                f"{name}.{col} must be 0 or 1. Got another value instead: "
                f"{_example_row(frame, bad, col)}."
            )
    if not pd.api.types.is_integer_dtype(frame["day"].dtype):
        raise TypeError(
            f"{name}.day must be an integer column (days since epoch). "
            f"Got dtype {frame['day'].dtype} instead."
        )
    na_day = frame["day"].isna().to_numpy()
    if na_day.any():
        raise ValueError(
            f"{name}.day must not be missing. Got a missing value instead: "
            f"{_example_row(frame, na_day, 'day')}."
        )
    if "bucket" in required:
        col = frame["bucket"]
        values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else col
        if pd.api.types.infer_dtype(values, skipna=True) != "string":
            raise TypeError(
                f"{name}.bucket must hold strings. Got dtype {col.dtype} "
                f"(first value {_plain(col.iloc[0])!r}) instead."
            )
    return frame


def _known_buckets(samples: pd.DataFrame) -> list[str]:
    col = samples["bucket"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return sorted(str(c) for c in col.cat.categories)
    return sorted(str(b) for b in pd.unique(col))


# ----------------------------------------------------------------------------- unit sums


def _sums_by(frame: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Group codes per row, sorted unique keys and per-key exposure/click/order sums."""
    codes, uniques = pd.factorize(frame[key], sort=True)
    k = len(uniques)
    sums = {
        "exposures": np.bincount(codes, minlength=k).astype(np.int64),
        "clicks": np.bincount(
            codes, weights=frame["click"].to_numpy(np.float64), minlength=k
        ).astype(np.int64),
        "orders": np.bincount(
            codes, weights=frame["order"].to_numpy(np.float64), minlength=k
        ).astype(np.int64),
    }
    return codes, np.asarray(uniques), sums


def _unit_sums_checked(samples: pd.DataFrame, unit: str) -> pd.DataFrame:
    key = f"{unit}_id"
    codes, uniques, sums = _sums_by(samples, key)
    bucket_codes, bucket_values = pd.factorize(samples["bucket"].astype(object))
    by_unit = pd.Series(bucket_codes).groupby(codes).agg(["min", "max"])
    mixed = by_unit["min"].to_numpy() != by_unit["max"].to_numpy()
    if mixed.any():
        first = int(np.flatnonzero(mixed)[0])
        buckets = sorted(
            {str(bucket_values[by_unit["min"].iloc[first]]),
             str(bucket_values[by_unit["max"].iloc[first]])}
        )
        raise ValueError(
            f"samples.bucket must be assigned consistently per {unit} when unit={unit!r}. "
            f"Got {key}={_plain(uniques[first])!r} in buckets {buckets} instead "
            f"({int(mixed.sum())} {unit}s in more than one bucket)."
        )
    out = pd.DataFrame(
        {
            key: uniques,
            "bucket": np.asarray(bucket_values, dtype=object)[by_unit["min"].to_numpy()],
            "exposures": sums["exposures"],
            "clicks": sums["clicks"],
            "orders": sums["orders"],
            "has_click": (sums["clicks"] > 0).astype(np.int64),
            "has_order": (sums["orders"] > 0).astype(np.int64),
        }
    )
    out["bucket"] = out["bucket"].astype(str)
    return out


def unit_sums(samples: pd.DataFrame, unit: Unit = "user") -> pd.DataFrame:
    """Per-unit sums of an exposure-level samples frame.

    Parameters
    ----------
    samples : pandas.DataFrame
        One row per exposure with columns ``request_id``, ``user_id``, ``bucket``, ``click``,
        ``order`` and ``day``.
    unit : {"user", "request"}, default "user"
        Randomisation unit; each unit must sit in exactly one bucket.

    Returns
    -------
    pandas.DataFrame
        One row per unit, sorted by ``<unit>_id``, with columns ``<unit>_id``, ``bucket``,
        ``exposures``, ``clicks``, ``orders`` (int64 sums) and ``has_click``, ``has_order``
        (0/1).

    Raises
    ------
    ValueError
        On an unknown unit, missing columns, missing ids or a unit found in two buckets.
    TypeError
        On a non-string bucket column or non-numeric labels.
    """
    _check_unit(unit)
    _check_frame(samples, "samples", _REQUIRED)
    return _unit_sums_checked(samples, unit)


# ----------------------------------------------------------------------------- SRM


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
    if not (isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0):
        raise ValueError(f"threshold must be a float in (0, 1). Got {threshold!r} instead.")
    if expected is None:
        weights = np.ones_like(obs)
    else:
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
    chi2, p_value = _chi2_goodness_of_fit(obs, weights)
    return SRMResult(chi2=chi2, p_value=p_value, flagged=bool(p_value < threshold))


# ----------------------------------------------------------------------------- comparison


def _pre_unit_sums(pre_samples: pd.DataFrame, units: pd.DataFrame, first_day: int) -> pd.DataFrame:
    """Pre-period sums per experiment user (zeros for users without pre-period exposures)."""
    _check_frame(pre_samples, "pre_samples", _PRE_REQUIRED)
    late = (pre_samples["day"] >= first_day).to_numpy()
    if late.any():
        raise ValueError(
            f"pre_samples must end before the experiment's first day {first_day}. Got a later "
            f"day instead: {_example_row(pre_samples, late, 'day')}."
        )
    _, uniques, sums = _sums_by(pre_samples, "user_id")
    pre = pd.DataFrame(sums, index=pd.Index(uniques, name="user_id"))
    pre["has_click"] = (pre["clicks"] > 0).astype(np.int64)
    pre["has_order"] = (pre["orders"] > 0).astype(np.int64)
    aligned = pre.reindex(units["user_id"].to_numpy())
    if aligned["exposures"].isna().all():
        raise ValueError(
            "pre_samples must share users with samples. Got no common user_id instead "
            f"(e.g. samples user_id={_plain(units['user_id'].iloc[0])!r}, pre_samples "
            f"user_id={_plain(uniques[0])!r})."
        )
    return aligned.fillna(0).astype(np.int64).reset_index(drop=True)


def _linearised(y: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Ratio of sums and its per-unit linearisation ``(y - R x) / mean(x)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = y.sum() / x.sum()
        return float(ratio), (y - ratio * x) / x.mean()


def _cuped_arms(
    arms: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[list[float], list[float]]:
    """CUPED-adjusted estimates and variances of two arms, theta pooled across them.

    Each arm is ``(y, x, y_pre, x_pre)``. The experiment ratio ``R_a`` and its pre-period
    counterpart ``P_a`` are linearised to ``L`` and ``L_pre``; ``theta = sum L L_pre /
    sum L_pre**2`` over both arms (both have mean 0 in each arm), the estimate is
    ``R_a - theta (P_a - P_pooled)`` and its variance ``mean((L - theta L_pre)**2) / n_a``.
    """
    lin = [_linearised(y, x) for y, x, _, _ in arms]
    pre_x_total = [xp.sum() for _, _, _, xp in arms]
    if min(pre_x_total) > 0:
        pre = [_linearised(yp, xp) for _, _, yp, xp in arms]
        cross = sum(float(np.dot(lin_pre, lin_y)) for (_, lin_y), (_, lin_pre) in zip(lin, pre))
        denom = sum(float(np.dot(lp, lp)) for _, lp in pre)
        theta = cross / denom if denom > 0 and np.isfinite(cross) else 0.0
        pooled = sum(yp.sum() for _, _, yp, _ in arms) / sum(pre_x_total)
    else:
        # No pre-period denominator in an arm: nothing to adjust with.
        pre = [(0.0, np.zeros_like(lin_y)) for _, lin_y in lin]
        theta, pooled = 0.0, 0.0
    est, var = [], []
    for (ratio, lin_y), (pre_ratio, lin_pre) in zip(lin, pre):
        est.append(ratio - theta * (pre_ratio - pooled))
        with np.errstate(invalid="ignore"):
            var.append(float(np.mean((lin_y - theta * lin_pre) ** 2)) / lin_y.size)
    return est, var


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
    _check_unit(unit)
    _check_alpha(alpha)
    _check_adjust(adjust)
    _check_frame(samples, "samples", _REQUIRED)
    units = _unit_sums_checked(samples, unit)
    known = _known_buckets(samples)
    counts = units["bucket"].value_counts().reindex(known, fill_value=0)

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

    compared = [control, *treatments]
    if expected_split is not None:
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
        expected_split = {b: expected_split[b] for b in compared}
    srm = srm_test({b: int(counts[b]) for b in compared}, expected=expected_split)

    first_day, last_day = int(samples["day"].min()), int(samples["day"].max())
    pre_units = None
    pre_period = None
    if pre_samples is not None:
        if unit != "user":
            raise ValueError(
                "unit must be 'user' when pre_samples is given (requests do not recur across "
                f"periods). Got {unit!r} instead."
            )
        pre_units = _pre_unit_sums(pre_samples, units, first_day)
        pre_period = (int(pre_samples["day"].min()), int(pre_samples["day"].max()))

    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    bucket_of = units["bucket"].to_numpy()
    masks = {b: bucket_of == b for b in compared}
    ones = np.ones(len(units), dtype=np.float64)
    rows = []
    for treatment in treatments:
        for metric, num, den in _METRICS_BY_UNIT[unit]:
            y = units[num].to_numpy(np.float64)
            x = ones if den is None else units[den].to_numpy(np.float64)
            raw = [_estimate_from_moments(_moments(y[masks[b]], x[masks[b]]))
                   for b in (control, treatment)]
            (m_c, v_c), (m_t, v_t) = raw
            var_reduction = np.nan
            if pre_units is not None:
                yp = pre_units[num].to_numpy(np.float64)
                xp = ones if den is None else pre_units[den].to_numpy(np.float64)
                (m_c, m_t), (v_c_adj, v_t_adj) = _cuped_arms(
                    [(y[masks[b]], x[masks[b]], yp[masks[b]], xp[masks[b]])
                     for b in (control, treatment)]
                )
                with np.errstate(divide="ignore", invalid="ignore"):
                    var_reduction = 1.0 - (v_c_adj + v_t_adj) / (v_c + v_t)
                v_c, v_t = v_c_adj, v_t_adj
            lift, low, high = _relative_lift(m_c, v_c, m_t, v_t, z)
            rows.append(
                {
                    "control_bucket": control,
                    "treatment_bucket": treatment,
                    "metric": metric,
                    "control": float(m_c),
                    "treatment": float(m_t),
                    "abs_diff": float(m_t - m_c),
                    "lift": float(lift),
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "p_value": float(_diff_test(m_c, v_c, m_t, v_t)),
                    "n_control": int(counts[control]),
                    "n_treatment": int(counts[treatment]),
                    "var_reduction": float(var_reduction),
                }
            )
    table = pd.DataFrame(rows)
    p = table["p_value"].to_numpy()
    if adjust == "holm":
        p_adj = _holm(p)
    elif adjust == "bh":
        p_adj = _benjamini_hochberg(p)
    else:
        p_adj = p.copy()
    table["p_adjusted"] = p_adj
    table["significant"] = np.nan_to_num(p_adj, nan=1.0) < alpha
    table = table[list(TABLE_COLUMNS)]
    return ABResult(
        table=table,
        unit=unit,
        alpha=float(alpha),
        adjust=adjust,
        control=control,
        treatments=tuple(treatments),
        srm=srm,
        experiment_days=(first_day, last_day),
        pre_period=pre_period,
    )


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
