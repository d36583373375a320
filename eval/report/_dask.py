"""The readout on the Dask engine (``python -m eval.report LOGS --engine dask``).

What runs where:

* on the workers, per partition (:func:`ltr.distributed.open_logs`): reading, every contract
  check, the join (deduplication, the candidates and requests merges, the click and order
  labels) and the join report's counts; then the partition's aggregated tables
  (:func:`eval.report._tables.partial_tables`): the unit-day sums (exposures, clicks, orders
  per unit, day, bucket and ``--segment`` value, with the key of the unit's first exposure)
  and the rows and clicks per (day, bucket, ``rank_score`` value);
* on the workers, across partitions: those tables added up in a tree (:data:`FAN_IN` tables
  per task; integer sums, exact); the AUC table and the calibration section of the readout
  window, computed from the summed score counts on the worker that holds them; for GAUC, the
  counts per (user, ``rank_score`` value) of the window, routed by a hash of the user id to
  :data:`GAUC_REDUCERS` reducer tasks, each computing the exact AUC of its users; the partial
  counts of the log funnel;
* to the client: the join report and the funnel counts (summed there), the unit-day table (one
  row per unit, day, bucket and segment value), one row per user for GAUC, the AUC table (a
  row per day and bucket) and the calibration section (ten bins): never a row per exposure
  or per score value;
* on the client: every A/B statistic (A/B table, CUPED, A/A self-check, daily view, segments)
  from the unit-day table and GAUC from the per-user rows, by the code the single-machine
  engine runs on the tables of its own samples (:func:`eval.report._build.readout_of_tables`;
  the AUC table and calibration come from the same functions on the same summed counts), so
  every number of the readout is the single-machine one by construction (tests/distributed
  compares the JSON, and records the row counts of every frame the client gathers).

Not on this engine (they need the logs in memory): ``--bundle`` (scoring with the bundle on
the workers) and ``--candidates`` (the recall funnel).
"""
from __future__ import annotations

import operator

import pandas as pd

from eval.ab import UnitDays
from eval.funnel import log_funnel_counts, log_funnel_table
from eval.online_offline import reduce_user_counts, user_aucs, user_score_counts
from eval.report._build import LogFacts
from eval.report._scores import ScoreSummary, summarize_scores
from eval.report._tables import ONLINE, ReadoutTables, combine_partials, in_days, partial_tables
from ltr.distributed import LogPartition, PartitionedLogs

__all__ = ["FAN_IN", "GAUC_REDUCERS", "dask_tables", "logged_buckets"]

#: Partial tables added up per task of the tree reduction on the workers.
FAN_IN = 8
#: Reducer tasks of the per-user AUCs of GAUC (users routed by a hash of their id).
GAUC_REDUCERS = 8

Days = tuple[int, int]


def _samples(part: LogPartition) -> pd.DataFrame:
    if part.samples is None:
        raise RuntimeError(f"partition {part.key} was not joined.")
    return part.samples


def _buckets(part: LogPartition) -> set[str]:
    requests = part.tables["requests"]
    return {str(b) for b in pd.unique(requests["bucket"])} if "bucket" in requests.columns else set()


def logged_buckets(logs: PartitionedLogs) -> tuple[str, ...]:
    """The buckets of the requests tables of all partitions, sorted."""
    return tuple(sorted(set().union(*logs.map(_buckets))))


def _funnel(part: LogPartition, days: Days) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The funnel counts of the partition over the window (its samples of those days)."""
    return log_funnel_counts(part.logs, in_days(_samples(part), days), days)


def _partial(part: LogPartition, unit: str, segment: str | None) -> dict:
    return partial_tables(_samples(part), unit, segment)


def _has_scores(tables: dict) -> bool:
    return tables["scores"] is not None


def _summary(tables: dict, days: Days) -> ScoreSummary:
    return summarize_scores(tables["scores"], days)


def _user_shards(part: LogPartition, days: Days, n: int) -> list[pd.DataFrame]:
    """The partition's (user, score) counts of the window, split by a hash of the user id."""
    counts = user_score_counts(in_days(_samples(part), days), ONLINE)
    shard = pd.util.hash_array(counts["user_id"].to_numpy()) % n
    return [counts.loc[shard == r] for r in range(n)]


def _shard_aucs(shards: list[pd.DataFrame]) -> pd.DataFrame:
    return user_aucs(reduce_user_counts(shards))


def _tree_sum(client: object, futures: list, unit: str, segment: str | None) -> object:
    """The future of all partitions' tables added up on the workers (:data:`FAN_IN` per task)."""
    while len(futures) > 1:
        futures = [client.submit(combine_partials, futures[i:i + FAN_IN], unit, segment,  # type: ignore[attr-defined]
                                 pure=False) for i in range(0, len(futures), FAN_IN)]
    return futures[0]


def _gauc_users(logs: PartitionedLogs, days: Days) -> pd.DataFrame:
    """One row per user of the window (:func:`eval.report._scores.user_aucs`): each partition's
    (user, score) counts go by user hash to one of :data:`GAUC_REDUCERS` reducer tasks."""
    client, n = logs.client, len(logs.parts)
    split = client.map(_user_shards, logs.parts, [days] * n, [GAUC_REDUCERS] * n, pure=False)
    reducers = [client.submit(_shard_aucs, [client.submit(operator.getitem, f, r, pure=False) for f in split],
                              pure=False) for r in range(GAUC_REDUCERS)]
    return pd.concat(client.gather(reducers), ignore_index=True)


def dask_tables(logs: PartitionedLogs, unit: str, segment: str | None = None) -> tuple[LogFacts, ReadoutTables]:
    """The :class:`LogFacts` and the :class:`ReadoutTables` of partitioned logs on a cluster.

    The partitions' tables are added up on the workers; the unit-day table comes to the client,
    the score counts stay on the worker that summed them (the AUC table and the calibration
    section are computed there), GAUC's per-user rows come from the reducer tasks.
    ``segment`` must be a column of the requests table (or None).
    """
    client, n = logs.client, len(logs.parts)
    root = _tree_sum(client, client.map(_partial, logs.parts, [unit] * n, [segment] * n, pure=False), unit, segment)
    units = client.gather(client.submit(operator.getitem, root, "units", pure=False))
    tables = ReadoutTables(UnitDays(units, unit, segment))
    if client.gather(client.submit(_has_scores, root, pure=False)):
        tables = ReadoutTables(tables.units, user_aucs=lambda days: _gauc_users(logs, days),
                               scores=lambda days: client.gather(client.submit(_summary, root, days, pure=False)))
    facts = LogFacts(buckets=logged_buckets(logs), funnel=lambda days: log_funnel_table(logs.map(_funnel, days)))
    return facts, tables
