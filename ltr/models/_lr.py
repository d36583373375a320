"""Logistic regression CTR model: scikit-learn's lbfgs with the default (unit) class weights.

Re-weighting classes shifts the intercept and destroys the calibration of the predicted CTR
(field note 004). A run that stops before converging is never silent: it warns and records
``converged_ = False``.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ltr._validation import check_float, check_int
from ltr.models._base import ModelConvergenceWarning, _Base

__all__ = ["LogisticRegressionRanker"]

_COEF_FILE = "coef.npz"


class LogisticRegressionRanker(_Base):
    """Logistic regression CTR model (scikit-learn lbfgs, default class weights).

    Saved as ``params.json`` and ``coef.npz`` (read with ``allow_pickle=False``).

    Parameters
    ----------
    C : float, default 1.0
        Inverse L2 regularisation strength.
    max_iter : int, default 1000
        lbfgs iteration limit. Hitting it emits :class:`ModelConvergenceWarning` and sets
        ``converged_ = False``; it is never silent.
    tol : float, default 1e-4
        lbfgs tolerance (scikit-learn's default).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int
    feature_names_ : list of str
    """

    name: ClassVar[str] = "lr"
    _param_names: ClassVar[tuple[str, ...]] = ("C", "max_iter", "tol")

    def __init__(self, C: float = 1.0, max_iter: int = 1000, tol: float = 1e-4):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def _checked_params(self) -> dict[str, Any]:
        return {"C": check_float(self.C, "C", low=0, low_open=True),
                "max_iter": check_int(self.max_iter, "max_iter", minimum=1),
                "tol": check_float(self.tol, "tol", low=0, low_open=True)}

    def fit_from(self, X: Any, y: Any, feature_names: Sequence[str] | None = None, *, coef: Any,
                 intercept: float) -> Self:
        """:meth:`fit`, with lbfgs started from ``coef`` and ``intercept`` instead of zeros.

        The optimum is the same (within ``tol``); a start near it (the solution of the same
        ``C`` on most of the rows, as in the refit after the validation day) saves iterations.

        Parameters
        ----------
        X, y, feature_names
            As in :meth:`fit`.
        coef : array-like of shape (n_features,)
        intercept : float

        Returns
        -------
        self
        """
        params, X, y, names, _ = self._check_fit_inputs(X, y, feature_names, None)
        start = np.asarray(coef, dtype=np.float64)
        if start.shape != (X.shape[1],) or not np.isfinite(start).all():
            raise ValueError(f"coef must hold {X.shape[1]} finite values (one per column of X). "
                             f"Got shape {start.shape} instead.")
        self._fit(X, y, params, [], None, start=(start, check_float(intercept, "intercept")))
        self.n_features_in_ = X.shape[1]
        self.feature_names_ = names
        return self

    def _fit(self, X: sp.csr_matrix | np.ndarray, y: np.ndarray, params: dict[str, Any], categorical: list[int],
             valid: tuple[Any, np.ndarray] | None, start: tuple[np.ndarray, float] | None = None) -> None:
        # One-hot inputs: categorical columns are already indicators; the regularisation is
        # chosen on validation rows by the caller (ltr.train), so both are unused here.
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(solver="lbfgs", warm_start=start is not None, **params)
        if start is not None:  # scikit-learn's warm start reads the previous solution from these
            model.coef_ = start[0][None, :].copy()
            model.intercept_ = np.array([start[1]])
        with warnings.catch_warnings():
            # sklearn's own warning is replaced by ours, which names the model and the fix.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        self._store_solution(model.coef_[0], model.intercept_[0], int(np.max(model.n_iter_)), params["max_iter"],
                             stacklevel=4)  # the caller of fit

    def _store_solution(self, coef: np.ndarray, intercept: float, n_iter: int, max_iter: int,
                        stacklevel: int = 2) -> None:
        """Keep an lbfgs solution (here or from the Dask engine's solver); warn when it hit ``max_iter``."""
        self.coef_ = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept_ = float(intercept)
        self.n_iter_ = int(n_iter)
        self.converged_ = self.n_iter_ < max_iter
        if not self.converged_:
            warnings.warn(
                f"LogisticRegressionRanker did not converge in max_iter={self.max_iter} lbfgs iterations; "
                "raise max_iter or rescale the continuous features.",
                ModelConvergenceWarning,
                stacklevel=stacklevel,
            )

    def decision_function(self, X: Any) -> np.ndarray:
        """Logit ``X @ coef_ + intercept_`` per row."""
        X = self._check_predict_X(X)
        return np.asarray(X @ self.coef_, dtype=np.float64).ravel() + self.intercept_

    def predict(self, X: Any) -> np.ndarray:
        """Click probability per row (float64)."""
        return expit(self.decision_function(X))

    def contributions(self, X: Any) -> np.ndarray:
        """Weight x value per feature, plus the intercept in the last column.

        Returns
        -------
        ndarray of shape (n_samples, n_features + 1)
            Rows sum to the logit of :meth:`predict`. Inactive features contribute 0.
        """
        X = self._check_predict_X(X)
        dense = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        out = np.empty((dense.shape[0], dense.shape[1] + 1), dtype=np.float64)
        np.multiply(dense, self.coef_, out=out[:, :-1])
        out[:, -1] = self.intercept_
        return out

    def _save_files(self, root: Path) -> dict[str, Any]:
        np.savez(root / _COEF_FILE, coef=self.coef_, intercept=np.array([self.intercept_]))
        return {"n_iter": self.n_iter_, "converged": self.converged_}

    def _load_files(self, root: Path, payload: dict[str, Any]) -> None:
        with np.load(root / _COEF_FILE, allow_pickle=False) as data:
            self.coef_ = np.ascontiguousarray(data["coef"], dtype=np.float64)
            self.intercept_ = float(data["intercept"][0])
        self.n_iter_ = int(payload["n_iter"])
        self.converged_ = bool(payload["converged"])
        self.n_features_in_ = int(self.coef_.shape[0])
