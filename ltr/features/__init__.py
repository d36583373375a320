"""Leakage-free ranking features: point-in-time statistics, smoothing, binning, encoding, CSR.

:class:`FeatureBuilder` orchestrates feature blocks over the prepared frame; each piece is
usable on its own. A newcomer's map of ``ltr/features/``:

- ``_builder.py``: :class:`FeatureBuilder` (fit, transform, state) and :class:`FeatureMatrix`;
- ``_plan.py``: which key families and columns are in use (``KEY_FAMILIES``);
- ``_frame.py``: the prepared frame every block reads (ids, day, hour, position, table rows);
- ``_tables.py``: the point-in-time sources (counting tables, click history);
- ``_blocks.py``: what a feature block is; the blocks: ``_counting.py`` (windowed counts and
  smoothed CTR), ``_attributes.py`` (attribute tables; numeric item attributes),
  ``_recent_clicks.py`` (cosine to the recent clicks), ``_categories.py`` (categoricals);
- ``_day_tables.py``: per-day tables of counts (:class:`DayTableCache`) for fast repeated transforms;
- the pieces: ``_pit_stats.py`` (:class:`DailyStats`), ``_smoothing.py`` (:class:`BetaPrior`),
  ``_binning.py`` (:class:`QuantileBinner`), ``_encoding.py`` (:class:`CategoryEncoder`),
  ``_sparse.py`` (:func:`codes_to_csr`, :func:`write_libsvm`), ``_space.py`` (:class:`FeatureSpace`).
"""
from __future__ import annotations

from ltr.features._binning import BinCollapseWarning, QuantileBinner
from ltr.features._builder import FeatureBuilder, FeatureMatrix
from ltr.features._day_tables import DayTableCache
from ltr.features._encoding import CategoryEncoder
from ltr.features._pit_stats import COUNT_NAMES, DailyStats
from ltr.features._plan import KEY_FAMILIES, context_candidates
from ltr.features._samples import OUTCOME_PREFIX, labelled_samples, outcome_columns
from ltr.features._smoothing import BetaPrior, PriorFitWarning, fit_beta_prior
from ltr.features._space import FeatureSpace
from ltr.features._sparse import codes_to_csr, write_libsvm

__all__ = [
    "COUNT_NAMES",
    "KEY_FAMILIES",
    "OUTCOME_PREFIX",
    "BetaPrior",
    "BinCollapseWarning",
    "CategoryEncoder",
    "DailyStats",
    "DayTableCache",
    "FeatureBuilder",
    "FeatureMatrix",
    "FeatureSpace",
    "PriorFitWarning",
    "QuantileBinner",
    "codes_to_csr",
    "context_candidates",
    "fit_beta_prior",
    "labelled_samples",
    "outcome_columns",
    "write_libsvm",
]
