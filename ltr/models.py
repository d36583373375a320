"""Pointwise CTR rankers behind one small interface: logistic regression and LightGBM.

Both models take a feature matrix (``scipy.sparse`` CSR or a dense ndarray) and binary
labels, predict click probabilities, explain a prediction as per-feature contributions on
the logit scale, and save themselves to a directory in safe formats (JSON + ``npz`` for
logistic regression, LightGBM's text model for the booster). Nothing is pickled.

The logistic regression is scikit-learn's ``LogisticRegression(solver="lbfgs")`` with the
default (unit) class weights: re-weighting classes shifts the intercept and destroys the
calibration of the predicted CTR (field note 004). A run that stops before converging is
never silent: it warns and records ``converged_ = False``.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

__all__ = [
    "MODELS",
    "LightGBMRanker",
    "LogisticRegressionRanker",
    "ModelConvergenceWarning",
    "RankerModel",
    "load_model",
    "make_model",
]

_PARAMS_FILE = "params.json"
_SMALL_BATCH = 4096


class ModelConvergenceWarning(UserWarning):
    """The optimiser stopped at its iteration limit before meeting its tolerance."""


@runtime_checkable
class RankerModel(Protocol):
    """What the bundle, the scorer and the explainer need from a model.

    ``predict`` returns click probabilities; ``contributions`` returns an
    ``(n_samples, n_features + 1)`` array on the logit scale whose last column is the bias
    (intercept or expected value) and whose rows sum to ``logit(predict(X))``.
    """

    name: ClassVar[str]

    def fit(self, X, y, feature_names: Sequence[str] | None = None) -> RankerModel: ...

    def predict(self, X) -> np.ndarray: ...

    def contributions(self, X) -> np.ndarray: ...

    def save(self, directory: str | Path) -> list[str]: ...

    @classmethod
    def load(cls, directory: str | Path) -> RankerModel: ...


def _check_X(X, name: str = "X") -> sp.csr_matrix | np.ndarray:
    if sp.issparse(X):
        X = sp.csr_matrix(X) if X.format != "csr" else X
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix. Got shape {X.shape} instead.")
        if not np.issubdtype(X.dtype, np.floating):
            X = X.astype(np.float64)
        return X
    if isinstance(X, np.ndarray) and X.ndim == 2 and np.issubdtype(X.dtype, np.number):
        return X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float64)
    shape = getattr(X, "shape", None)
    raise TypeError(
        f"{name} must be a scipy.sparse matrix or a 2-D numeric numpy array. "
        f"Got {type(X).__name__} with shape {shape} instead."
    )


def _check_y(y, n_rows: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(f"y must be a 1-D array of {n_rows} labels (one per row of X). Got shape {y.shape} instead.")
    if not np.issubdtype(y.dtype, np.number) or np.isnan(y.astype(np.float64)).any():
        raise ValueError(f"y must hold numeric 0/1 labels. Got dtype {y.dtype} instead.")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y must hold only 0 and 1. Got {y[row].item()!r} at row {row} instead.")
    if np.unique(y).size < 2:
        raise ValueError(f"y must contain both classes 0 and 1. Got only {int(y[0])} instead.")
    return y.astype(np.float64)


def _check_feature_names(feature_names: Sequence[str] | None, n_features: int) -> list[str]:
    if feature_names is None:
        return [f"f{j}" for j in range(n_features)]
    names = [str(name) for name in feature_names]
    if len(names) != n_features:
        raise ValueError(
            f"feature_names must have one name per column of X ({n_features}). Got {len(names)} names instead."
        )
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = next(name for name in names if name in seen or seen.add(name))
        raise ValueError(f"feature_names must be unique. Got {dup!r} more than once instead.")
    return names


def _check_params_positive(params: dict[str, float], kinds: dict[str, type]) -> None:
    for key, value in params.items():
        kind = kinds[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{key} must be an int >= 1. Got {value!r} instead.")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
                              or not np.isfinite(value) or value <= 0):
            raise ValueError(f"{key} must be a positive finite number. Got {value!r} instead.")


class _Base:
    name: ClassVar[str] = ""

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first.")

    def _check_predict_X(self, X):
        self._check_fitted()
        X = _check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must have {self.n_features_in_} columns (the features the model was fitted on). "
                f"Got {X.shape[1]} instead."
            )
        return X

    def get_params(self) -> dict:
        """Constructor parameters (JSON-ready)."""
        return {key: getattr(self, key) for key in self._param_names}

    def _write_params(self, root: Path, extra: dict) -> None:
        payload = {"model": self.name, "params": self.get_params(), "feature_names": self.feature_names_, **extra}
        (root / _PARAMS_FILE).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def _read_params(cls, root: Path) -> dict:
        path = root / _PARAMS_FILE
        if not path.is_file():
            raise ValueError(f"{root} must hold a saved {cls.__name__} ({_PARAMS_FILE}). Got no such file instead.")
        payload = json.loads(path.read_text())
        if payload.get("model") != cls.name:
            raise ValueError(f"{root} must hold a {cls.name!r} model. Got {payload.get('model')!r} instead.")
        return payload


class LogisticRegressionRanker(_Base):
    """Logistic regression CTR model (scikit-learn lbfgs, default class weights).

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
    _param_names = ("C", "max_iter", "tol")

    def __init__(self, C: float = 1.0, max_iter: int = 1000, tol: float = 1e-4):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, feature_names: Sequence[str] | None = None) -> LogisticRegressionRanker:
        """Fit on a feature matrix and 0/1 click labels.

        Parameters
        ----------
        X : scipy.sparse matrix or ndarray of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) with values in {0, 1}
        feature_names : sequence of str, optional

        Returns
        -------
        self
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        _check_params_positive({"C": self.C, "max_iter": self.max_iter, "tol": self.tol},
                               {"C": float, "max_iter": int, "tol": float})
        X = _check_X(X)
        y = _check_y(y, X.shape[0])
        names = _check_feature_names(feature_names, X.shape[1])
        model = LogisticRegression(solver="lbfgs", C=float(self.C), max_iter=int(self.max_iter), tol=float(self.tol))
        with warnings.catch_warnings():
            # sklearn's own warning is replaced by ours, which names the model and the fix.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        self.coef_ = np.ascontiguousarray(model.coef_[0], dtype=np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.n_iter_ = int(np.max(model.n_iter_))
        self.converged_ = self.n_iter_ < int(self.max_iter)
        self.n_features_in_ = X.shape[1]
        self.feature_names_ = names
        if not self.converged_:
            warnings.warn(
                f"LogisticRegressionRanker did not converge in max_iter={self.max_iter} lbfgs iterations; "
                "raise max_iter or rescale the continuous features.",
                ModelConvergenceWarning,
                stacklevel=2,
            )
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logit ``X @ coef_ + intercept_`` per row."""
        X = self._check_predict_X(X)
        return np.asarray(X @ self.coef_, dtype=np.float64).ravel() + self.intercept_

    def predict(self, X) -> np.ndarray:
        """Click probability per row (float64)."""
        return expit(self.decision_function(X))

    def contributions(self, X) -> np.ndarray:
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

    def save(self, directory: str | Path) -> list[str]:
        """Write ``params.json`` and ``coef.npz`` under ``directory``; return the file names."""
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        np.savez(root / "coef.npz", coef=self.coef_, intercept=np.array([self.intercept_]))
        self._write_params(root, {"n_iter": self.n_iter_, "converged": self.converged_})
        return [_PARAMS_FILE, "coef.npz"]

    @classmethod
    def load(cls, directory: str | Path) -> LogisticRegressionRanker:
        """Inverse of :meth:`save` (``np.load`` with ``allow_pickle=False``)."""
        root = Path(directory)
        payload = cls._read_params(root)
        model = cls(**payload["params"])
        with np.load(root / "coef.npz", allow_pickle=False) as data:
            model.coef_ = np.ascontiguousarray(data["coef"], dtype=np.float64)
            model.intercept_ = float(data["intercept"][0])
        model.n_iter_ = int(payload["n_iter"])
        model.converged_ = bool(payload["converged"])
        model.n_features_in_ = int(model.coef_.shape[0])
        model.feature_names_ = _check_feature_names(payload["feature_names"], model.n_features_in_)
        return model


class LightGBMRanker(_Base):
    """LightGBM pointwise ranker (``objective="binary"``), deterministic by default.

    Parameters
    ----------
    num_boost_round : int, default 300
    learning_rate : float, default 0.05
    num_leaves : int, default 31
    min_data_in_leaf : int, default 100
    lambda_l2 : float, default 1.0
    feature_fraction : float, default 1.0
    num_threads : int, default 2
        Used for training and prediction.
    seed : int, default 0
        With ``deterministic=True`` and a fixed ``num_threads`` the model is reproducible.

    Attributes
    ----------
    booster_ : lightgbm.Booster
    n_features_in_ : int
    feature_names_ : list of str
    """

    name: ClassVar[str] = "lgbm"
    _param_names = ("num_boost_round", "learning_rate", "num_leaves", "min_data_in_leaf", "lambda_l2",
                    "feature_fraction", "num_threads", "seed")

    def __init__(self, num_boost_round: int = 300, learning_rate: float = 0.05, num_leaves: int = 31,
                 min_data_in_leaf: int = 100, lambda_l2: float = 1.0, feature_fraction: float = 1.0,
                 num_threads: int = 2, seed: int = 0):
        self.num_boost_round = num_boost_round
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.lambda_l2 = lambda_l2
        self.feature_fraction = feature_fraction
        self.num_threads = num_threads
        self.seed = seed

    def _lgb_params(self) -> dict:
        _check_params_positive(
            {"num_boost_round": self.num_boost_round, "num_leaves": self.num_leaves,
             "min_data_in_leaf": self.min_data_in_leaf, "num_threads": self.num_threads,
             "learning_rate": self.learning_rate, "feature_fraction": self.feature_fraction},
            {"num_boost_round": int, "num_leaves": int, "min_data_in_leaf": int, "num_threads": int,
             "learning_rate": float, "feature_fraction": float},
        )
        if not 0 < self.feature_fraction <= 1:
            raise ValueError(f"feature_fraction must be in (0, 1]. Got {self.feature_fraction!r} instead.")
        if isinstance(self.lambda_l2, bool) or not isinstance(self.lambda_l2, (int, float)) or self.lambda_l2 < 0:
            raise ValueError(f"lambda_l2 must be a number >= 0. Got {self.lambda_l2!r} instead.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"seed must be an int. Got {self.seed!r} instead.")
        return {
            "objective": "binary",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_data_in_leaf": int(self.min_data_in_leaf),
            "lambda_l2": float(self.lambda_l2),
            "feature_fraction": float(self.feature_fraction),
            "num_threads": int(self.num_threads),
            "seed": int(self.seed),
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def fit(self, X, y, feature_names: Sequence[str] | None = None) -> LightGBMRanker:
        """Train ``num_boost_round`` trees on a feature matrix and 0/1 click labels.

        Parameters
        ----------
        X : scipy.sparse matrix or ndarray of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) with values in {0, 1}
        feature_names : sequence of str, optional

        Returns
        -------
        self
        """
        import lightgbm as lgb

        params = self._lgb_params()
        X = _check_X(X)
        y = _check_y(y, X.shape[0])
        names = _check_feature_names(feature_names, X.shape[1])
        # LightGBM forbids some characters in feature names; positions are what matter, the
        # readable names stay in feature_names_.
        data = lgb.Dataset(X, label=y, feature_name=[f"f{j}" for j in range(X.shape[1])],
                           params={"verbosity": -1}, free_raw_data=True)
        self.booster_ = lgb.train(params, data, num_boost_round=int(self.num_boost_round))
        self.n_features_in_ = X.shape[1]
        self.feature_names_ = names
        return self

    def _predict(self, X, **kwargs):
        X = self._check_predict_X(X)
        # Thread start-up costs more than it saves on one request's candidates.
        threads = 1 if X.shape[0] < _SMALL_BATCH else int(self.num_threads)
        return self.booster_.predict(X, num_threads=threads, **kwargs)

    def decision_function(self, X) -> np.ndarray:
        """Raw score (logit) per row."""
        return np.asarray(self._predict(X, raw_score=True), dtype=np.float64)

    def predict(self, X) -> np.ndarray:
        """Click probability per row (float64)."""
        return np.asarray(self._predict(X), dtype=np.float64)

    def contributions(self, X) -> np.ndarray:
        """SHAP values from ``pred_contrib=True``; the last column is the expected value.

        Returns
        -------
        ndarray of shape (n_samples, n_features + 1)
            Rows sum to the logit of :meth:`predict`.
        """
        out = self._predict(X, pred_contrib=True)
        out = out.toarray() if sp.issparse(out) else np.asarray(out)
        return np.asarray(out, dtype=np.float64)

    def save(self, directory: str | Path) -> list[str]:
        """Write ``params.json`` and the LightGBM text model ``model.txt``; return the file names."""
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(root / "model.txt"))
        self._write_params(root, {})
        return [_PARAMS_FILE, "model.txt"]

    @classmethod
    def load(cls, directory: str | Path) -> LightGBMRanker:
        """Inverse of :meth:`save` (LightGBM text model; no pickle)."""
        import lightgbm as lgb

        root = Path(directory)
        payload = cls._read_params(root)
        model = cls(**payload["params"])
        model.booster_ = lgb.Booster(model_file=str(root / "model.txt"))
        model.n_features_in_ = int(model.booster_.num_feature())
        model.feature_names_ = _check_feature_names(payload["feature_names"], model.n_features_in_)
        return model


MODELS: dict[str, type] = {LogisticRegressionRanker.name: LogisticRegressionRanker,
                           LightGBMRanker.name: LightGBMRanker}


def make_model(name: str, **params) -> RankerModel:
    """Construct a model by its registry name (``"lr"`` or ``"lgbm"``).

    Raises
    ------
    ValueError
        An unknown name or parameter.
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}. Got {name!r} instead.")
    cls = MODELS[name]
    unknown = sorted(set(params) - set(cls._param_names))
    if unknown:
        raise ValueError(
            f"parameter for model {name!r} must be one of {list(cls._param_names)}. Got {unknown[0]!r} instead."
        )
    return cls(**params)


def load_model(directory: str | Path) -> RankerModel:
    """Load a model saved by ``save`` whatever its kind (read from ``params.json``)."""
    root = Path(directory)
    path = root / _PARAMS_FILE
    if not path.is_file():
        raise ValueError(f"{root} must hold a saved model ({_PARAMS_FILE}). Got no such file instead.")
    name = json.loads(path.read_text()).get("model")
    if name not in MODELS:
        raise ValueError(f"model in {path} must be one of {sorted(MODELS)}. Got {name!r} instead.")
    return MODELS[name].load(root)
