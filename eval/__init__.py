"""eval: exact offline metrics, A/B statistics, funnel consistency and the experiment readout.

The command line is ``python -m eval.report LOGS`` (``eval/report/__main__.py``).
"""
from __future__ import annotations

from eval.ab import ABResult, SRMResult, compare_all, compare_buckets, srm_test, unit_sums
from eval.funnel import log_funnel, recall_funnel
from eval.metrics import (
    GroupAUC,
    MetricWarning,
    auc,
    calibration_table,
    coverage_at_k,
    expected_calibration_error,
    gauc,
    hitrate_at_k,
    logloss,
    mean_hit_position,
    ndcg_at_k,
    normalized_entropy,
    predicted_actual_ratio,
    recall_at_k,
)
from eval.online_offline import auc_table
from eval.report import build_readout, render

__all__ = [
    "ABResult",
    "GroupAUC",
    "MetricWarning",
    "SRMResult",
    "auc",
    "auc_table",
    "build_readout",
    "calibration_table",
    "compare_all",
    "compare_buckets",
    "coverage_at_k",
    "expected_calibration_error",
    "gauc",
    "hitrate_at_k",
    "log_funnel",
    "logloss",
    "mean_hit_position",
    "ndcg_at_k",
    "normalized_entropy",
    "predicted_actual_ratio",
    "recall_at_k",
    "recall_funnel",
    "render",
    "srm_test",
    "unit_sums",
]
