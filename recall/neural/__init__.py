"""Torch recall models: the non-inner-product (NIP) model searched over an HNSW graph and the
two-tower baseline, with their training samples and the streaming logQ frequency estimator.

Modules: ``_vocab`` (catalogue and profile encodings), ``_towers`` (item tower, profile
embeddings), ``_training_data`` (positives and cascade negatives), ``_freq_estimator``,
``_trainer`` (the sampled-softmax/cascade objective), ``_base`` (fit, query states, artifact
directory), ``_nip`` and ``_two_tower`` (the networks and sources).
"""
from __future__ import annotations

from recall.neural._freq_estimator import StreamingFrequencyEstimator
from recall.neural._nip import NIPNet, NIPRecall
from recall.neural._training_data import EXPOSED_LEVEL, RANK_SEGMENTS, PairSamples, build_training_samples
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
]
