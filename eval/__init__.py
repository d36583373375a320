"""eval: exact offline metrics, A/B statistics, funnel consistency and the experiment readout.

Public names are imported lazily (PEP 562) so ``python -m eval.report`` runs once.
"""
from __future__ import annotations

from ltr._lazy import lazy_exports

_EXPORTS = {
    **{name: "eval.metrics" for name in (
        "auc", "gauc", "GroupAUC", "logloss", "normalized_entropy", "calibration_table",
        "expected_calibration_error", "predicted_actual_ratio", "hitrate_at_k", "recall_at_k",
        "ndcg_at_k", "coverage_at_k", "mean_hit_position", "MetricWarning")},
    **{name: "eval.ab" for name in ("ABResult", "SRMResult", "compare_all", "compare_buckets", "srm_test", "unit_sums")},
    "log_funnel": "eval.funnel",
    "recall_funnel": "eval.funnel",
    "auc_table": "eval.online_offline",
    "build_readout": "eval.report",
    "render": "eval.report",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports('eval', _EXPORTS)
