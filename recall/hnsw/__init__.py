"""HNSW graphs: hnswlib indexes read as numpy arrays, and a layered beam search that scores
each layer's frontier with any batched scoring function (the NIP network, or exact distances).
"""
from __future__ import annotations

from recall.hnsw._format import read_graph
from recall.hnsw._graph import HNSWGraph, LevelLinks, build_index, save
from recall.hnsw._search import LayeredBeamSearch, ScoreFn, SearchResult, exact_search

__all__ = [
    "HNSWGraph",
    "LayeredBeamSearch",
    "LevelLinks",
    "ScoreFn",
    "SearchResult",
    "build_index",
    "exact_search",
    "read_graph",
    "save",
]
