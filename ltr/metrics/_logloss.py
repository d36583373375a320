"""Log loss and normalised entropy of predicted probabilities."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ltr._validation import check_float
from ltr.metrics._checks import check_labels_and_probabilities
from ltr.metrics._warnings import warn_undefined

__all__ = ["logloss", "normalized_entropy"]

_EPS = 1e-15


def _mean_logloss(is_pos: np.ndarray, pred: np.ndarray, eps: float) -> float:
    p = np.clip(pred, eps, 1.0 - eps)
    with np.errstate(divide="ignore"):
        per_row = np.where(is_pos, np.log(p), np.log1p(-p))
    return float(-per_row.mean())


def logloss(y_true: ArrayLike, y_pred: ArrayLike, *, eps: float = _EPS) -> float:
    """Mean binary cross-entropy in nats.

    ``-mean(y * log(p) + (1 - y) * log(1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``
    so a confident wrong prediction of exactly 0 or 1 costs ``-log(eps)`` (about 34.5)
    instead of infinity.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities of the positive class, in [0, 1].
    eps : float, default=1e-15
        Clipping bound; 0 disables clipping (a wrong 0/1 prediction then gives inf).

    Returns
    -------
    float

    Examples
    --------
    >>> round(logloss([1, 0], [0.5, 0.5]), 6)
    0.693147
    """
    eps = check_float(eps, "eps", low=0, high=0.5, high_open=True)
    is_pos, pred = check_labels_and_probabilities(y_true, y_pred)
    return _mean_logloss(is_pos, pred, eps)


def normalized_entropy(y_true: ArrayLike, y_pred: ArrayLike, *, eps: float = _EPS) -> float:
    """Normalised entropy: log loss divided by the entropy of the base rate.

    ``NE = logloss(y, p) / H(r)`` with ``r = mean(y)`` and
    ``H(r) = -(r log r + (1 - r) log(1 - r))``: the log loss relative to always
    predicting the observed base rate (NE = 1 for that predictor, lower is better).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    eps : float, default=1e-15
        Clipping bound of the log loss, see :func:`logloss`.

    Returns
    -------
    float
        NaN with a :class:`MetricWarning` when ``y_true`` has one class (``H(r) = 0``).
    """
    eps = check_float(eps, "eps", low=0, high=0.5, high_open=True)
    is_pos, pred = check_labels_and_probabilities(y_true, y_pred)
    rate = float(is_pos.mean())
    if rate in (0.0, 1.0):
        warn_undefined("normalized_entropy is undefined when y_true has a single class; returning NaN.")
        return float("nan")
    base = -(rate * np.log(rate) + (1.0 - rate) * np.log1p(-rate))
    return _mean_logloss(is_pos, pred, eps) / base
