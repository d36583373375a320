"""The aggregated tables a readout is computed from, on one machine or summed over partitions.

:class:`ReadoutTables` holds

* ``units``: the unit-day table (:class:`eval.ab.UnitDays`) of all days, from which the A/B
  table, CUPED's pre-period, the A/A self-check, the daily view and the segments are computed;
* ``scores((lo, hi))``: the AUC table and the calibration section of the online ``rank_score``
  on the days ``lo..hi`` (:func:`eval.report._scores.summarize_scores`), computed from the rows
  and clicks per (day, bucket, score value) where those counts are;
* ``user_aucs((lo, hi))``: one row per user for GAUC (:func:`eval.report._scores.user_aucs`).

The single-machine engine builds them from its samples (:meth:`ReadoutTables.of`); the Dask one
per partition, added up on the workers (:mod:`eval.report._dask`). Counts are integers (their
sums are exact) and the tables come out sorted by their keys whatever the partitioning, so the
same code gives the same numbers on both engines.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from eval.ab import ORDER, UnitDays, reduce_unit_days, unit_days
from eval.online_offline import reduce_score_counts, score_counts, user_aucs, user_score_counts
from eval.report._scores import ScoreSummary, summarize_scores

__all__ = ["ONLINE", "ReadoutTables", "combine_partials", "in_days", "partial_tables"]

#: The score column of the logs (the production ranker's logged score).
ONLINE = "rank_score"

Days = tuple[int, int]


def in_days(samples: pd.DataFrame, days: Days) -> pd.DataFrame:
    """The rows of ``samples`` on the days ``lo..hi``."""
    return samples.loc[samples["day"].between(days[0], days[1]).to_numpy()]


def partial_tables(samples: pd.DataFrame, unit: str, segment: str | None = None) -> dict:
    """The unit-day table and the score counts of one part of the samples (a partition)."""
    return {"units": unit_days(samples, unit, segment, order=ORDER),
            "scores": score_counts(samples, ONLINE) if ONLINE in samples.columns else None}


def combine_partials(parts: Sequence[dict], unit: str, segment: str | None = None) -> dict:
    """Partial tables (:func:`partial_tables`) added up into one, in any order and grouping."""
    scores = [p["scores"] for p in parts if p["scores"] is not None]
    return {"units": reduce_unit_days([p["units"] for p in parts], unit, segment is not None),
            "scores": reduce_score_counts(scores) if scores else None}


@dataclass(frozen=True)
class ReadoutTables:
    """The aggregated tables of a readout (see the module docstring); ``scores`` and
    ``user_aucs`` are None when the logs have no ``rank_score``."""

    units: UnitDays
    scores: Callable[[Days], ScoreSummary] | None = None
    user_aucs: Callable[[Days], pd.DataFrame] | None = None

    @classmethod
    def of(cls, samples: pd.DataFrame, unit: str, segment: str | None = None) -> ReadoutTables:
        """The tables of a whole (checked) samples frame."""
        # One part is already reduced (sorted, one row per key): nothing left to add up.
        whole = partial_tables(samples, unit, segment)
        units = UnitDays(whole["units"], unit, segment)
        cells = whole["scores"]
        if cells is None:
            return cls(units)

        def aucs(days: Days) -> pd.DataFrame:
            return user_aucs(user_score_counts(in_days(samples, days), ONLINE))

        return cls(units, scores=lambda days: summarize_scores(cells, days), user_aucs=aucs)
