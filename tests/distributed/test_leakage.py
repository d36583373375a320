"""The leakage check on Dask against the single-machine check, on the fixture world written
partitioned (LocalCluster of 2 workers): the same rows drawn, the same univariate AUCs to the last
bit, no feature changed by the perturbation on clean logs, the same error on a planted leaky
candidates column, and ``--allow-feature``/``--no-leakage-check`` as on one machine."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr import Ranker
from ltr.distributed._leakage import _changed, _drawn, _univariate
from ltr.distributed._parts import labelled_parts, part_facts
from ltr.features import labelled_samples
from ltr.leakage import LeakageError, check_leakage, row_keys, smallest_keys, univariate_aucs
from ltr.logs import parse_day, read_logs, write_partitioned
from ltr.train import main, train_ranker

TRAIN_END = parse_day("2026-01-15")


@pytest.fixture(scope="module")
def train_parts(client, opened):
    """The training days' labelled samples on the workers, as ``train_on_dask`` holds them."""
    client.wait_for_workers(2, timeout=60)
    samples = labelled_parts(opened)
    facts = samples.run(part_facts)
    first = min(d for f in facts for d in f["days"])
    train = samples.days(facts, first, TRAIN_END)
    return train, train.run(part_facts)


@pytest.fixture(scope="module")
def leaky(world_logs, tmp_path_factory):
    """The fixture world with a candidates column that copies the exposure's click (3% flipped), a
    request context feature that knows the label, written partitioned with two files per day (the
    rows in yet another order)."""
    clicks = labelled_samples(world_logs).set_index(["request_id", "item_id"])["click"]
    candidates = world_logs.candidates
    known = clicks.reindex(pd.MultiIndex.from_frame(candidates[["request_id", "item_id"]])).fillna(0).to_numpy()
    flip = np.random.default_rng(5).random(len(candidates)) < 0.03
    planted = candidates.assign(was_clicked=np.where(flip, 1 - known, known).astype(np.int64))
    out = tmp_path_factory.mktemp("leaky") / "world"
    write_partitioned(world_logs.replace(candidates=planted), out, parts_per_day=2)
    return out


@pytest.mark.parametrize("n", [500, 100_000])
def test_dask_draws_the_local_rows_and_gets_the_same_univariate_aucs(n, train_parts, local_data):
    train, _ = train_parts
    builder, rows, features = local_data.builder, local_data.train, local_data.train_features
    y = rows["click"].to_numpy()
    pick = smallest_keys(row_keys(rows), y, n)
    expected = univariate_aucs(features.dense[pick], features.dense_names, y[pick])
    assert pick.size == min(n, len(rows)) and len(expected) == len(features.dense_names)
    # Independent of the local path's order: the drawn rows are the n smallest keys, whatever the order.
    shuffled = rows.sample(frac=1.0, random_state=3)
    again = shuffled.iloc[smallest_keys(row_keys(shuffled), shuffled["click"].to_numpy(), n)]
    assert again[["request_id", "item_id"]].reset_index(drop=True).equals(
        rows.iloc[pick][["request_id", "item_id"]].reset_index(drop=True))
    assert _univariate(train, builder, n, 0) == expected


def test_drawn_takes_the_smallest_keys_of_all_candidates(local_data):
    rows = local_data.train.head(1000)
    keys = row_keys(rows)
    halves = [(rows.iloc[:400], keys[:400]), (rows.iloc[400:], keys[400:])]
    got = _drawn(halves, 50)
    assert np.array_equal(np.sort(keys)[:50], np.sort(row_keys(got)))
    assert np.all(np.diff(row_keys(got).astype(np.float64)) >= 0)


def test_perturbation_on_dask_changes_no_feature_on_clean_logs(train_parts, local_data):
    train, facts = train_parts
    builder = local_data.builder
    report = check_leakage(lambda rows, history: builder.transform(rows, history=history), local_data.train,
                           local_data.train_features, rows=300)
    assert report.changed == {} and report.flagged == []
    assert _changed(train, facts, builder, TRAIN_END, 300, 2, 0) == {}


def test_a_leaky_column_stops_both_engines_with_the_same_error(leaky, cluster, tmp_path, capsys):
    with pytest.raises(LeakageError, match=r"was_clicked \(univariate AUC") as local:
        train_ranker(read_logs(leaky), "lr", TRAIN_END)
    out = tmp_path / "stopped"
    assert main([str(leaky), "--model", "lr", "--train-end", "2026-01-15", "--out", str(out), "--engine", "dask",
                 "--scheduler", cluster.scheduler_address]) == 1
    assert "univariate AUC 1.000" not in str(local.value)  # a noisy copy: the AUCs' digits compared too
    err = capsys.readouterr().err
    assert err.strip() == f"error: {local.value}" and not out.exists()


@pytest.mark.parametrize(("option", "ran"), [(["--allow-feature", "was_clicked"], True),
                                             (["--no-leakage-check"], False)])
def test_allowed_or_skipped_leakage_check_on_dask(option, ran, leaky, cluster, tmp_path):
    out = tmp_path / "bundle"
    assert main([str(leaky), "--model", "lr", "--train-end", "2026-01-15", "--out", str(out), "--engine", "dask",
                 "--scheduler", cluster.scheduler_address, "--no-validation", *option]) == 0
    seconds = Ranker.load(out).metadata["training"]["leakage_seconds"]
    assert (seconds is not None and seconds >= 0) if ran else seconds is None
