"""Exact offline metrics: AUC and group AUC (ties get half credit), logloss, normalised
entropy, calibration, and hitrate / recall / NDCG / coverage / hit position at K.
"""
from __future__ import annotations

from eval.metrics._metrics import (
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

__all__ = [
    "GroupAUC",
    "MetricWarning",
    "auc",
    "calibration_table",
    "coverage_at_k",
    "expected_calibration_error",
    "gauc",
    "hitrate_at_k",
    "logloss",
    "mean_hit_position",
    "ndcg_at_k",
    "normalized_entropy",
    "predicted_actual_ratio",
    "recall_at_k",
]
