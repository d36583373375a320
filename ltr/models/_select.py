"""Settings chosen on a validation day, then (optionally) a refit on the whole window.

:func:`fit_validated` is the training hygiene of ``ltr.train``: the last day of the training
window is held out; LightGBM boosts on the days before it and stops when the held-out day's
logloss stops improving, logistic regression tries each ``C`` of a grid on the days before it
and keeps the one with the lowest held-out logloss; then the model is refitted on every
training day with the chosen setting. What was chosen, and the held-out day's metrics, are
returned for the bundle.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from ltr.metrics import auc, logloss
from ltr.models._base import RankerModel
from ltr.models._lgbm import fit_early_stopped
from ltr.models._lr import LogisticRegressionRanker

__all__ = ["C_GRID", "check_validation_rows", "choose_C", "fit_validated", "held_out"]

#: Regularisation strengths logistic regression tries on the validation day.
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)


def held_out(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    both = np.unique(y).size == 2
    return {"logloss": float(logloss(y, p, eps=1e-15)), "auc": float(auc(y, p)) if both else None}


def fit_validated(name: str, params: dict[str, Any], X: Any, y: np.ndarray, valid_rows: np.ndarray,
                  names: Sequence[str], categorical: Sequence[int] = (), refit: bool = True,
                  C_grid: Sequence[float] = C_GRID) -> tuple[RankerModel, dict[str, Any]]:
    """Choose the model's setting on the validation rows, then refit on every row.

    Parameters
    ----------
    name : {"lr", "lgbm"}
    params : dict
        Model parameters; for ``"lr"`` a given ``C`` skips the grid, for ``"lgbm"``
        ``num_boost_round`` is the most rounds early stopping may keep.
    X : CSR matrix or ndarray
        Every training row.
    y : ndarray of 0/1
    valid_rows : ndarray of bool
        The validation rows (the last training day); the others are fitted on.
    names : sequence of str
        Column names.
    categorical : sequence of int
        Native categorical columns (LightGBM).
    refit : bool, default True
        Refit on every row with the chosen setting; False keeps the model fitted without
        the validation rows.
    C_grid : sequence of float
        Values of ``C`` tried by logistic regression.

    Returns
    -------
    model : RankerModel
    record : dict
        ``rows`` (fitted, validation), ``chosen`` (the setting), ``valid`` (held-out logloss
        and AUC of the model that chose it), ``refit``.
    """
    if name not in ("lr", "lgbm"):
        raise ValueError(f"name must be 'lr' or 'lgbm'. Got {name!r} instead.")
    fit_rows = ~valid_rows
    rows = check_validation_rows(int(fit_rows.sum()), int(y[fit_rows].sum()), int(valid_rows.sum()),
                                 int(y[valid_rows].sum()))
    if name == "lgbm":
        model, predicted = fit_early_stopped(params, X, y, valid_rows, names, categorical=categorical, refit=refit)
        return model, {"rows": rows, "chosen": {"num_boost_round": int(model.best_iteration_)},
                       "valid": held_out(y[valid_rows], predicted), "refit": bool(refit)}
    Xf, Xv, yf, yv = X[fit_rows], X[valid_rows], y[fit_rows], y[valid_rows]
    probe: LogisticRegressionRanker | None = None  # the model that chose the setting, when it can be kept
    if "C" in params:
        probe = LogisticRegressionRanker(**params).fit(Xf, yf, names)
        chosen = {"C": float(params["C"])}
        valid = held_out(yv, probe.predict(Xv))
        start = (probe.coef_, probe.intercept_)
    else:
        chosen, valid, start = _lr_grid(params, Xf, yf, Xv, yv, C_grid)
    record = {"rows": rows, "chosen": chosen, "valid": valid, "refit": bool(refit)}
    if refit:
        # From the chosen C's solution on the earlier days: the same optimum in fewer iterations.
        refitted = LogisticRegressionRanker(**{**params, **chosen})
        return refitted.fit_from(X, y, names, coef=start[0], intercept=start[1]), record
    if probe is None:  # the grid's probes are warm-started scikit-learn fits: fit the chosen C afresh
        probe = LogisticRegressionRanker(**{**params, **chosen}).fit(Xf, yf, names)
    return probe, record


def check_validation_rows(fit_rows: int, fit_clicks: int, valid_rows: int, valid_clicks: int) -> dict[str, int]:
    """The record's ``rows`` (fitted, validation), once both hold clicks and non-clicks.

    Raises
    ------
    ValueError
        The validation day or the days before it hold a single class.
    """
    if not (0 < valid_clicks < valid_rows and 0 < fit_clicks < fit_rows):
        raise ValueError("the validation day and the days before it must each hold clicks and non-clicks. "
                         f"Got {valid_clicks} clicks in {valid_rows} validation rows and "
                         f"{fit_clicks} in {fit_rows} earlier rows instead.")
    return {"fit": fit_rows, "valid": valid_rows}


def choose_C(fit: Callable[[float], Any], predict: Callable[[Any], np.ndarray], y_valid: np.ndarray,
             C_grid: Sequence[float]) -> tuple[dict[str, Any], dict[str, float | None], Any]:
    """The validation-day rule for logistic regression's ``C``, whatever fits the probes.

    Parameters
    ----------
    fit : callable
        ``fit(C)``: the solution for ``C`` on the days before the validation day (any object
        ``predict`` reads). Called from the smallest ``C`` up, so that it can start each probe
        from the previous solution (warm start).
    predict : callable
        ``predict(solution)``: the validation rows' click probabilities, in ``y_valid``'s order
        (called right after ``fit`` of the same ``C``).
    y_valid : ndarray of 0/1
    C_grid : sequence of float

    Returns
    -------
    chosen : dict
        ``{"C": C}``, the lowest validation logloss (the smallest ``C`` among equal losses).
    valid : dict
        Its validation logloss and AUC.
    solution
        What ``fit`` returned for it (where the refit starts).
    """
    predicted: dict[float, np.ndarray] = {}
    losses: dict[float, float] = {}
    solutions: dict[float, Any] = {}
    for C in sorted(float(c) for c in C_grid):
        solutions[C] = fit(C)
        predicted[C] = predict(solutions[C])
        losses[C] = float(logloss(y_valid, predicted[C], eps=1e-15))
    C = min(losses, key=losses.__getitem__)
    return {"C": C}, held_out(y_valid, predicted[C]), solutions[C]


def _lr_grid(params: dict[str, Any], Xf: Any, yf: np.ndarray, Xv: Any, yv: np.ndarray, C_grid: Sequence[float]
             ) -> tuple[dict[str, Any], dict[str, float | None], tuple[np.ndarray, float]]:
    """Each ``C`` of the grid, fitted on the earlier days with scikit-learn (:func:`choose_C`).

    The probes run from the smallest ``C`` up, each starting from the previous solution (warm
    start): the same optima, in a fraction of the lbfgs iterations. Returns the choice, its
    validation metrics and its solution (coefficients, intercept), where the refit starts.
    """
    from sklearn.linear_model import LogisticRegression

    checked = LogisticRegressionRanker(**params)._checked_params()
    probe = LogisticRegression(solver="lbfgs", max_iter=checked["max_iter"], tol=checked["tol"], warm_start=True)

    def fit(C: float) -> tuple[np.ndarray, float]:
        probe.set_params(C=C).fit(Xf, yf)
        return probe.coef_[0].copy(), float(probe.intercept_[0])

    def predict(solution: tuple[np.ndarray, float]) -> np.ndarray:
        # choose_C predicts right after fitting the same C: the probe holds that solution.
        return expit(probe.decision_function(Xv))

    with warnings.catch_warnings():
        # A probe that stops early is still a fair probe; the final fit warns on its own.
        warnings.simplefilter("ignore")
        return choose_C(fit, predict, yv, C_grid)
