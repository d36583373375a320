"""LightGBM pointwise CTR model (``objective="binary"``), deterministic by default.

Saved as LightGBM's text model beside ``params.json``; explanations are LightGBM's
``pred_contrib`` (SHAP) values.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ltr._validation import check_float, check_int
from ltr.models._base import _Base

__all__ = ["LightGBMRanker", "fit_early_stopped"]

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
        Rounds to boost; with validation rows, the most rounds (early stopping picks fewer).
    learning_rate : float, default 0.08
        About 40% fewer rounds (both runs of the validated fit) than 0.05 at the same held-out
        AUC / GAUC on the real development slice and the same AUC on the simulated fixture
        (bench/bench_real_ranker.py; README "Defaults, chosen by measurement").
    num_leaves : int, default 7
        Small trees: on the real development slice (and the simulated fixture) 7 leaves ranked
        best on the held-out days among 7, 15 and 31 (bench/bench_real_ranker.py).
    min_data_in_leaf : int, default 50
    lambda_l2 : float, default 10.0
    max_bin : int, default 255
        Most bins per column (LightGBM's own default). 31 bins rank as well on the real slice
        but save only part of the binning (a round costs the same: its histograms scale with
        rows x columns) and, with ``learning_rate=0.08``, cost the fixture 0.0016 AUC.
    feature_fraction : float, default 0.5
        Share of the columns each tree may split on (half: the statistics' windows and families
        are redundant; measured on the real slice against 0.8).
    bagging_fraction : float, default 0.8
        Share of rows drawn (every round) for each tree; 1.0 turns bagging off.
    min_data_per_group : int, default 50
        Rows a category needs to be split on its own (native categorical columns).
    cat_smooth : float, default 20.0
        Smoothing of a category's gradient statistics towards the whole (native categoricals).
    cat_l2 : float, default 10.0
        L2 regularisation of categorical splits.
    early_stopping_rounds : int, default 30
        With validation rows: stop when their logloss has not improved for this many rounds.
    num_threads : int, default 2
        Used for training and prediction.
    seed : int, default 0
        With ``deterministic=True`` and a fixed ``num_threads`` the model is reproducible.

    Attributes
    ----------
    booster_ : lightgbm.Booster
    best_iteration_ : int
        Rounds kept (all of them without validation rows).
    n_features_in_ : int
    feature_names_ : list of str
    """

    name: ClassVar[str] = "lgbm"
    _param_names: ClassVar[tuple[str, ...]] = (
        "num_boost_round", "learning_rate", "num_leaves", "min_data_in_leaf", "lambda_l2", "max_bin",
        "feature_fraction", "bagging_fraction", "min_data_per_group", "cat_smooth", "cat_l2", "early_stopping_rounds",
        "num_threads", "seed")

    def __init__(self, num_boost_round: int = 300, learning_rate: float = 0.08, num_leaves: int = 7,
                 min_data_in_leaf: int = 50, lambda_l2: float = 10.0, max_bin: int = 255,
                 feature_fraction: float = 0.5, bagging_fraction: float = 0.8, min_data_per_group: int = 50,
                 cat_smooth: float = 20.0, cat_l2: float = 10.0, early_stopping_rounds: int = 30, num_threads: int = 2,
                 seed: int = 0):
        self.num_boost_round = num_boost_round
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.lambda_l2 = lambda_l2
        self.max_bin = max_bin
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.min_data_per_group = min_data_per_group
        self.cat_smooth = cat_smooth
        self.cat_l2 = cat_l2
        self.early_stopping_rounds = early_stopping_rounds
        self.num_threads = num_threads
        self.seed = seed

    def _checked_params(self) -> dict[str, Any]:
        """LightGBM's parameter dict, each constructor parameter checked."""
        counts = {name: check_int(getattr(self, name), name, minimum=1)
                  for name in ("num_boost_round", "num_leaves", "min_data_in_leaf", "num_threads",
                               "min_data_per_group", "early_stopping_rounds")}
        fractions = {name: check_float(getattr(self, name), name, low=0, high=1, low_open=True)
                     for name in ("feature_fraction", "bagging_fraction")}
        return {
            "objective": "binary",
            "learning_rate": check_float(self.learning_rate, "learning_rate", low=0, low_open=True),
            "num_leaves": counts["num_leaves"],
            "min_data_in_leaf": counts["min_data_in_leaf"],
            "lambda_l2": check_float(self.lambda_l2, "lambda_l2", low=0),
            # Bins are fixed when the dataset is built: _dataset passes these parameters.
            "max_bin": check_int(self.max_bin, "max_bin", minimum=2),
            "feature_fraction": fractions["feature_fraction"],
            "bagging_fraction": fractions["bagging_fraction"],
            "bagging_freq": 1 if fractions["bagging_fraction"] < 1 else 0,
            "min_data_per_group": counts["min_data_per_group"],
            "cat_smooth": check_float(self.cat_smooth, "cat_smooth", low=0),
            "cat_l2": check_float(self.cat_l2, "cat_l2", low=0),
            "num_threads": counts["num_threads"],
            "seed": check_int(self.seed, "seed"),
            "deterministic": True,
            # Histograms by column: with feature_fraction < 1 only the drawn columns are built
            # (~40% less boosting time than row-wise on the real slice; deterministic needs one
            # of the two forced).
            "force_col_wise": True,
            "verbosity": -1,
        }

    def _fit(self, X: sp.csr_matrix | np.ndarray, y: np.ndarray, params: dict[str, Any], categorical: list[int],
             valid: tuple[Any, np.ndarray] | None) -> None:
        import lightgbm as lgb

        data = _dataset(X, y, categorical, params)
        rounds = int(self.num_boost_round)
        if valid is None:
            self.booster_ = lgb.train(params, data, num_boost_round=rounds)
            self.best_iteration_ = rounds
            return
        held = lgb.Dataset(valid[0], label=valid[1], reference=data)
        self.booster_, self.best_iteration_ = self._early_stopped(params, data, held)

    def _early_stopped(self, params: dict[str, Any], data: Any, held: Any) -> tuple[Any, int]:
        """Boost on ``data`` until ``held``'s logloss stops improving; the booster cut to its best round."""
        import lightgbm as lgb

        stop = lgb.early_stopping(int(self.early_stopping_rounds), verbose=False)
        booster = lgb.train(params, data, num_boost_round=int(self.num_boost_round), valid_sets=[held],
                            callbacks=[stop])
        best = max(int(booster.best_iteration), 1)
        # Keep only the chosen rounds, so the model file and every prediction use them.
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best)), best

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
        return {"best_iteration": int(self.best_iteration_)}

    def _load_files(self, root: Path, payload: dict[str, Any]) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(root / _MODEL_FILE))
        self.n_features_in_ = int(self.booster_.num_feature())
        self.best_iteration_ = int(payload.get("best_iteration", self.booster_.num_trees()))


def _dataset(X: Any, y: np.ndarray, categorical: list[int], params: dict[str, Any]) -> Any:
    """LightGBM's binned dataset of ``X``, binned with the training parameters."""
    import lightgbm as lgb

    # LightGBM forbids some characters in feature names; positions are what matter, the
    # readable names stay in feature_names_.
    names = [f"f{j}" for j in range(X.shape[1])]
    return lgb.Dataset(X, label=y, feature_name=names, categorical_feature=categorical or "auto", params=params,
                       free_raw_data=True)


def fit_early_stopped(params: dict[str, Any], X: Any, y: Any, valid_rows: np.ndarray,
                      feature_names: Sequence[str] | None = None, *, categorical: Sequence[int] | None = None,
                      refit: bool = True) -> tuple[LightGBMRanker, np.ndarray]:
    """Rounds chosen by early stopping on ``valid_rows``, then (``refit``) boosted on every row.

    ``X`` is binned once, from every row (bin edges use no labels): the early-stopping run
    boosts on a subset of that dataset and the refit on all of it, so both see the same bins
    and the binning is not paid twice (it is about a fifth of the fit on the real slice).

    Parameters
    ----------
    params : dict
        :class:`LightGBMRanker` parameters; ``num_boost_round`` is the most rounds kept.
    X : CSR matrix or ndarray
        Every training row.
    y : array-like of 0/1
    valid_rows : ndarray of bool
        The validation rows; the others are boosted on until their logloss stops improving.
    feature_names, categorical
        As in :meth:`LightGBMRanker.fit`.
    refit : bool, default True
        Boost the chosen number of rounds on every row; False keeps the early-stopped model.

    Returns
    -------
    model : LightGBMRanker
        Refitted: ``num_boost_round`` is the chosen number of rounds. Not refitted: the
        parameters as given, ``best_iteration_`` the chosen rounds.
    valid_predicted : ndarray of float64
        The early-stopped model's click probability of each validation row.
    """
    import lightgbm as lgb

    probe = LightGBMRanker(**params)
    checked, X, y, names, cats = probe._check_fit_inputs(X, y, feature_names, categorical)
    valid_rows = np.asarray(valid_rows)
    if valid_rows.dtype != bool or valid_rows.shape != (X.shape[0],):
        raise ValueError(f"valid_rows must be a boolean mask of the {X.shape[0]} rows of X. "
                         f"Got dtype {valid_rows.dtype} and shape {valid_rows.shape} instead.")
    whole = _dataset(X, y, cats, checked).construct()
    # Both subsets share the whole dataset's bins: nothing is binned again.
    held = whole.subset(np.flatnonzero(valid_rows))
    booster, best = probe._early_stopped(checked, whole.subset(np.flatnonzero(~valid_rows)), held)
    predicted = np.asarray(booster.predict(X[valid_rows], num_threads=1), dtype=np.float64)
    model = probe
    if refit:
        model = LightGBMRanker(**{**params, "num_boost_round": best})
        booster = lgb.train(model._checked_params(), whole, num_boost_round=best)
    model.booster_, model.best_iteration_ = booster, best
    model.n_features_in_, model.feature_names_ = X.shape[1], names
    return model, predicted
