"""ltr: leakage-free features, LR and LightGBM rankers, and the log contract they rest on.

Public names are imported lazily (PEP 562): ``python -m ltr.train``, ``ltr.score`` and
``ltr.explain`` are modules directly inside this package, and ``runpy`` imports the package
before it runs one of them as ``__main__``. Importing them here eagerly would load each command
module a second time under its own name (runpy warns that the result is unpredictable), so a
name is imported from its module only when first used. It also keeps ``import ltr`` light for
online code that only needs the ranker.

Layering (each module imports only those before it): ``_validation``, ``_cli``, ``artifacts``
-> ``logs`` -> ``features`` -> ``models`` -> ``bundle`` -> ``_contributions`` -> ``serving``
-> ``train``, ``score``, ``explain``; ``simulate`` builds on ``logs``.
"""
from __future__ import annotations

from ltr._lazy import lazy_exports

_EXPORTS = {
    "Logs": "ltr.logs",
    "LogValidationError": "ltr.logs",
    "read_logs": "ltr.logs",
    "from_frames": "ltr.logs",
    "from_interactions": "ltr.logs",
    "JoinReport": "ltr.logs",
    "JoinResult": "ltr.logs",
    "join_samples": "ltr.logs",
    "bucket_funnel": "ltr.logs",
    "WorldConfig": "ltr.simulate",
    "simulate_world": "ltr.simulate",
    "Ranker": "ltr.serving",
    "train_ranker": "ltr.train",
    "prepare_training": "ltr.train",
    "score_logs": "ltr.score",
    "explain_sample": "ltr.explain",
    "RankerModel": "ltr.models",
    "LogisticRegressionRanker": "ltr.models",
    "LightGBMRanker": "ltr.models",
    "make_model": "ltr.models",
    "load_model": "ltr.models",
    "ArtifactError": "ltr.artifacts",
    "FeatureBuilder": "ltr.features",
    "FeatureMatrix": "ltr.features",
    "DailyStats": "ltr.features",
    "QuantileBinner": "ltr.features",
    "CategoryEncoder": "ltr.features",
    "BetaPrior": "ltr.features",
    "fit_beta_prior": "ltr.features",
    "FeatureSpace": "ltr.features",
    "codes_to_csr": "ltr.features",
    "write_libsvm": "ltr.features",
}

# Spelled out (not ``sorted(_EXPORTS)``) so linters can read it; tests/ltr/test_package.py
# checks that the two agree.
__all__ = [
    "ArtifactError",
    "BetaPrior",
    "CategoryEncoder",
    "DailyStats",
    "FeatureBuilder",
    "FeatureMatrix",
    "FeatureSpace",
    "JoinReport",
    "JoinResult",
    "LightGBMRanker",
    "LogValidationError",
    "LogisticRegressionRanker",
    "Logs",
    "QuantileBinner",
    "Ranker",
    "RankerModel",
    "WorldConfig",
    "bucket_funnel",
    "codes_to_csr",
    "explain_sample",
    "fit_beta_prior",
    "from_frames",
    "from_interactions",
    "join_samples",
    "load_model",
    "make_model",
    "prepare_training",
    "read_logs",
    "score_logs",
    "simulate_world",
    "train_ranker",
    "write_libsvm",
]
__getattr__, __dir__ = lazy_exports("ltr", _EXPORTS)
