"""The readout on the Dask engine (``python -m eval.report LOGS --engine dask``).

What runs where:

* on the workers, per partition (:func:`ltr.distributed.open_logs`): reading, every contract
  check, the join (deduplication, the candidates and requests merges, the click and order
  labels) and the join report's counts; then the partition's aggregated tables
  (:func:`eval.report._tables.partial_tables`): the unit-day sums (one row per unit, day,
  bucket and ``--segment`` value, with the key of the unit's first exposure) and the counts
  per (day, bucket, ``rank_score`` value); these are added up on the workers in a tree
  (:data:`FAN_IN` tables per task); also the partial counts of the log funnel over the
  readout window and, for GAUC, the counts per (user, ``rank_score`` value) of the window,
  routed by a hash of the user id to :data:`GAUC_REDUCERS` reducer tasks, each of which
  computes the per-user AUC of its users;
* to the client: the join report (summed), the funnel counts (summed), the summed tables (one
  row per unit and day, one per day, bucket and score value) and one row per user for GAUC:
  never a row per exposure;
* on the client: every statistic, by the code the single-machine engine runs on the tables of
  its samples (:func:`eval.report._build.readout_of_tables`), so every number of the readout
  is the single-machine one by construction (tests/distributed compares the JSON).

Not on this engine (they need the logs in memory): ``--bundle`` (scoring with the bundle on
the workers) and ``--candidates`` (the recall funnel).
"""
from __future__ import annotations

import operator
from collections.abc import Sequence

import pandas as pd

from eval.ab import reduce_unit_days
from eval.funnel import log_funnel_counts, log_funnel_table
from eval.report._build import LogFacts
from eval.report._scores import reduce_score_counts, reduce_user_counts, user_aucs, user_score_counts
from eval.report._tables import ONLINE, ReadoutTables, partial_tables, reduce_tables
from ltr.distributed import LogPartition, PartitionedLogs

__all__ = ["FAN_IN", "GAUC_REDUCERS", "dask_tables", "logged_buckets"]

#: Partial tables added up per task of the tree reduction on the workers.
FAN_IN = 8
#: Reducer tasks of the per-user AUCs of GAUC (users routed by a hash of their id).
GAUC_REDUCERS = 8


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


def _in_days(part: LogPartition, days: tuple[int, int]) -> pd.DataFrame:
    samples = _samples(part)
    return samples.loc[samples["day"].between(days[0], days[1]).to_numpy()]


def _funnel(part: LogPartition, days: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The funnel counts of the partition over the window (its samples of those days)."""
    return log_funnel_counts(part.logs, _in_days(part, days), days)


def _partial(part: LogPartition, unit: str, segment: str | None) -> dict:
    return partial_tables(_samples(part), unit, segment)


def _combine(parts: Sequence[dict], unit: str, segment: str | None) -> dict:
    """Partial tables added up into one partial table (a node of the tree reduction)."""
    scores = [p["scores"] for p in parts if p["scores"] is not None]
    return {"units": reduce_unit_days([p["units"] for p in parts], unit, segment is not None),
            "scores": reduce_score_counts(scores) if scores else None}


def _user_shards(part: LogPartition, days: tuple[int, int], n: int) -> list[pd.DataFrame]:
    """The partition's (user, score) counts of the window, split by a hash of the user id."""
    counts = user_score_counts(_in_days(part, days), ONLINE)
    shard = pd.util.hash_array(counts["user_id"].to_numpy()) % n
    return [counts.loc[shard == r] for r in range(n)]


def _shard_aucs(shards: list[pd.DataFrame]) -> pd.DataFrame:
    return user_aucs(reduce_user_counts(shards))


def _tree_sum(client: object, futures: list, unit: str, segment: str | None) -> ReadoutTables:
    """The tables of all partitions, added up on the workers; only the sum comes to the client."""
    while len(futures) > 1:
        futures = [client.submit(_combine, futures[i:i + FAN_IN], unit, segment, pure=False)  # type: ignore[attr-defined]
                   for i in range(0, len(futures), FAN_IN)]
    return reduce_tables([client.gather(futures[0])], unit, segment)  # type: ignore[attr-defined]


def _gauc_users(logs: PartitionedLogs, days: tuple[int, int]) -> pd.DataFrame:
    """One row per user of the window (:func:`eval.report._scores.user_aucs`), computed by the
    reducer tasks on the workers."""
    client = logs.client
    split = client.map(_user_shards, logs.parts, [days] * len(logs.parts), [GAUC_REDUCERS] * len(logs.parts),
                       pure=False)
    reducers = [client.submit(_shard_aucs, [client.submit(operator.getitem, f, r, pure=False) for f in split],
                              pure=False) for r in range(GAUC_REDUCERS)]
    return pd.concat(client.gather(reducers), ignore_index=True)


def dask_tables(logs: PartitionedLogs, unit: str, segment: str | None = None) -> tuple[LogFacts, ReadoutTables]:
    """The :class:`LogFacts` and the summed :class:`ReadoutTables` of partitioned logs on a cluster.

    ``segment`` must be a column of the requests table (or None).
    """
    client = logs.client
    partials = client.map(_partial, logs.parts, [unit] * len(logs.parts), [segment] * len(logs.parts), pure=False)
    tables = _tree_sum(client, partials, unit, segment)
    facts = LogFacts(buckets=logged_buckets(logs), funnel=lambda days: log_funnel_table(logs.map(_funnel, days)),
                     user_aucs=(lambda days: _gauc_users(logs, days)) if tables.scores is not None else None)
    return facts, tables
