"""A/B statistics: per-bucket metrics with the user as the randomisation unit, one test per row
for the p-value and the lift interval (log-ratio delta method, exact test for few events,
always-valid confidence sequences), a primary metric that gates the others, SRM and pre-period
balance checks, CUPED, the daily and per-segment lift and an A/A self-check on the logs.
"""
from __future__ import annotations

from eval.ab._compare import (
    TABLE_COLUMNS,
    ABResult,
    CupedReport,
    PrePeriod,
    compare_all,
    compare_buckets,
    compare_table,
    metric_names,
)
from eval.ab._daily import daily_lift, daily_lift_table
from eval.ab._guards import BALANCE_ALPHA, BalanceCheck
from eval.ab._inference import MIN_EVENTS, SEQUENTIAL_TUNING_UNITS, Inference
from eval.ab._segments import MAX_SEGMENTS, SegmentResult, segment_lift, segment_lift_table
from eval.ab._selfcheck import SelfCheck, aa_self_check, aa_self_check_table
from eval.ab._srm import SRM_THRESHOLD, SRMResult, srm_test
from eval.ab._table import NO_BUCKET, ORDER, UnitDays, reduce_unit_days, unit_days
from eval.ab._units import unit_sums

__all__ = [
    "BALANCE_ALPHA",
    "MAX_SEGMENTS",
    "MIN_EVENTS",
    "NO_BUCKET",
    "ORDER",
    "SEQUENTIAL_TUNING_UNITS",
    "SRM_THRESHOLD",
    "TABLE_COLUMNS",
    "ABResult",
    "BalanceCheck",
    "CupedReport",
    "Inference",
    "PrePeriod",
    "SRMResult",
    "SegmentResult",
    "SelfCheck",
    "UnitDays",
    "aa_self_check",
    "aa_self_check_table",
    "compare_all",
    "compare_buckets",
    "compare_table",
    "daily_lift",
    "daily_lift_table",
    "metric_names",
    "reduce_unit_days",
    "segment_lift",
    "segment_lift_table",
    "srm_test",
    "unit_days",
    "unit_sums",
]
