"""The lift of one metric per value of a requests column (device, city, ...).

Cutting an experiment into segments multiplies the comparisons: with ten segments, one of
them "wins" by chance in four A/A tests out of ten. The segment p-values are therefore
Holm-adjusted across the segments (with intervals widened to match), and the question a
segment table can answer honestly, "does the lift differ between segments?", gets its own
test: Cochran's Q on the log ratios (a chi-square heterogeneity test, ``k - 1`` degrees of
freedom). A unit seen in several segments (a user on two devices) counts in each, which makes
the segments slightly dependent; the Holm adjustment does not need independence.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from eval.ab._decide import decide
from eval.ab._inference import METHOD_NAMES, Inference, RowStats, arm_moments, infer, interval
from eval.ab._stats import _moment_columns
from eval.ab._units import METRICS_BY_UNIT, check_comparison, metric_columns
from ltr.metrics._checks import show

__all__ = ["MAX_SEGMENTS", "MISSING_SEGMENT", "SegmentResult", "segment_lift"]

#: A column with more distinct values than this is refused (bin it first).
MAX_SEGMENTS = 20
#: The level of rows whose segment value is missing (kept, never dropped).
MISSING_SEGMENT = "(missing)"


@dataclass(frozen=True)
class SegmentResult:
    """Per-segment lift of one metric and the heterogeneity test across segments.

    Attributes
    ----------
    column, metric : str
    table : pandas.DataFrame
        One row per segment value: ``segment, n_control, n_treatment, control, treatment, lift,
        ci_low, ci_high, ci_level, p_value, p_holm, significant, direction, method``.
    q, q_df, q_p_value : float
        Cochran's Q over the segments with a defined log ratio, its degrees of freedom and
        p-value (NaN with fewer than two such segments).
    """

    column: str
    metric: str
    table: pd.DataFrame
    q: float
    q_df: int
    q_p_value: float


def _levels(samples: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    if column not in samples.columns:
        raise ValueError(f"segment must be a column of the requests table. Got {column!r}, which is not one "
                         f"(columns: {sorted(map(str, samples.columns))}).")
    values = samples[column]
    labels = values.astype(str).where(values.notna(), MISSING_SEGMENT)
    codes, levels = pd.factorize(labels, sort=True)
    if len(levels) > MAX_SEGMENTS:
        raise ValueError(f"segment column {column!r} must have at most {MAX_SEGMENTS} distinct values. Got "
                         f"{len(levels)} instead (e.g. {show(values.iloc[0])}); bin it first.")
    return codes, np.asarray(levels, dtype=object)


def _heterogeneity(rs: RowStats) -> tuple[float, int, float]:
    """Cochran's Q of the segments' log ratios with delta-method standard errors."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(rs.treatment / rs.control)
        se = np.sqrt(rs.var_treatment / rs.treatment**2 + rs.var_control / rs.control**2)
    ok = np.isfinite(log_ratio) & np.isfinite(se) & (se > 0)
    if ok.sum() < 2:
        return float("nan"), 0, float("nan")
    w = 1.0 / se[ok] ** 2
    pooled = np.sum(w * log_ratio[ok]) / np.sum(w)
    q = float(np.sum(w * (log_ratio[ok] - pooled) ** 2))
    df = int(ok.sum() - 1)
    return q, df, float(stats.chi2.sf(q, df))


def segment_lift(samples: pd.DataFrame, column: str, control: str, treatment: str, unit: str, metric: str,
                 settings: Inference) -> SegmentResult:
    """Lift of ``metric`` per value of ``column`` of the samples frame (treatment vs control).

    ``samples`` is the exposure-level samples frame of :func:`eval.ab.compare_buckets`, which
    carries the requests' columns. Raises ValueError for an unknown column or one with more
    than ``MAX_SEGMENTS`` values.
    """
    samples = check_comparison(samples, unit, [control, treatment], metric)
    settings = settings.checked()
    seg_codes, levels = _levels(samples, column)
    num, den = next((n, d) for name, n, d in METRICS_BY_UNIT[unit] if name == metric)
    bucket = samples["bucket"].astype(str).to_numpy()
    keep = np.isin(bucket, [control, treatment])
    unit_codes, _ = pd.factorize(samples[f"{unit}_id"].to_numpy()[keep])
    key = seg_codes[keep].astype(np.int64) * (unit_codes.max() + 1) + unit_codes
    keys, inverse = np.unique(key, return_inverse=True)
    sums: dict[str, np.ndarray] = {"exposures": np.bincount(inverse, minlength=len(keys)).astype(np.float64)}
    for label, col in (("clicks", "click"), ("orders", "order")):
        sums[label] = np.bincount(inverse, weights=samples[col].to_numpy(np.float64)[keep], minlength=len(keys))
    y, x = metric_columns(sums, num, den)
    columns = _moment_columns(y, x)
    segment = keys // (unit_codes.max() + 1)
    treated = np.zeros(len(keys), dtype=bool)
    treated[inverse] = bucket[keep] == treatment
    moments = np.zeros((2, len(levels), columns.shape[1]))
    for a, rows in enumerate((~treated, treated)):
        for j in range(columns.shape[1]):
            moments[a, :, j] = np.bincount(segment[rows], weights=columns[rows, j], minlength=len(levels))
    rs = infer(arm_moments(moments[0]), arm_moments(moments[1]), moments[0, :, 0] + moments[1, :, 0], settings)
    decision = decide(rs.p_value, np.ones(len(levels), dtype=bool), np.zeros(len(levels), dtype=np.int64), "holm",
                      settings.alpha)
    low, high = interval(rs, decision.ci_alpha, settings)
    diff = rs.treatment - rs.control
    table = pd.DataFrame({
        "segment": levels.astype(str), "n_control": moments[0, :, 0].astype(np.int64),
        "n_treatment": moments[1, :, 0].astype(np.int64), "control": rs.control, "treatment": rs.treatment,
        "lift": rs.lift, "ci_low": low, "ci_high": high, "ci_level": 1.0 - decision.ci_alpha,
        "p_value": rs.p_value, "p_holm": decision.p_adjusted, "significant": decision.significant,
        "direction": np.where(diff > 0, "up", np.where(diff < 0, "down", "")),
        "method": np.asarray(METHOD_NAMES)[rs.method]})
    q, q_df, q_p = _heterogeneity(rs)
    return SegmentResult(column=column, metric=metric, table=table, q=q, q_df=q_df, q_p_value=q_p)
