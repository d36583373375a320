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
from eval.ab._table import MISSING_SEGMENT, SUMS, UnitDays
from eval.ab._units import METRICS_BY_UNIT, check_comparison, check_table, metric_columns
from ltr.metrics._checks import show

__all__ = ["MAX_SEGMENTS", "MISSING_SEGMENT", "SegmentResult", "segment_lift", "segment_lift_table"]

#: A column with more distinct values than this is refused (bin it first).
MAX_SEGMENTS = 20


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


def _check_column(samples: pd.DataFrame, column: str) -> None:
    if column not in samples.columns:
        raise ValueError(f"segment must be a column of the requests table. Got {column!r}, which is not one "
                         f"(columns: {sorted(map(str, samples.columns))}).")


def _levels(table: UnitDays) -> np.ndarray:
    levels = np.asarray(sorted(pd.unique(table.frame["segment"])), dtype=object)
    if len(levels) > MAX_SEGMENTS:
        raise ValueError(f"segment column {table.segment!r} must have at most {MAX_SEGMENTS} distinct values. Got "
                         f"{len(levels)} instead (e.g. {show(levels[0])}); bin it first.")
    return levels


def _segment_unit_sums(table: UnitDays, levels: np.ndarray) -> pd.DataFrame:
    """Sums per (segment, unit), ordered by segment then by the unit's first appearance."""
    sums = table.sums_by(["segment", table.key])
    bucket = table.unit_sums().set_index(table.key)["bucket"]
    sums["bucket"] = bucket.reindex(sums[table.key].to_numpy()).to_numpy()
    sums["segment_code"] = pd.Index(levels).get_indexer(sums["segment"])
    sums["rank"] = table.first_order().reindex(sums[table.key].to_numpy()).to_numpy()
    return sums.sort_values(["segment_code", "rank"], kind="stable").reset_index(drop=True)


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
    if isinstance(samples, pd.DataFrame):
        _check_column(samples, column)
    table = check_comparison(samples, unit, [control, treatment], metric, segment=column)
    return segment_lift_table(table, control, treatment, metric, settings)


def segment_lift_table(table: UnitDays, control: str, treatment: str, metric: str,
                       settings: Inference) -> SegmentResult:
    """:func:`segment_lift` on a unit-day table keyed by the segment (:class:`eval.ab.UnitDays`)."""
    column = table.segment
    if column is None:
        raise ValueError("table must be keyed by a segment column. Got a table without one instead.")
    table = check_table(table, [control, treatment], metric)
    settings = settings.checked()
    levels = _levels(table)
    num, den = next((n, d) for name, n, d in METRICS_BY_UNIT[table.unit] if name == metric)
    sums = _segment_unit_sums(table.in_buckets([control, treatment]), levels)
    y, x = metric_columns({c: sums[c].to_numpy(np.float64) for c in SUMS}, num, den)
    columns = _moment_columns(y, x)
    segment = sums["segment_code"].to_numpy()
    treated = sums["bucket"].to_numpy() == treatment
    moments = np.zeros((2, len(levels), columns.shape[1]))
    for a, rows in enumerate((~treated, treated)):
        for j in range(columns.shape[1]):
            moments[a, :, j] = np.bincount(segment[rows], weights=columns[rows, j], minlength=len(levels))
    rs = infer(arm_moments(moments[0]), arm_moments(moments[1]), moments[0, :, 0] + moments[1, :, 0], settings)
    decision = decide(rs.p_value, np.ones(len(levels), dtype=bool), np.zeros(len(levels), dtype=np.int64), "holm",
                      settings.alpha)
    low, high = interval(rs, decision.ci_alpha, settings)
    diff = rs.treatment - rs.control
    out = pd.DataFrame({
        "segment": levels.astype(str), "n_control": moments[0, :, 0].astype(np.int64),
        "n_treatment": moments[1, :, 0].astype(np.int64), "control": rs.control, "treatment": rs.treatment,
        "lift": rs.lift, "ci_low": low, "ci_high": high, "ci_level": 1.0 - decision.ci_alpha,
        "p_value": rs.p_value, "p_holm": decision.p_adjusted, "significant": decision.significant,
        "direction": np.where(diff > 0, "up", np.where(diff < 0, "down", "")),
        "method": np.asarray(METHOD_NAMES)[rs.method]})
    q, q_df, q_p = _heterogeneity(rs)
    return SegmentResult(column=column, metric=metric, table=out, q=q, q_df=q_df, q_p_value=q_p)
