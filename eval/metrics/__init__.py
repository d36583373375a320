"""Exact offline metrics: AUC and group AUC (ties get half credit), logloss, normalised
entropy, calibration, and hitrate / recall / NDCG / coverage / hit position at K.

The score-quality metrics live in :mod:`ltr.metrics` (the ranker's own training report uses
them, and ``ltr`` cannot import ``eval``) and are re-exported here unchanged
(``eval.metrics.auc is ltr.metrics.auc``); the candidate-list metrics, used only to evaluate
recall, live here.
"""
from __future__ import annotations

from eval.metrics._lists import coverage_at_k, hitrate_at_k, mean_hit_position, ndcg_at_k, recall_at_k
from ltr.metrics import (
    GroupAUC,
    MetricWarning,
    auc,
    calibration_table,
    calibration_table_counts,
    expected_calibration_error,
    gauc,
    logloss,
    normalized_entropy,
    predicted_actual_ratio,
)

__all__ = [
    "GroupAUC",
    "MetricWarning",
    "auc",
    "calibration_table",
    "calibration_table_counts",
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
