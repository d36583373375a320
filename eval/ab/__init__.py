"""A/B statistics: per-bucket metrics with the user as the randomisation unit, delta-method
lift intervals and p-values, sample-ratio-mismatch test, multiple-testing adjustment, CUPED.
"""
from __future__ import annotations

from eval.ab._compare import TABLE_COLUMNS, ABResult, compare_all, compare_buckets
from eval.ab._srm import SRM_THRESHOLD, SRMResult, srm_test
from eval.ab._units import unit_sums

__all__ = [
    "SRM_THRESHOLD",
    "TABLE_COLUMNS",
    "ABResult",
    "SRMResult",
    "compare_all",
    "compare_buckets",
    "srm_test",
    "unit_sums",
]
