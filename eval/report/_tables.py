"""The aggregated tables a readout is computed from, on one machine or summed over partitions.

:class:`ReadoutTables` holds

* ``units``: the unit-day table (:class:`eval.ab.UnitDays`) of all days, from which the A/B
  table, CUPED's pre-period, the A/A self-check, the daily view and the segments are computed;
* ``scores``: rows and clicks per (day, bucket, value of the online ``rank_score``)
  (:func:`eval.report._scores.score_counts`), from which the AUC table and the calibration
  section are computed (None when the logs have no ``rank_score``).

GAUC needs counts per (user, score) of the readout window; they are reduced to one row per user
where they are computed (:attr:`eval.report._build.LogFacts.user_aucs`).

Both engines build the same tables (the single-machine one from the whole samples frame, the
Dask one per partition, then summed: integer counts, exact) and hand them to the same code, so
every number of the readout is the same by construction.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from eval.ab import ORDER, UnitDays, reduce_unit_days, unit_days
from eval.report._scores import reduce_score_counts, score_counts

__all__ = ["ReadoutTables", "partial_tables", "reduce_tables"]

#: The score column of the logs (the production ranker's logged score).
ONLINE = "rank_score"


@dataclass(frozen=True)
class ReadoutTables:
    """The aggregated tables of a readout (see the module docstring)."""

    units: UnitDays
    scores: pd.DataFrame | None

    @classmethod
    def of(cls, samples: pd.DataFrame, unit: str, segment: str | None = None) -> ReadoutTables:
        """The tables of a whole (checked) samples frame."""
        return reduce_tables([partial_tables(samples, unit, segment)], unit, segment)


def partial_tables(samples: pd.DataFrame, unit: str, segment: str | None = None) -> dict:
    """The tables of one part of the samples (a partition), to be added by :func:`reduce_tables`."""
    return {"units": unit_days(samples, unit, segment, order=ORDER),
            "scores": score_counts(samples, ONLINE) if ONLINE in samples.columns else None}


def reduce_tables(parts: Sequence[dict], unit: str, segment: str | None = None) -> ReadoutTables:
    """The :class:`ReadoutTables` of the parts of :func:`partial_tables` (in any order)."""
    units = reduce_unit_days([p["units"] for p in parts], unit, segment is not None)
    scores = [p["scores"] for p in parts if p["scores"] is not None]
    return ReadoutTables(units=UnitDays(units, unit, segment),
                         scores=reduce_score_counts(scores) if scores else None)
