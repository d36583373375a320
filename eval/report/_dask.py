"""The readout on the Dask engine (``python -m eval.report LOGS --engine dask``).

What runs where:

* on the workers, per partition (:func:`ltr.distributed.open_logs`): reading, every contract
  check, the join (deduplication, the candidates and requests merges, the click and order
  labels) and the join report's counts; then the partial counts of the log funnel over the
  readout window and the buckets of the requests;
* to the client: the join report (summed), the funnel counts (summed), and the readout columns
  of the samples (:data:`READOUT_COLUMNS`, plus ``rank_score`` and the ``--segment`` column
  when present: about 60 bytes per exposure instead of the full logs), in the single-machine
  samples' order (ts, request_id, position; partition order for ties, which is the order the
  single-machine engine reads them in);
* on the client: the statistics, by the single-machine code (:func:`eval.report._build.build_readout`)
  on those columns: the same rows in the same order, so every number of the readout is the
  single-machine one by construction (tests/distributed compares the JSON).

Not on this engine yet (phase 2 of issue 14): ``--bundle`` (scoring with the bundle on the
workers) and ``--candidates`` (the recall funnel). TODO(issue 14, phase 2): the per-unit sums
of the A/B statistics as Dask aggregations, so the client holds one row per user instead of
one per exposure.
"""
from __future__ import annotations

import pandas as pd

from eval.funnel import log_funnel_counts, log_funnel_table
from eval.report._build import LogFacts
from ltr.distributed import LogPartition, PartitionedLogs

__all__ = ["READOUT_COLUMNS", "dask_inputs"]

#: Sample columns every readout reads (the A/B statistics, windows, funnel and AUC segments).
READOUT_COLUMNS = ("request_id", "user_id", "item_id", "ts", "position", "day", "bucket", "click", "order")
_ORDER = ["ts", "request_id", "position"]


def _samples(part: LogPartition) -> pd.DataFrame:
    if part.samples is None:
        raise RuntimeError(f"partition {part.key} was not joined.")
    return part.samples


def _project(part: LogPartition, columns: list[str]) -> pd.DataFrame:
    samples = _samples(part)
    return samples[[c for c in columns if c in samples.columns]]


def _buckets(part: LogPartition) -> set[str]:
    requests = part.tables["requests"]
    return {str(b) for b in pd.unique(requests["bucket"])} if "bucket" in requests.columns else set()


def _funnel(part: LogPartition, days: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The funnel counts of the partition over the window (its samples of those days)."""
    samples = _samples(part)
    in_window = samples["day"].between(days[0], days[1]).to_numpy()
    return log_funnel_counts(part.logs, samples.loc[in_window], days)


def dask_inputs(logs: PartitionedLogs, segment: str | None = None) -> tuple[LogFacts, pd.DataFrame]:
    """The :class:`LogFacts` and the samples' readout columns of partitioned logs on a cluster.

    The funnel of :class:`LogFacts` is computed on the workers from each partition's own
    samples of the window (the rows the client's window holds).
    """
    columns = [*READOUT_COLUMNS, "rank_score", *([segment] if segment else [])]
    samples = pd.concat(logs.map(_project, columns), ignore_index=True)
    samples = samples.sort_values(_ORDER, kind="stable").reset_index(drop=True)
    buckets = sorted(set().union(*logs.map(_buckets)))
    facts = LogFacts(buckets=tuple(buckets), funnel=lambda _window, days: log_funnel_table(logs.map(_funnel, days)))
    return facts, samples
