"""``python -m ltr.score --engine dask``: point-in-time scores written partitioned like the logs.

The bundle's statistics are advanced on the workers to the last scored day
(:func:`ltr.features._partial.refresh_from_parts`: partial tables summed on the client, exactly
the tables the single-machine scorer counts from its ``history``), then every partition's rows
of the scored days are scored on its worker (``map_partitions`` with the bundle) and written to
``OUT/<partition key>.parquet`` (``request_id, item_id, score``). The directory is written under
a temporary name and renamed when every partition is done.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ltr.distributed._parts import Parts, labelled_parts, on_rows, part_facts, rows_in, task_prefix
from ltr.features._partial import refresh_from_parts
from ltr.logs import format_day
from ltr.logs._partitioned import atomic_directory
from ltr.serving import Ranker

__all__ = ["score_on_dask"]


def _write_scores(frame: pd.DataFrame, key: str, ranker: Ranker, root: str) -> int:
    """Score a partition's rows and write them under ``root`` (runs on a worker)."""
    scores = pd.DataFrame({"request_id": frame["request_id"].to_numpy(), "item_id": frame["item_id"].to_numpy(),
                           "score": ranker.score(frame)})
    path = Path(root) / f"{key}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(path, index=False)
    return len(scores)


def score_on_dask(opened: Any, ranker: Ranker, start: int, end: int, out: str | Path) -> int:
    """Score the exposures of days ``start .. end`` of partitioned logs on their workers.

    Parameters
    ----------
    opened : PartitionedLogs
        From :func:`ltr.distributed.open_logs` (in the time zone the scores' days are read in).
    ranker : Ranker
    start, end : int
        First and last day (day indices) to score.
    out : str or Path
        Directory to write (replaced when it exists).

    Returns
    -------
    rows : int
        Exposures scored.

    Raises
    ------
    ValueError
        ``end`` before ``start``, no exposure in the range, or a bundle with lag-based cut-offs.
    """
    if end < start:
        raise ValueError(f"end must be on or after start ({format_day(start)}). Got {format_day(end)} instead.")
    samples = labelled_parts(opened)
    facts = samples.run(part_facts)
    if not sum(rows_in(f, start, end) for f in facts):
        days = [d for f in facts for d in f["days"]]
        span = f"{format_day(min(days))} to {format_day(max(days))}" if days else "no days"
        raise ValueError(f"start..end must contain exposures (the logs span {span}). "
                         f"Got {format_day(start)}..{format_day(end)} instead.")
    current = Ranker(refresh_from_parts(ranker.features, samples.run, end), ranker.model, ranker.inputs,
                     ranker.metadata)
    rows: Parts = samples.days(facts, start, end)
    client = opened.client
    shared = client.scatter(current, broadcast=True, hash=False)
    with atomic_directory(out) as tmp:
        written = client.gather(client.map(on_rows, rows.futures, rows.keys, apply=_write_scores, low=rows.low,
                                           high=rows.high, ranker=shared, root=str(tmp), pure=False,
                                           key=task_prefix(_write_scores)))
    return int(sum(written))
