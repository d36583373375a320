"""A sharded simulated world (ltr/simulate/_shards.py) on the Dask engine: its join report is the
single-machine one: ``ltr.logs validate`` prints the same row counts and join report on both engines."""
from __future__ import annotations

import pytest

from ltr.distributed import open_logs
from ltr.logs.__main__ import main as logs_main
from ltr.simulate._shards import write_sharded_world


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    path = tmp_path_factory.mktemp("shards") / "world"
    write_sharded_world(path, 3, users=240, items=300, days=3, seed=4, candidates_per_request=40)
    return path


def test_validate_prints_the_same_join_report_on_both_engines(sharded, cluster, client, capsys):
    client.wait_for_workers(2, timeout=60)  # after a module that kills a worker
    assert logs_main(["validate", str(sharded)]) == 0
    local = capsys.readouterr().out
    assert logs_main(["validate", str(sharded), "--engine", "dask", "--scheduler", cluster.scheduler_address]) == 0
    on_dask = capsys.readouterr().out.replace(" (9 partitions checked on the Dask cluster)", "")
    # The Dask engine prints the row counts and the join report; the local one adds day, attribute
    # and bucket tables between and after them: the Dask lines are the local lines, in order.
    lines = iter(local.splitlines())
    assert all(line in lines for line in on_dask.splitlines())
    assert "Join report" in on_dask and "unattributed" in on_dask and "exposures        3," in on_dask
    opened = open_logs(client, sharded)
    assert len(opened.keys) == 9  # 3 days x 3 shards
