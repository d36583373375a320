"""recall: candidate sources (NIP over an HNSW graph, two-tower, item-CF, hot list) and a merger.

``recall.load(directory)`` loads any saved source; every source follows
:class:`recall.base.RecallSource`. Names are imported lazily (PEP 562).
"""
from __future__ import annotations

from ltr._lazy import lazy_exports

_EXPORTS = {
    "load": "recall.base",
    "RecallSource": "recall.base",
    "CANDIDATE_COLUMNS": "recall.base",
    "SOURCES": "recall.base",
    "merge": "recall.merge",
    "MergedRecall": "recall.merge",
    "NIPRecall": "recall.nip",
    "TwoTowerRecall": "recall.two_tower",
    "ItemCFRecall": "recall.itemcf",
    "HotRecall": "recall.hot",
    "build_training_samples": "recall.training_data",
    "StreamingFrequencyEstimator": "recall.freq_estimator",
    "HNSWGraph": "recall.hnsw_graph",
    "read_graph": "recall.hnsw_graph",
    "build_index": "recall.hnsw_graph",
    "LayeredBeamSearch": "recall.hnsw_search",
    "SearchResult": "recall.hnsw_search",
    "exact_search": "recall.hnsw_search",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports('recall', _EXPORTS)
