"""The Dask engine: ``--engine dask [--scheduler ADDRESS] [--workers N]`` on the commands.

One seam for every command (:mod:`ltr.distributed._cluster`): :class:`EngineOptions` from the
command line (:func:`add_engine_options`, :func:`engine_options`) and :func:`dask_client`,
which connects to a scheduler or starts and stops a ``distributed.LocalCluster``. On a cluster
the logs are a partitioned log directory (``python -m ltr.logs partition``) that every worker
reads at the same path; :func:`open_logs` validates and joins its partitions on the workers
(:mod:`ltr.distributed._logs`) and keeps them there for the aggregations of the readout
(``eval.report --engine dask``) and the recall counts (``recall.train --model itemcf|hot
--engine dask``).

Dask is imported inside functions only: ``import ltr.distributed`` does not import it, and the
single-machine engine never does.
"""
from __future__ import annotations

from ltr.distributed._cluster import (
    ENGINES,
    EngineError,
    EngineOptions,
    add_engine_options,
    dask_client,
    engine_options,
)
from ltr.distributed._logs import LogPartition, PartitionedLogs, open_logs
from ltr.logs._partitioned import atomic_directory

__all__ = [
    "ENGINES",
    "EngineError",
    "EngineOptions",
    "LogPartition",
    "PartitionedLogs",
    "add_engine_options",
    "atomic_directory",
    "dask_client",
    "engine_options",
    "open_logs",
]
