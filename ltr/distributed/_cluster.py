"""The one seam between the commands and Dask: ``--engine/--scheduler/--workers`` and the client.

:class:`EngineOptions` holds what the command line says; :func:`add_engine_options` adds the
options to a command's parser and :func:`engine_options` reads them back, checked. The Dask
client comes from :func:`dask_client`, a context manager: with ``scheduler`` it connects to
that scheduler (a clear :class:`EngineError` when none answers within ``timeout`` seconds),
else it starts a ``distributed.LocalCluster`` of ``workers`` processes and stops it on exit.
A worker that dies mid-run makes Dask retry its tasks elsewhere; when they keep failing, the data
a task needs was lost with the worker (scattered data cannot be recomputed), or the cluster goes
away, the run ends in an :class:`EngineError` (commands exit 1 with its message,
and write their output through a temporary path renamed on success, so nothing half-written
looks complete).

Dask is imported only inside these functions: ``import ltr`` and the single-machine engine
never import it.
"""
from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ltr._validation import check_choice, check_float, check_int

__all__ = ["ENGINES", "EngineError", "EngineOptions", "add_engine_options", "dask_client", "engine_options"]

#: ``--engine`` values: the single-machine engine (default) and Dask.
ENGINES = ("local", "dask")


class EngineError(OSError):
    """The Dask cluster failed the run: no scheduler answered, workers died, the cluster went away.

    An ``OSError`` (a failure of the environment, like a missing file), so the commands report
    it in one paragraph with exit status 1.
    """


@dataclass(frozen=True)
class EngineOptions:
    """Where a command runs.

    Parameters
    ----------
    engine : {"local", "dask"}, default "local"
        ``local``: the single-machine engine (pandas in this process); ``dask``: a Dask cluster.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); None starts a LocalCluster.
    workers : int, default 2
        Worker processes of the LocalCluster.
    threads_per_worker : int, default 1
        Threads of each LocalCluster worker.
    memory_limit : str, default "auto"
        Memory limit of each LocalCluster worker ("4GiB", "auto": the machine's memory shared).
        Workers spill to disk above 60% of it and are restarted above 95%.
    timeout : float, default 10.0
        Seconds to wait for the scheduler to answer.
    """

    engine: str = "local"
    scheduler: str | None = None
    workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    timeout: float = 10.0

    def checked(self) -> EngineOptions:
        """Self when every field is valid (ValueError/TypeError naming the option otherwise)."""
        check_choice(self.engine, "--engine", ENGINES)
        check_int(self.workers, "--workers", minimum=1)
        check_int(self.threads_per_worker, "--threads-per-worker", minimum=1)
        check_float(self.timeout, "--scheduler-timeout", low=0.0, low_open=True)
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler.strip()):
            raise ValueError(f"--scheduler must be an address such as tcp://10.0.0.5:8786. Got {self.scheduler!r} "
                             "instead.")
        if self.engine == "local" and self.scheduler is not None:
            raise ValueError("--scheduler needs --engine dask. Got --engine local instead.")
        return self

    @property
    def is_dask(self) -> bool:
        """Whether the command runs on Dask."""
        return self.engine == "dask"


def add_engine_options(parser_: argparse.ArgumentParser) -> None:
    """``--engine``, ``--scheduler``, ``--workers``, ``--threads-per-worker``, ``--memory-limit``
    and ``--scheduler-timeout`` (read back with :func:`engine_options`)."""
    group = parser_.add_argument_group("engine")
    group.add_argument("--engine", choices=list(ENGINES), default="local",
                       help="local: this machine with pandas (default); dask: a Dask cluster")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (default: start a LocalCluster); "
                            "its workers must read the log directory at the same path")
    group.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster (default 2)")
    group.add_argument("--threads-per-worker", type=int, default=1, help="threads per LocalCluster worker (default 1)")
    group.add_argument("--memory-limit", default="auto",
                       help="memory limit per LocalCluster worker, e.g. 4GiB (default auto)")
    group.add_argument("--scheduler-timeout", type=float, default=10.0,
                       help="seconds to wait for the scheduler to answer (default 10)")


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The :class:`EngineOptions` of parsed arguments, checked."""
    return EngineOptions(engine=args.engine, scheduler=args.scheduler, workers=args.workers,
                         threads_per_worker=args.threads_per_worker, memory_limit=args.memory_limit,
                         timeout=args.scheduler_timeout).checked()


def _connect(options: EngineOptions) -> Any:
    from distributed import Client

    try:
        return Client(options.scheduler, timeout=f"{options.timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise EngineError(f"--scheduler {options.scheduler}: no Dask scheduler answered within {options.timeout:g} s "
                          f"({type(exc).__name__}: {exc}). Is it running, and reachable from this machine? Start one "
                          "with `dask scheduler`, or leave out --scheduler to run a LocalCluster.") from None


@contextmanager
def dask_client(options: EngineOptions) -> Iterator[Any]:
    """A ``distributed.Client`` for ``options`` (connected or on a LocalCluster), closed on exit.

    Raises
    ------
    EngineError
        No scheduler answered; a task failed because its worker died (after Dask's retries);
        the connection to the cluster was lost.
    """
    options = options.checked()
    from distributed import Client, LocalCluster

    if options.scheduler is not None:
        client = _connect(options)
        cluster = None
    else:
        cluster = LocalCluster(n_workers=options.workers, threads_per_worker=options.threads_per_worker,
                               processes=True, memory_limit=options.memory_limit, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster, set_as_default=False)
    try:
        yield client
    except Exception as exc:
        _raise_engine_error(exc)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _raise_engine_error(exc: Exception) -> None:
    """Re-raise a cluster failure as :class:`EngineError`; return for anything else."""
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError

    if isinstance(exc, KilledWorker):
        raise EngineError(f"a Dask worker died while running {exc.task!r} (Dask retried it on other workers; "
                          "it kept failing). Out of memory? Give the workers more (--memory-limit) or more "
                          "partitions (python -m ltr.logs partition --parts-per-day). No output was written.") from None
    if isinstance(exc, FutureCancelledError):
        raise EngineError(f"a Dask worker died or left, and with it data this run had placed there ({exc}); "
                          "the run cannot go on. Out of memory? Give the workers more (--memory-limit) or more "
                          "partitions (python -m ltr.logs partition --parts-per-day). No output was written.") from None
    if isinstance(exc, CommClosedError):
        raise EngineError(f"the connection to the Dask cluster was lost ({exc}). No output was written.") from None
    if _names_a_worker(exc):
        # The scheduler's bookkeeping of a scatter to every worker (``broadcast=True``) raises a
        # KeyError naming a worker that died between the scatter and its replication.
        raise EngineError(f"a Dask worker died or left ({exc.args[0]}) while data was being placed on every worker; "
                          "the run cannot go on. Out of memory? Give the workers more (--memory-limit) or more "
                          "partitions (python -m ltr.logs partition --parts-per-day). No output was written.") from None


def _names_a_worker(exc: Exception) -> bool:
    """Whether ``exc`` is a KeyError whose key is a worker's address (``tcp://host:port``)."""
    return isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str) \
        and re.fullmatch(r"[a-z]+://\S+:\d+", exc.args[0]) is not None
