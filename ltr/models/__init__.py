"""Pointwise CTR rankers behind one small interface: logistic regression and LightGBM.

Both models take a feature matrix (``scipy.sparse`` CSR or a dense ndarray) and binary
labels, predict click probabilities, explain a prediction as per-feature contributions on
the logit scale, and ``save(directory)`` / ``load(directory)`` themselves in safe formats
(JSON + ``npz`` for logistic regression, LightGBM's text model for the booster). Nothing is
pickled.

Modules: ``_base`` (the :class:`RankerModel` interface, input checks, persistence), ``_lr``,
``_lgbm``, ``_compiled`` (LightGBM trees compiled for serving), ``_registry`` (:func:`make_model`, :func:`load_model`).
"""
from __future__ import annotations

from ltr.models._base import ModelConvergenceWarning, RankerModel
from ltr.models._compiled import CompiledTrees, compile_trees
from ltr.models._lgbm import LightGBMRanker
from ltr.models._lr import LogisticRegressionRanker
from ltr.models._registry import MODELS, load_model, make_model
from ltr.models._select import C_GRID, fit_validated

__all__ = [
    "C_GRID",
    "MODELS",
    "CompiledTrees",
    "LightGBMRanker",
    "LogisticRegressionRanker",
    "ModelConvergenceWarning",
    "RankerModel",
    "compile_trees",
    "fit_validated",
    "load_model",
    "make_model",
]
