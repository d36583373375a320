"""Leakage-free ranking features: point-in-time statistics, smoothing, binning, encoding, CSR.

:class:`FeatureBuilder` orchestrates the pieces; each piece is usable on its own.
"""
from __future__ import annotations

from ltr.features._binning import BinCollapseWarning, QuantileBinner
from ltr.features._builder import KEY_FAMILIES, FeatureBuilder, FeatureMatrix
from ltr.features._encoding import CategoryEncoder
from ltr.features._pit_stats import COUNT_NAMES, DailyStats
from ltr.features._smoothing import BetaPrior, PriorFitWarning, fit_beta_prior
from ltr.features._sparse import FeatureSpace, codes_to_csr, write_libsvm

__all__ = [
    "COUNT_NAMES",
    "KEY_FAMILIES",
    "BetaPrior",
    "BinCollapseWarning",
    "CategoryEncoder",
    "DailyStats",
    "FeatureBuilder",
    "FeatureMatrix",
    "FeatureSpace",
    "PriorFitWarning",
    "QuantileBinner",
    "codes_to_csr",
    "fit_beta_prior",
    "write_libsvm",
]
