"""Per-(unit, day) sums: the aggregated table every A/B statistic of the readout is computed from.

A :class:`UnitDays` holds one row per (unit[, user], bucket, day[, segment value]) with the
integer sums ``exposures``, ``clicks`` and ``orders`` and the key of the group's first exposure
(``first_*`` columns: the smallest of the ``order`` columns, or the row number). The per-unit
sums of the A/B table, the pre-period sums of CUPED, the (unit, day) sums of the daily view, the
(segment, unit) sums of the segments and the first-appearance order of the units that the A/A
self-check splits are all sums or minima over its rows, so a table computed per partition and
reduced with :func:`reduce_unit_days` is the table of the whole frame: integer sums are exact,
and the rows come out sorted by their key whatever the partitioning, which makes every float
computed from the table the same on one machine and on a cluster.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ltr.metrics._checks import show

__all__ = ["MISSING_SEGMENT", "NO_BUCKET", "ORDER", "SUMS", "UnitDays", "reduce_unit_days", "segment_labels",
           "unit_days"]

SUMS = ("exposures", "clicks", "orders")
#: The samples' order (:func:`ltr.join_samples`): a unit first appears at its smallest such key.
ORDER = ("ts", "request_id", "position")
#: The level of rows whose segment value is missing (kept, never dropped).
MISSING_SEGMENT = "(missing)"
#: The bucket of every row of samples without a ``bucket`` column (logs without an experiment).
NO_BUCKET = ""


def segment_labels(values: pd.Series) -> np.ndarray:
    """The segment level of each value: its string, :data:`MISSING_SEGMENT` when missing."""
    return values.astype(str).where(values.notna(), MISSING_SEGMENT).to_numpy(dtype=object)


def _keys(unit: str, segment: bool) -> list[str]:
    return [f"{unit}_id", *(["user_id"] if unit == "request" else []), "bucket", "day",
            *(["segment"] if segment else [])]


def _first_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("first_")]


def reduce_unit_days(parts: Sequence[pd.DataFrame], unit: str, segment: bool = False) -> pd.DataFrame:
    """The sums of partial unit-day tables (or of exposure rows with unit counts), one row per key.

    Counts are added, ``first_*`` keys take the (lexicographically) smallest; the result is
    sorted by its key columns.
    """
    frame = pd.concat(list(parts), ignore_index=True) if len(parts) != 1 else parts[0]
    first = _first_columns(frame)
    frame = frame.sort_values(first, kind="stable")
    grouped = frame.groupby(_keys(unit, segment), sort=True, dropna=False)
    out = grouped[list(SUMS)].sum().astype(np.int64)
    for col in first:
        out[col] = grouped[col].first()
    return out.reset_index()


def unit_days(samples: pd.DataFrame, unit: str, segment: str | None = None,
              order: Sequence[str] | None = None) -> pd.DataFrame:
    """The unit-day table of an exposure-level samples frame (already checked).

    ``order`` names the columns whose smallest value is a group's first exposure (default:
    the row number, i.e. the frame's own order); ``segment`` a column whose levels
    (:func:`segment_labels`) become a key.
    """
    key = f"{unit}_id"
    frame = pd.DataFrame({key: samples[key].to_numpy()})
    if unit == "request":
        frame["user_id"] = samples["user_id"].to_numpy()
    frame["bucket"] = (samples["bucket"].astype(str).to_numpy(dtype=object) if "bucket" in samples.columns
                       else np.full(len(samples), NO_BUCKET, dtype=object))
    frame["day"] = samples["day"].to_numpy(np.int64)
    if segment is not None:
        frame["segment"] = segment_labels(samples[segment])
    frame["exposures"] = np.ones(len(samples), dtype=np.int64)
    frame["clicks"] = samples["click"].to_numpy(np.int64)
    frame["orders"] = samples["order"].to_numpy(np.int64)
    if order is None:
        frame["first_row"] = np.arange(len(samples), dtype=np.int64)
    else:
        for col in order:
            frame[f"first_{col}"] = samples[col].to_numpy()
    return reduce_unit_days([frame], unit, segment is not None)


@dataclass(frozen=True)
class UnitDays:
    """A unit-day table (:func:`unit_days`) and what it is keyed by.

    Attributes
    ----------
    frame : DataFrame
        One row per key (``<unit>_id``, ``user_id`` when the unit is the request, ``bucket``,
        ``day``, ``segment`` when ``segment``), sorted by it, with ``exposures``, ``clicks``,
        ``orders`` and the ``first_*`` key of the group's first exposure.
    unit : {"user", "request"}
    segment : str or None
        The samples column whose levels are the ``segment`` key.
    buckets : tuple of str or None
        Every bucket of the samples (unused categories included); None: those of ``frame``.
    """

    frame: pd.DataFrame
    unit: str
    segment: str | None = None
    buckets: tuple[str, ...] | None = None

    @classmethod
    def of(cls, samples: pd.DataFrame, unit: str, segment: str | None = None,
           order: Sequence[str] | None = None, buckets: Sequence[str] | None = None) -> UnitDays:
        """The table of an (already checked) exposure-level samples frame."""
        return cls(unit_days(samples, unit, segment, order), unit, segment,
                   None if buckets is None else tuple(buckets))

    @property
    def key(self) -> str:
        return f"{self.unit}_id"

    def known_buckets(self) -> list[str]:
        """Sorted bucket names (none for samples without buckets)."""
        if self.buckets is not None:
            return sorted(self.buckets)
        return sorted({str(b) for b in pd.unique(self.frame["bucket"])} - {NO_BUCKET})

    def where(self, mask: np.ndarray) -> UnitDays:
        """The table of the rows where ``mask`` holds (a day range, some buckets)."""
        return replace(self, frame=self.frame.loc[mask].reset_index(drop=True))

    def in_buckets(self, buckets: Sequence[str]) -> UnitDays:
        return self.where(self.frame["bucket"].isin(list(buckets)).to_numpy())

    def days(self) -> tuple[int, int]:
        day = self.frame["day"].to_numpy()
        return int(day.min()), int(day.max())

    def n_exposures(self) -> int:
        return int(self.frame["exposures"].sum())

    def sums_by(self, keys: list[str]) -> pd.DataFrame:
        """Integer sums per ``keys`` (sorted), the other key columns summed over."""
        return self.frame.groupby(keys, sort=True)[list(SUMS)].sum().reset_index()

    def first_order(self) -> pd.Series:
        """Rank of each unit's first appearance (0 = first), indexed by unit id."""
        first = _first_columns(self.frame)
        rows = self.frame.sort_values(first, kind="stable").drop_duplicates(self.key)
        return pd.Series(np.arange(len(rows), dtype=np.int64), index=rows[self.key].to_numpy())

    def unit_sums(self) -> pd.DataFrame:
        """Per-unit sums sorted by unit id (:func:`eval.ab.unit_sums`); each unit in one bucket."""
        key = self.key
        pairs = self.frame[[key, "bucket"]].drop_duplicates()
        mixed = pairs[key].duplicated(keep=False).to_numpy()
        if mixed.any():
            unit_ids = pairs[key].to_numpy()[mixed]
            first = np.sort(unit_ids)[0] if pairs[key].dtype.kind in "iuf" else unit_ids[0]
            buckets = sorted(pairs.loc[pairs[key] == first, "bucket"].astype(str))
            raise ValueError(
                f"samples.bucket must be assigned consistently per {self.unit} when unit={self.unit!r}. "
                f"Got {key}={show(first)} in buckets {buckets[:2]} instead "
                f"({len(np.unique(unit_ids))} {self.unit}s in more than one bucket)."
            )
        sums = self.sums_by([key])
        bucket = pairs.set_index(key)["bucket"].reindex(sums[key].to_numpy())
        sums.insert(1, "bucket", bucket.astype(str).to_numpy())
        sums["has_click"] = (sums["clicks"] > 0).astype(np.int64)
        sums["has_order"] = (sums["orders"] > 0).astype(np.int64)
        return sums
