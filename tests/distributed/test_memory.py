"""What keeps the Dask engine's memory bounded by the workers' limit instead of by the world:
partitions Dask can size (so its memory manager spills them to disk), the bulk tables cut to the
columns later stages read once joined, day ranges applied inside the tasks (no copies of the
samples per range), and LightGBM's inputs stacked once per worker and handed to LightGBM without
copies. The benchmark (bench/bench_dask.py) measures the memory; these test the mechanisms."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.bundle import design_matrix
from ltr.distributed._logs import LogPartition
from ltr.distributed._parts import labelled_parts, part_facts
from ltr.distributed._train import _worker_design, _x_part, _y_part


def _sizes(part: LogPartition) -> tuple[int, int]:
    """Dask's size of a partition, and pandas' deep memory use of its frames (runs on a worker)."""
    from dask.sizeof import sizeof

    frames = [*part.tables.values(), part.samples]
    return sizeof(part), int(sum(frame.memory_usage(deep=True).sum() for frame in frames))


def test_dask_sizes_a_partition_by_its_frames(client, opened):
    # Without __sizeof__ Dask would count a partition as a few dozen bytes and never spill it.
    for dask_size, pandas_size in client.gather(client.map(_sizes, opened.parts, pure=False)):
        assert pandas_size > 10_000
        assert 0.5 * pandas_size <= dask_size <= 2 * pandas_size


def _columns(part: LogPartition) -> dict[str, list[str]]:
    return {name: list(frame.columns) for name, frame in part.tables.items()}


def test_joined_partitions_keep_only_the_columns_later_stages_read(client, opened, world_logs):
    columns = client.gather(client.submit(_columns, opened.parts[0], pure=False))
    assert columns["exposures"] == ["item_id", "ts"]
    assert columns["candidates"] == ["request_id", "item_id"]
    # The small tables stay whole (the recall sources and the funnel read them).
    assert columns["requests"] == list(world_logs.requests.columns)
    assert columns["clicks"] == list(world_logs.clicks.columns)


def test_day_ranges_are_applied_in_the_tasks(client, opened):
    samples = labelled_parts(opened)
    facts = samples.run(part_facts)
    days = sorted({d for f in facts for d in f["days"]})
    low, high = days[2], days[-3]
    ranged = samples.days(facts, low, high)
    # The same futures (no filtered copies held), fewer partitions, the range's rows only.
    assert {f.key for f in ranged.futures} <= {f.key for f in samples.futures}
    got = pd.concat(ranged.run(lambda frame: frame[["day"]]), ignore_index=True)["day"]
    expected = sum(n for f in facts for d, n in zip(f["days"], f["counts"], strict=True) if low <= d <= high)
    assert len(got) == expected and got.between(low, high).all()
    # A range of a range is their intersection.
    inner = ranged.days(facts, days[0], low)
    assert (inner.low, inner.high) == (low, low)


@pytest.fixture(scope="module")
def chunks(local_data):
    """The local training rows cut into three 'partitions' by position, so each holds several days
    in an order that is not day order."""
    rows = local_data.train.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return [rows.iloc[i::3].reset_index(drop=True) for i in range(3)]


@pytest.mark.parametrize(("days", "dtype"), [(None, "float64"), ("middle", "float64"), ("middle", "float32")])
def test_a_worker_design_is_the_partitions_designs_stacked_in_day_order(chunks, local_data, days, dtype):
    builder = local_data.builder
    all_days = sorted(pd.concat([c["day"] for c in chunks]).unique())
    low, high = (None, None) if days is None else (all_days[1], all_days[-2])
    X, y, got_days = _worker_design(chunks, builder, low, high, dtype)
    # Reference: each partition's own design (the single-machine matrix), stacked, stably sorted by day.
    kept = [c if low is None else c.loc[c["day"].between(low, high)] for c in chunks]
    ref_X = np.vstack([design_matrix(builder.transform(c, dense=True), "dense")[0] for c in kept])
    ref_y = np.concatenate([c["click"].to_numpy() for c in kept])
    ref_days = np.concatenate([c["day"].to_numpy() for c in kept])
    order = np.argsort(ref_days, kind="stable")
    np.testing.assert_array_equal(X, ref_X[order].astype(dtype))
    np.testing.assert_array_equal(y, ref_y[order])
    np.testing.assert_array_equal(got_days, ref_days[order])
    assert X.dtype == np.dtype(dtype) and len(np.unique(got_days)) > 2


def test_lightgbm_reads_a_worker_design_without_copying_it(chunks, local_data):
    from lightgbm.basic import _data_from_pandas
    from lightgbm.dask import _concat

    X, y, days = _worker_design(chunks, local_data.builder, None, None)
    stop = int(np.searchsorted(days, days.max()))  # the rows before the last day: a leading slice
    names = [f"f{j}" for j in range(X.shape[1])]
    frame, labels = _x_part((X, y, days), stop, names), _y_part((X, y, days), stop)
    assert len(frame) == stop and np.shares_memory(frame.to_numpy(), X) and np.shares_memory(labels.to_numpy(), y)
    # What lightgbm.dask does on the worker (concatenate the worker's parts; read the frame's values).
    data = _data_from_pandas(_concat([frame]), "auto", "auto", None)[0]
    assert np.shares_memory(data, X) and data.shape == (stop, X.shape[1])
    np.testing.assert_array_equal(data, X[:stop])
