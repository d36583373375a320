"""Calibration of predicted probabilities: reliability table, expected calibration error,
mean predicted vs actual rate per segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import ndtri

from ltr._validation import check_float, check_int
from ltr.metrics._checks import as_1d, check_labels_and_probabilities, show

__all__ = ["calibration_table", "calibration_table_counts", "expected_calibration_error", "predicted_actual_ratio"]


def _equal_mass_bins(count: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin (0..m-1, non-decreasing) of each distinct prediction (ascending) seen ``count`` times.

    The run of a prediction starting at sorted position ``i`` goes to bin
    ``floor(i * n_bins / n)``; unused bin numbers are then closed up. Equal predictions
    never straddle bins, which keeps the table independent of row order.
    """
    run_start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    raw = run_start * n_bins // int(count.sum())
    return np.concatenate(([0], np.cumsum(raw[1:] != raw[:-1]))).astype(np.int64)


def _wilson(
    positives: np.ndarray, count: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    z = ndtri(0.5 + confidence / 2.0)
    n = count.astype(np.float64)
    rate = positives / n
    denom = 1.0 + z * z / n
    centre = (rate + z * z / (2.0 * n)) / denom
    half = z / denom * np.sqrt(rate * (1.0 - rate) / n + z * z / (4.0 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def calibration_table(
    y_true: ArrayLike, y_pred: ArrayLike, n_bins: int = 10, *, confidence: float = 0.95
) -> pd.DataFrame:
    """Reliability table over equal-mass bins of the predictions.

    Rows are sorted by prediction and cut into ``n_bins`` bins of (about) equal count; a
    run of equal predictions that starts at sorted position ``i`` (0-based) belongs
    wholly to bin ``floor(i * n_bins / n)``, so ties never straddle bins. Bins left empty
    by this are dropped and the rest renumbered 0, 1, ... (fewer than ``n_bins`` rows when
    predictions have big ties or ``n < n_bins``).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    n_bins : int, default=10
        Requested number of bins (>= 1).
    confidence : float, default=0.95
        Level of the Wilson score interval for the actual rate.

    Returns
    -------
    pandas.DataFrame
        Index ``bin`` (0 = lowest predictions), columns ``pred_min``, ``pred_max``,
        ``count``, ``positives``, ``mean_predicted``, ``actual_rate``
        (= positives / count), ``ci_low``, ``ci_high`` (Wilson interval of
        ``actual_rate``, no continuity correction).
    """
    n_bins = check_int(n_bins, "n_bins", minimum=1)
    confidence = check_float(confidence, "confidence", low=0, high=1, low_open=True, high_open=True)
    is_pos, pred = check_labels_and_probabilities(y_true, y_pred)
    values, inverse, count = np.unique(pred, return_inverse=True, return_counts=True)
    positives = np.bincount(inverse.ravel(), weights=is_pos, minlength=values.size).astype(np.int64)
    return calibration_table_counts(values, count, positives, n_bins, confidence=confidence)


def calibration_table_counts(pred: ArrayLike, count: ArrayLike, positives: ArrayLike, n_bins: int = 10, *,
                             confidence: float = 0.95) -> pd.DataFrame:
    """:func:`calibration_table` of rows given as counts per distinct prediction.

    Parameters
    ----------
    pred : array-like of shape (m,)
        Distinct predicted probabilities, ascending.
    count, positives : array-like of int, shape (m,)
        Rows and positive rows with each prediction (``count >= 1``).
    n_bins, confidence
        See :func:`calibration_table`.

    Returns
    -------
    pandas.DataFrame
        The table of :func:`calibration_table` (``mean_predicted`` is the count-weighted mean).
    """
    n_bins = check_int(n_bins, "n_bins", minimum=1)
    confidence = check_float(confidence, "confidence", low=0, high=1, low_open=True, high_open=True)
    pred, count, positives = (np.asarray(a) for a in (pred, count, positives))
    if pred.size == 0 or np.any(pred[1:] <= pred[:-1]) or np.any(count < 1):
        raise ValueError(f"pred must be distinct ascending predictions, each with count >= 1. Got "
                         f"{pred.size} predictions and counts {count[:5].tolist()} instead.")
    if pred[0] < 0.0 or pred[-1] > 1.0:
        raise ValueError(f"pred must contain probabilities in [0, 1]. Got {show(pred[0] if pred[0] < 0 else pred[-1])} "
                         "instead.")
    bins = _equal_mass_bins(count, n_bins)
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    ends = np.concatenate((starts[1:], [pred.size])) - 1
    bin_count = np.add.reduceat(count.astype(np.int64), starts)
    bin_positives = np.add.reduceat(positives.astype(np.int64), starts)
    mean_pred = np.add.reduceat(pred.astype(np.float64) * count, starts) / bin_count
    ci_low, ci_high = _wilson(bin_positives, bin_count, confidence)
    return pd.DataFrame(
        {
            "pred_min": pred[starts].astype(np.float64),
            "pred_max": pred[ends].astype(np.float64),
            "count": bin_count,
            "positives": bin_positives,
            "mean_predicted": mean_pred,
            "actual_rate": bin_positives / bin_count,
            "ci_low": ci_low,
            "ci_high": ci_high,
        },
        index=pd.RangeIndex(starts.size, name="bin"),
    )


def expected_calibration_error(y_true: ArrayLike, y_pred: ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error over the equal-mass bins of :func:`calibration_table`.

    ``ECE = sum_b (count_b / n) * |mean_predicted_b - actual_rate_b|``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    n_bins : int, default=10
        Requested number of equal-mass bins.

    Returns
    -------
    float
        In [0, 1]; 0 for a predictor calibrated within every bin.
    """
    table = calibration_table(y_true, y_pred, n_bins)
    gap = (table["mean_predicted"] - table["actual_rate"]).abs().to_numpy()
    count = table["count"].to_numpy()
    return float(np.dot(count, gap) / count.sum())


def predicted_actual_ratio(
    y_true: ArrayLike, y_pred: ArrayLike, segment: ArrayLike
) -> pd.DataFrame:
    """Mean predicted vs actual rate per segment (e.g. per position, category, bucket).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    segment : array-like of shape (n,)
        Segment of each row; any hashable values. Missing values form their own segment
        (they are not dropped).

    Returns
    -------
    pandas.DataFrame
        Indexed by the sorted segment values (index name: the Series name, else
        ``"segment"``), columns ``count``, ``positives``, ``mean_predicted``,
        ``actual_rate`` and ``ratio = mean_predicted / actual_rate`` (> 1: the model
        over-predicts; inf when the actual rate is 0 and the mean prediction is not,
        NaN when both are 0).
    """
    is_pos, pred = check_labels_and_probabilities(y_true, y_pred)
    n = is_pos.shape[0]
    name = getattr(segment, "name", None) if isinstance(segment, pd.Series) else None
    name = "segment" if name is None else name
    seg = as_1d(segment, "segment")
    if len(seg) != n:
        raise ValueError(
            f"segment must have the same length as y_true ({n}). Got {len(seg)} instead."
        )
    frame = pd.DataFrame({"_seg": seg, "_y": is_pos.astype(np.int64), "_p": pred})
    grouped = frame.groupby("_seg", sort=True, dropna=False)
    out = pd.DataFrame(
        {
            "count": grouped["_y"].size().astype(np.int64),
            "positives": grouped["_y"].sum().astype(np.int64),
            "mean_predicted": grouped["_p"].mean(),
        }
    )
    out["actual_rate"] = out["positives"] / out["count"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out["mean_predicted"].to_numpy() / out["actual_rate"].to_numpy()
    out.index.name = name
    return out
