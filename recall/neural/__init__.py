"""Torch recall models: the non-inner-product (NIP) model searched over an HNSW graph and the
two-tower baseline, with their training samples and the streaming logQ frequency estimator.
"""
from __future__ import annotations

from recall.neural._freq_estimator import StreamingFrequencyEstimator
from recall.neural._nip import NIPNet, NIPRecall
from recall.neural._training_data import (
    EXPOSED_LEVEL,
    RANK_SEGMENTS,
    PairSamples,
    build_training_samples,
    click_history_events,
)
from recall.neural._two_tower import TwoTowerNet, TwoTowerRecall

__all__ = [
    "EXPOSED_LEVEL",
    "RANK_SEGMENTS",
    "NIPNet",
    "NIPRecall",
    "PairSamples",
    "StreamingFrequencyEstimator",
    "TwoTowerNet",
    "TwoTowerRecall",
    "build_training_samples",
    "click_history_events",
]
