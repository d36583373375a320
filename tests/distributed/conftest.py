"""One Dask LocalCluster (2 worker processes, 1 thread each) for the whole test session, and the
fixture world written partitioned."""
from __future__ import annotations

from pathlib import Path

import pytest

from ltr.logs import parse_day, read_logs, write_partitioned
from ltr.train import default_feature_params, prepare_training

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "fixtures" / "world"


@pytest.fixture(scope="session")
def cluster():
    import dask
    from distributed import LocalCluster

    # One retry per task: the worker-death test fails fast instead of after three deaths.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                             memory_limit="2GiB")
    yield local
    local.close()


@pytest.fixture(scope="session")
def client(cluster):
    from distributed import Client

    with Client(cluster, set_as_default=False) as connected:
        yield connected


@pytest.fixture(scope="session")
def world_logs():
    return read_logs(WORLD)


@pytest.fixture(scope="session")
def partitioned(world_logs, tmp_path_factory):
    """The fixture world in the partitioned layout (one file per day and table)."""
    out = tmp_path_factory.mktemp("plogs") / "world"
    write_partitioned(world_logs, out)
    return out


@pytest.fixture(scope="module")
def opened(client, partitioned):
    """The partitioned world validated and joined on the cluster, once per test module (a module
    whose test kills a worker loses the partitions opened on it)."""
    from ltr.distributed import open_logs

    client.wait_for_workers(2, timeout=60)
    return open_logs(client, partitioned)


@pytest.fixture(scope="module")
def local_logs(partitioned):
    """The partitioned world, read by the single-machine engine."""
    return read_logs(partitioned)


@pytest.fixture(scope="module")
def local_data(local_logs):
    """The single-machine engine's LightGBM training data (defaults) on the partitioned world."""
    return prepare_training(local_logs, parse_day("2026-01-15"), feature_params=default_feature_params("lgbm"))
