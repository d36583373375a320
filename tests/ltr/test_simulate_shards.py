"""The sharded simulated world (ltr/simulate/_shards.py): shard 0 is the one-process world of its
users, the shards share the items and calendar and nothing else, ids are disjoint, and the
partitioned result reads and validates like any partitioned log directory."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.logs import read_logs, write_partitioned
from ltr.logs.__main__ import main as logs_main
from ltr.simulate import simulate_world
from ltr.simulate.__main__ import main as simulate_main
from ltr.simulate._shards import REQUEST_ID_STRIDE, shard_sizes, write_sharded_world

PARAMS = {"users": 240, "items": 300, "days": 3, "seed": 4, "candidates_per_request": 40}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    path = tmp_path_factory.mktemp("shards") / "world"
    written = write_sharded_world(path, 3, **PARAMS)
    return path, written


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


@pytest.mark.parametrize(("users", "shards", "expected"), [(10, 3, [4, 3, 3]), (6, 6, [1] * 6), (7, 1, [7])])
def test_shard_sizes(users, shards, expected):
    assert shard_sizes(users, shards) == expected


def test_more_shards_than_users_is_refused():
    with pytest.raises(ValueError, match=r"shards must be at most users \(2\)\. Got 3 instead\."):
        shard_sizes(2, 3)


def test_shard_zero_is_the_one_process_world_and_the_rest_are_disjoint(sharded):
    path, written = sharded
    logs = read_logs(path)  # every check of the contract, partitions read into one frame
    assert written["users"] == [80, 80, 80]
    assert {name: len(frame) for name, frame in logs.tables().items()} == written["rows"]
    alone = simulate_world(**{**PARAMS, "users": 80}).logs
    requests = logs.requests
    first = requests.loc[requests["request_id"] < REQUEST_ID_STRIDE]
    pd.testing.assert_frame_equal(_sorted(first), _sorted(alone.requests), check_dtype=False)
    exposures = logs.exposures.loc[logs.exposures["request_id"] < REQUEST_ID_STRIDE]
    pd.testing.assert_frame_equal(_sorted(exposures), _sorted(alone.exposures), check_dtype=False)
    pd.testing.assert_frame_equal(logs.items.reset_index(drop=True), alone.items, check_dtype=False)
    shard = requests["request_id"] // REQUEST_ID_STRIDE
    users = requests.groupby(shard)["user_id"].agg(["min", "max"])
    # Disjoint user-id ranges, in shard order; every shard has requests on every day.
    assert np.all(users["max"].to_numpy()[:-1] < users["min"].to_numpy()[1:]) and len(users) == 3
    assert sorted(logs.users["user_id"]) == list(range(1, 241))
    days = pd.to_datetime(requests["ts"], unit="s").dt.floor("D")
    assert (requests.groupby(shard)["ts"].size() > 0).all() and days.nunique() == PARAMS["days"]
    assert requests.groupby(days)["request_id"].apply(lambda r: (r // REQUEST_ID_STRIDE).nunique()).eq(3).all()


def test_shards_draw_their_own_users_from_the_same_items():
    zero = simulate_world(**{**PARAMS, "users": 80}).logs
    one = simulate_world(**{**PARAMS, "users": 80, "shard": 1}).logs
    pd.testing.assert_frame_equal(zero.items, one.items)
    assert not zero.users.drop(columns="user_id").equals(one.users.drop(columns="user_id"))
    assert not zero.requests["ts"].equals(one.requests["ts"])


def test_sharded_world_is_one_part_file_per_shard_and_day(sharded, tmp_path):
    path, _ = sharded
    parts = sorted(p.relative_to(path).as_posix() for p in (path / "exposures").rglob("*.parquet"))
    assert parts == [f"exposures/day=2026-01-0{d}/part-0000{k}.parquet" for d in (5, 6, 7) for k in range(3)]
    assert [p.name for p in (path / "items").iterdir()] == ["part-00000.parquet"]
    # The same logs written by ``partition`` from one frame: the same rows, whatever the files.
    again = tmp_path / "again"
    write_partitioned(read_logs(path), again)
    for name in ("requests", "exposures", "clicks", "orders"):
        pd.testing.assert_frame_equal(_sorted(getattr(read_logs(again), name)), _sorted(getattr(read_logs(path), name)))


def test_simulate_cli_writes_a_sharded_world_that_validates(tmp_path, capsys):
    out = tmp_path / "w"
    assert simulate_main([str(out), "--users", "60", "--items", "200", "--days", "2", "--candidates", "30",
                          "--shards", "2"]) == 0
    assert "2 shards of 30..30 users" in capsys.readouterr().out
    assert logs_main(["validate", str(out)]) == 0
    assert simulate_main([str(tmp_path / "x"), "--shards", "2", "--format", "csv"]) == 2
    assert "--shards writes partitioned Parquet" in capsys.readouterr().err
