"""A/B statistics: per-bucket metrics with the user as the randomisation unit, one test per row
for the p-value and the lift interval (log-ratio delta method, exact test for few events,
always-valid confidence sequences), a primary metric that gates the others, SRM and pre-period
balance checks, CUPED, the daily and per-segment lift and an A/A self-check on the logs.
"""
from __future__ import annotations

from eval.ab._compare import TABLE_COLUMNS, ABResult, CupedReport, compare_all, compare_buckets, metric_names
from eval.ab._daily import daily_lift
from eval.ab._guards import BALANCE_ALPHA, BalanceCheck
from eval.ab._inference import MIN_EVENTS, SEQUENTIAL_TUNING_UNITS, Inference
from eval.ab._segments import MAX_SEGMENTS, SegmentResult, segment_lift
from eval.ab._selfcheck import SelfCheck, aa_self_check
from eval.ab._srm import SRM_THRESHOLD, SRMResult, srm_test
from eval.ab._units import unit_sums

__all__ = [
    "BALANCE_ALPHA",
    "MAX_SEGMENTS",
    "MIN_EVENTS",
    "SEQUENTIAL_TUNING_UNITS",
    "SRM_THRESHOLD",
    "TABLE_COLUMNS",
    "ABResult",
    "BalanceCheck",
    "CupedReport",
    "Inference",
    "SRMResult",
    "SegmentResult",
    "SelfCheck",
    "aa_self_check",
    "compare_all",
    "compare_buckets",
    "daily_lift",
    "metric_names",
    "segment_lift",
    "srm_test",
    "unit_sums",
]
