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

__all__ = ["Parts", "by_holder", "day_rows", "labelled_parts", "labelled_samples_of", "on_rows", "part_facts",
           "rows_in", "task_prefix"]


@dataclass(frozen=True)
class Parts:
    """Frames held by the workers, one future per partition, and functions run over them.

    A day range (``low .. high``) restricts every frame to the rows of those days inside each
    task, when it runs: the workers hold one copy of the samples, not one per day range.

    Attributes
    ----------
    client : distributed.Client
    futures : list of Future
        One frame per partition.
    keys : list of str
        The partitions' keys (``day=YYYY-MM-DD/part-NNNNN``), in the same order.
    low, high : int or None
        The days kept (day indices, inclusive); None keeps every row.
    """

    client: Any
    futures: list[Any]
    keys: list[str]
    low: int | None = None
    high: int | None = None

    def map(self, func: Any, *args: Any, **kwargs: Any) -> list[Any]:
        """Futures of ``func(frame, *args, **kwargs)`` on every partition's frame (kept on the workers).
        Arguments are passed as they are: scatter big ones first."""
        # Tasks named for ``func``, not for the wrapper (the dashboard, logs and failures name it).
        return self.client.map(on_rows, self.futures, *[[a] * len(self.futures) for a in args], apply=func,
                               low=self.low, high=self.high, pure=False, key=task_prefix(func), **kwargs)

    def run(self, func: Any, *args: Any) -> list[Any]:
        """``func(frame, *args)`` on every partition's frame; the results in partition order."""
        # Fresh keys (hash=False): a key shared with an earlier scatter being released can be lost.
        shared = [a if isinstance(a, (int, str)) else self.client.scatter(a, broadcast=True, hash=False)
                  for a in args]
        return self.client.gather(self.map(func, *shared))

    def days(self, facts: list[dict[str, Any]], low: int, high: int) -> Parts:
        """The rows of days ``low .. high`` of the partitions that have any."""
        if self.low is not None and self.high is not None:
            low, high = max(low, self.low), min(high, self.high)
        chosen = [i for i, f in enumerate(facts) if rows_in(f, low, high)]
        return Parts(self.client, [self.futures[i] for i in chosen], [self.keys[i] for i in chosen], low, high)

    def with_futures(self, futures: list[Any]) -> Parts:
        """The same partitions and days, held by other futures (one per partition, e.g. changed copies)."""
        if len(futures) != len(self.futures):
            raise ValueError(f"futures must hold one frame per partition ({len(self.futures)}). "
                             f"Got {len(futures)} instead.")
        return Parts(self.client, list(futures), self.keys, self.low, self.high)


def by_holder(client: Any, futures: list[Any]) -> list[tuple[str, list[int]]]:
    """The positions of ``futures`` (in memory) grouped by the worker holding each (the first
    holder by address when several do), workers sorted by address."""
    holders = client.who_has(futures)
    groups: dict[str, list[int]] = {}
    for i, future in enumerate(futures):
        groups.setdefault(sorted(holders[future.key])[0], []).append(i)
    return sorted(groups.items())


def task_prefix(func: Any) -> str:
    """The prefix of the keys of tasks that run ``func`` through :func:`on_rows`."""
    return str(getattr(func, "__name__", "on_rows"))


def on_rows(frame: pd.DataFrame, *args: Any, apply: Any, low: int | None, high: int | None, **kwargs: Any) -> Any:
    """``apply(rows, *args, **kwargs)`` on the rows of days ``low .. high`` of ``frame`` (runs on a worker)."""
    return apply(frame if low is None or high is None else day_rows(frame, low, high), *args, **kwargs)


def labelled_samples_of(part: LogPartition) -> pd.DataFrame:
    """:func:`ltr.features.labelled_samples` of one partition (runs on a worker)."""
    if part.samples is None:
        raise RuntimeError(f"partition {part.key} was not labelled.")
    return with_days_and_outcomes(part.samples, part.tables.get("outcomes"), part.tz)


def day_rows(frame: pd.DataFrame, low: int, high: int) -> pd.DataFrame:
    """The rows of days ``low .. high``."""
    days = frame["day"].to_numpy()
    keep = (days >= low) & (days <= high)
    # Every row kept: a new index on the same columns (copy-on-write: no data copied).
    return frame.reset_index(drop=True) if keep.all() else frame.loc[keep].reset_index(drop=True)


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
