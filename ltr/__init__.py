"""ltr: leakage-free features, LR and LightGBM rankers, and the log contract they rest on.

Public names are imported lazily (PEP 562) so that ``python -m ltr.<module>`` runs each
command-line module exactly once.
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
    "bucket_funnel": "ltr.logs",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports('ltr', _EXPORTS)
