"""Exact score-quality metrics of a pointwise ranker's predictions.

They take 1-D array-likes (numpy arrays, lists, pandas Series):

* :func:`auc`, :func:`gauc` -- ROC AUC and per-group (per-user) AUC, ties get half credit;
  GAUC is exposure-weighted by default (:class:`GroupAUC` holds the value and group counts);
* :func:`logloss`, :func:`normalized_entropy`;
* :func:`calibration_table` (:func:`calibration_table_counts` from counts per distinct
  prediction), :func:`expected_calibration_error`,
  :func:`predicted_actual_ratio`.

Undefined values (a single class) are NaN and come with a :class:`MetricWarning`; empty
input raises ``ValueError``. ``eval.metrics`` re-exports all of them beside the
candidate-list metrics.
"""
from __future__ import annotations

from ltr.metrics._auc import GroupAUC, auc, gauc
from ltr.metrics._calibration import (
    calibration_table,
    calibration_table_counts,
    expected_calibration_error,
    predicted_actual_ratio,
)
from ltr.metrics._logloss import logloss, normalized_entropy
from ltr.metrics._warnings import MetricWarning

__all__ = [
    "GroupAUC",
    "MetricWarning",
    "auc",
    "calibration_table",
    "calibration_table_counts",
    "expected_calibration_error",
    "gauc",
    "logloss",
    "normalized_entropy",
    "predicted_actual_ratio",
]
