"""What training a ranker shares between the engines: the window check, the model fit with the
validation day, the held-out metrics, the per-model feature defaults.

``ltr.train`` (single machine) and ``ltr.distributed`` (``ltr.train --engine dask``) both use
these, so the two engines choose, fit and report the same way.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ltr.logs import format_day
from ltr.metrics import auc, logloss
from ltr.models import ModelConvergenceWarning, RankerModel, fit_validated, make_model

__all__ = ["MODEL_FEATURE_DEFAULTS", "check_window", "default_feature_params", "evaluation_metrics",
           "fit_estimator", "metrics_by_day"]


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    keep = np.isfinite(score)
    if keep.sum() == 0 or np.unique(y[keep]).size < 2:
        return None
    return auc(y[keep], score[keep])


def evaluation_metrics(y, predicted, online=None) -> dict[str, Any]:
    """Offline metrics of predicted click probabilities, beside the online AUC.

    Parameters
    ----------
    y : array-like of 0/1
    predicted : array-like of probabilities
    online : array-like, optional
        The logged online scores (``rank_score``) of the same rows; rows where it is not
        finite are left out of ``online_auc`` (``online_auc_rows`` counts those used).

    Returns
    -------
    dict
        ``rows, clicks, auc, logloss, mean_predicted_ctr, actual_ctr, calibration_ratio
        (mean predicted / actual), online_auc, online_auc_rows``. AUCs are ``None`` when a
        class is missing; ``online_auc`` is ``None`` without online scores.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    n = int(y.size)
    actual = float(y.mean()) if n else float("nan")
    mean_pred = float(p.mean()) if n else float("nan")
    out: dict[str, Any] = {
        "rows": n,
        "clicks": int(y.sum()),
        "auc": _auc(y, p) if n else None,
        "logloss": logloss(y, p, eps=1e-15) if n else None,
        "mean_predicted_ctr": mean_pred,
        "actual_ctr": actual,
        "calibration_ratio": mean_pred / actual if n and actual > 0 else None,
        "online_auc": None,
        "online_auc_rows": 0,
    }
    if online is not None and n:
        online = np.asarray(online, dtype=np.float64)
        out["online_auc"] = _auc(y, online)
        out["online_auc_rows"] = int(np.isfinite(online).sum())
    return out


def metrics_by_day(frame: pd.DataFrame, predicted: np.ndarray) -> list[dict[str, Any]]:
    days = frame["day"].to_numpy()
    online = frame["rank_score"].to_numpy(dtype=np.float64, na_value=np.nan) if "rank_score" in frame else None
    y = frame["click"].to_numpy()
    rows = []
    # One entry per evaluated day (a handful), so a loop over days is fine.
    for day in np.unique(days):
        mask = days == day
        rows.append({"day": format_day(int(day)),
                     **evaluation_metrics(y[mask], predicted[mask], None if online is None else online[mask])})
    return rows


#: Feature-pipeline defaults per model, on top of ``FeatureBuilder``'s own, chosen on the real
#: development slice (bench/bench_real_ranker.py, held-out 2022-04-29..30) and confirmed on the
#: fixture world (train-end 2026-01-15).
#:
#: LR: one-hot ids (user, item, author ...) with the item and user statistics over 7 days and
#: all history; no per-category aggregates, no user x category / author / position crosses, no
#: recency: a linear model on the bins of many correlated windows fits the day-to-day noise of
#: the training days (real slice AUC / GAUC 0.7187 / 0.6381 with them, 0.7250 / 0.6482 without;
#: fixture held-out AUC 0.7265 -> 0.7289).
#:
#: LightGBM: every statistic, but no id categoricals: native categoricals of ids overfit (users
#: have ~4.5 exposures over six days, most videos a handful); without them the real slice goes
#: from 0.7204 / 0.6411 to 0.7259 / 0.6452 (31 leaves) and the fixture from 0.7117 to 0.7330; the
#: point-in-time statistics of the same keys carry their signal. Windows of 1 and 7 days (and
#: all history) rather than 1, 3 and 7: fewer, less redundant columns; with feature_fraction
#: 0.5 the real slice goes from 0.7271 / 0.6475 to 0.7289 / 0.6497 (means of three seeds) and
#: the fixture from 0.7353 to 0.7356.
MODEL_FEATURE_DEFAULTS: dict[str, dict[str, Any]] = {
    "lr": {"key_families": ("item", "user"), "cross_keys": False, "recency": False, "windows": (7,)},
    "lgbm": {"ids": False, "windows": (1, 7)},
}


def default_feature_params(model: str, overrides: dict | None = None) -> dict[str, Any]:
    """FeatureBuilder parameters :func:`train_ranker` uses for ``model``, with ``overrides`` on top."""
    return {**MODEL_FEATURE_DEFAULTS.get(model, {}), **(overrides or {})}


def check_window(first: int, last: int, end: int, eval_end: int | None) -> int:
    """The last evaluation day, after checking ``end`` (last training day) against the logs' days.

    Parameters
    ----------
    first, last : int
        First and last day (day index) of the logs' samples.
    end : int
        Last training day.
    eval_end : int or None
        Last evaluation day; None: ``last``.

    Returns
    -------
    stop : int
    """
    if not first <= end < last:
        raise ValueError(
            f"train_end must be a day from {format_day(first)} to {format_day(last - 1)} (the logs span "
            f"{format_day(first)} to {format_day(last)} and at least one later day is needed for evaluation). "
            f"Got {format_day(end)} instead."
        )
    stop = last if eval_end is None else eval_end
    if not end < stop <= last:
        raise ValueError(
            f"eval_end must be a day from {format_day(end + 1)} to {format_day(last)}. Got {format_day(stop)} instead."
        )
    return stop


def fit_estimator(model: str, model_params: dict[str, Any], X: Any, y: np.ndarray, days: np.ndarray,
                  names: list[str], categorical: list[int], validation: bool, refit: bool
                  ) -> tuple[RankerModel, dict[str, Any] | None, float]:
    """The model fitted on the training rows (with the validation day when asked and possible).

    Returns the model, the validation record (None without one) and the fit seconds;
    convergence warnings are passed on to the caller.
    """
    fit_started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelConvergenceWarning)
        if validation and np.unique(days).size > 1:
            estimator, chosen = fit_validated(model, dict(model_params), X, y, days == days.max(), names,
                                              categorical, refit=refit)
        else:
            estimator, chosen = make_model(model, **model_params).fit(X, y, names, categorical=categorical), None
    fit_seconds = time.perf_counter() - fit_started
    for item in caught:
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return estimator, chosen, fit_seconds
