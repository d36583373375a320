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
    "fuse": "recall.merge",
    "learn_weights": "recall.merge",
    "learn_weights_by_k": "recall.merge",
    "MergedRecall": "recall.merge",
    "ReferenceRecall": "recall.references",
    "NIPRecall": "recall.neural",
    "TwoTowerRecall": "recall.neural",
    "ItemCFRecall": "recall.itemcf",
    "HotRecall": "recall.hot",
    "build_training_samples": "recall.neural",
    "StreamingFrequencyEstimator": "recall.neural",
    "HNSWGraph": "recall.hnsw",
    "read_graph": "recall.hnsw",
    "build_index": "recall.hnsw",
    "LayeredBeamSearch": "recall.hnsw",
    "SearchResult": "recall.hnsw",
    "exact_search": "recall.hnsw",
}

__all__ = [
    "CANDIDATE_COLUMNS",
    "SOURCES",
    "HNSWGraph",
    "HotRecall",
    "ItemCFRecall",
    "LayeredBeamSearch",
    "MergedRecall",
    "NIPRecall",
    "RecallSource",
    "ReferenceRecall",
    "SearchResult",
    "StreamingFrequencyEstimator",
    "TwoTowerRecall",
    "build_index",
    "build_training_samples",
    "exact_search",
    "fuse",
    "learn_weights",
    "learn_weights_by_k",
    "load",
    "merge",
    "read_graph",
]
__getattr__, __dir__ = lazy_exports('recall', _EXPORTS)
