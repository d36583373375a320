"""Frames held by the Dask workers, one per log partition, and what the ranker commands do with them.

:class:`Parts` holds one future per partition (a labelled samples frame, or rows of it) and runs
functions over them (``run``: the results come back; ``days``: rows of some days stay on the
workers). :func:`labelled_samples_of` is :func:`ltr.features.labelled_samples` on one partition.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr.distributed._logs import LogPartition, PartitionedLogs
from ltr.features._samples import with_days_and_outcomes

__all__ = ["Parts", "day_rows", "labelled_parts", "labelled_samples_of", "part_facts", "rows_in"]


@dataclass(frozen=True)
class Parts:
    """Frames held by the workers, one future per partition, and a ``run`` over them.

    Attributes
    ----------
    client : distributed.Client
    futures : list of Future
        One frame per partition.
    keys : list of str
        The partitions' keys (``day=YYYY-MM-DD/part-NNNNN``), in the same order.
    """

    client: Any
    futures: list[Any]
    keys: list[str]

    def run(self, func: Any, *args: Any) -> list[Any]:
        """``func(frame, *args)`` on every partition's frame; the results in partition order."""
        # Fresh keys (hash=False): a key shared with an earlier scatter being released can be lost.
        shared = [a if isinstance(a, (int, str)) else self.client.scatter(a, broadcast=True, hash=False)
                  for a in args]
        return self.client.gather(self.client.map(func, self.futures, *[[a] * len(self.futures) for a in shared],
                                                  pure=False))

    def days(self, facts: list[dict[str, Any]], low: int, high: int) -> Parts:
        """The rows of days ``low .. high`` of the partitions that have any (kept on the workers)."""
        chosen = [i for i, f in enumerate(facts) if rows_in(f, low, high)]
        futures = self.client.map(day_rows, [self.futures[i] for i in chosen], low=low, high=high, pure=False)
        return Parts(self.client, futures, [self.keys[i] for i in chosen])


def labelled_samples_of(part: LogPartition) -> pd.DataFrame:
    """:func:`ltr.features.labelled_samples` of one partition (runs on a worker)."""
    if part.samples is None:
        raise RuntimeError(f"partition {part.key} was not labelled.")
    return with_days_and_outcomes(part.samples, part.tables.get("outcomes"), part.tz)


def day_rows(frame: pd.DataFrame, low: int, high: int) -> pd.DataFrame:
    """The rows of days ``low .. high``."""
    days = frame["day"].to_numpy()
    return frame.loc[(days >= low) & (days <= high)].reset_index(drop=True)


def part_facts(frame: pd.DataFrame) -> dict[str, Any]:
    """Rows, rows per day and columns of a partition's samples."""
    days, counts = np.unique(frame["day"].to_numpy(), return_counts=True)
    return {"rows": len(frame), "days": days.tolist(), "counts": counts.tolist(),
            "columns": [str(c) for c in frame.columns]}


def rows_in(facts: dict[str, Any], low: int, high: int) -> int:
    """Rows of days ``low .. high`` in a partition (from its :func:`part_facts`)."""
    return sum(n for d, n in zip(facts["days"], facts["counts"], strict=True) if low <= d <= high)


def labelled_parts(opened: PartitionedLogs) -> Parts:
    """Every partition's labelled samples (days in the logs' time zone, outcomes attached), on the workers."""
    return Parts(opened.client, opened.client.map(labelled_samples_of, opened.parts, pure=False), list(opened.keys))
