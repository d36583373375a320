"""LightGBM pointwise CTR model (``objective="binary"``), deterministic by default.

Saved as LightGBM's text model beside ``params.json``; explanations are LightGBM's
``pred_contrib`` (SHAP) values.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ltr._validation import check_float, check_int
from ltr.models._base import _Base

__all__ = ["LightGBMRanker"]

_MODEL_FILE = "model.txt"
#: Below this many rows a prediction runs on one thread: thread start-up costs more than it
#: saves on one request's candidates.
_SMALL_BATCH = 4096


class LightGBMRanker(_Base):
    """LightGBM pointwise ranker (``objective="binary"``), deterministic by default.

    Saved as ``params.json`` and the LightGBM text model ``model.txt`` (no pickle).

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
    _param_names: ClassVar[tuple[str, ...]] = ("num_boost_round", "learning_rate", "num_leaves", "min_data_in_leaf",
                                               "lambda_l2", "feature_fraction", "num_threads", "seed")

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

    def _checked_params(self) -> dict[str, Any]:
        """LightGBM's parameter dict, each constructor parameter checked."""
        counts = {name: check_int(getattr(self, name), name, minimum=1)
                  for name in ("num_boost_round", "num_leaves", "min_data_in_leaf", "num_threads")}
        learning_rate = check_float(self.learning_rate, "learning_rate", low=0, low_open=True)
        feature_fraction = check_float(self.feature_fraction, "feature_fraction", low=0, high=1, low_open=True)
        return {
            "objective": "binary",
            "learning_rate": learning_rate,
            "num_leaves": counts["num_leaves"],
            "min_data_in_leaf": counts["min_data_in_leaf"],
            "lambda_l2": check_float(self.lambda_l2, "lambda_l2", low=0),
            "feature_fraction": feature_fraction,
            "num_threads": counts["num_threads"],
            "seed": check_int(self.seed, "seed"),
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def _fit(self, X: sp.csr_matrix | np.ndarray, y: np.ndarray, params: dict[str, Any]) -> None:
        import lightgbm as lgb

        # LightGBM forbids some characters in feature names; positions are what matter, the
        # readable names stay in feature_names_.
        data = lgb.Dataset(X, label=y, feature_name=[f"f{j}" for j in range(X.shape[1])],
                           params={"verbosity": -1}, free_raw_data=True)
        self.booster_ = lgb.train(params, data, num_boost_round=int(self.num_boost_round))

    def _predict(self, X: Any, raw_score: bool = False, pred_contrib: bool = False) -> Any:
        X = self._check_predict_X(X)
        threads = 1 if X.shape[0] < _SMALL_BATCH else int(self.num_threads)
        return self.booster_.predict(X, num_threads=threads, raw_score=raw_score, pred_contrib=pred_contrib)

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw score (logit) per row."""
        return np.asarray(self._predict(X, raw_score=True), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Click probability per row (float64)."""
        return np.asarray(self._predict(X), dtype=np.float64)

    def contributions(self, X: Any) -> np.ndarray:
        """SHAP values from ``pred_contrib=True``; the last column is the expected value.

        Returns
        -------
        ndarray of shape (n_samples, n_features + 1)
            Rows sum to the logit of :meth:`predict`.
        """
        out = self._predict(X, pred_contrib=True)
        out = out.toarray() if sp.issparse(out) else np.asarray(out)
        return np.asarray(out, dtype=np.float64)

    def _save_files(self, root: Path) -> dict[str, Any]:
        self.booster_.save_model(str(root / _MODEL_FILE))
        return {}

    def _load_files(self, root: Path, payload: dict[str, Any]) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(root / _MODEL_FILE))
        self.n_features_in_ = int(self.booster_.num_feature())
