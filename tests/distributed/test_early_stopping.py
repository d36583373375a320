"""LightGBM's validation run on Dask stops early: boosted in chunks of ``early_stopping_rounds``
rounds, each continued from the previous model, it stops where the single-machine rule stops, and
chooses the round the whole curve (every ``num_boost_round`` round boosted, the current reference)
chooses; ``--no-refit`` keeps that model. On the fixture world written partitioned, LocalCluster
of 2 workers."""
from __future__ import annotations

import numpy as np
import pytest

from ltr.distributed import open_logs
from ltr.distributed._parts import labelled_parts, part_facts
from ltr.distributed._train import (
    _best_round,
    _chunk_params,
    _dask_lgbm,
    _design_facts,
    _design_names,
    _early_stopped,
    _round_losses,
    _rows_before,
    _worker_designs,
    train_on_dask,
)
from ltr.logs import parse_day, read_logs
from ltr.models import LightGBMRanker
from ltr.train import train_ranker

TRAIN_END = parse_day("2026-01-15")


def _designs(client, opened, builder):
    """The training rows' LightGBM inputs on the workers (one design per worker), as ``train_on_dask``
    builds them."""
    samples = labelled_parts(opened)
    facts = samples.run(part_facts)
    first = min(d for f in facts for d in f["days"])
    train = samples.days(facts, first, TRAIN_END)
    shared = client.scatter(builder, broadcast=True, hash=False)
    designs = _worker_designs(client, train, shared)
    names = client.submit(_design_names, train.futures[0], shared, "dense", pure=False).result()
    categorical = [j for j, name in enumerate(names) if name.endswith(":code")]
    return designs, client.gather(client.map(_design_facts, designs, pure=False)), len(names), categorical


@pytest.fixture(scope="module")
def designs(client, opened, local_data):
    client.wait_for_workers(2, timeout=60)
    return _designs(client, opened, local_data.builder)


@pytest.fixture(scope="module")
def one_worker(partitioned, local_data):
    """A cluster of one worker (LightGBM without its network)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="2GiB") as cluster, Client(cluster, set_as_default=False) as client:
        yield client, _designs(client, open_logs(client, partitioned), local_data.builder)


def _curve(client, designs, text, day):
    shared = client.scatter([text], broadcast=True, hash=False)[0]  # a string argument could pass for a key
    found = client.gather(client.map(_round_losses, designs, model_text=shared, day=day, pure=False))
    return sum(loss for loss, _ in found) / sum(n for _, n in found)


def _setting(designs, draws):
    designs, facts, width, categorical = designs
    params = {"num_boost_round": 300, "learning_rate": 0.3,
              **({} if draws else {"feature_fraction": 1.0, "bagging_fraction": 1.0})}
    day = max(d for f in facts for d in f["days"])
    stops = [_rows_before(f, day) for f in facts]
    return designs, stops, width, LightGBMRanker(**params)._checked_params(), categorical, day


@pytest.mark.parametrize("draws", [False, True])
def test_chunks_continue_the_one_run(draws, one_worker):
    """The validation run in chunks against the same rounds boosted in one run (the implementation
    before chunks: every round boosted, the rule applied to the whole curve afterwards). Without
    random draws (no bagging, every column) the chunks' trees are the one run's: the same curve to the
    last bit and the same chosen round. With them (the defaults) the first chunk is the one run's
    first rounds; each later chunk restarts LightGBM's generators (continued training does), with
    seeds of its own, so its trees grow from other bags and columns and the chosen round can differ.
    One worker: on two, lightgbm.dask is not reproducible from one run to the next (not even two
    one-chunk runs), so no run is a reference for another."""
    client, designs = one_worker
    designs, stops, width, params, categorical, day = _setting(designs, draws)
    patience = LightGBMRanker().early_stopping_rounds
    whole = _curve(client, designs, _dask_lgbm(client, designs, stops, width, params, 300, categorical), day)
    text, got, _ = _early_stopped(client, designs, stops, width, params, 300, patience, categorical, day)
    curve = _curve(client, designs, text, day)
    assert curve.size < 300 and curve.size % patience == 0  # stopped early, after whole chunks
    np.testing.assert_array_equal(curve[:patience], whole[:patience])  # the first chunk: the same trees
    if draws:
        assert not np.array_equal(curve, whole[:curve.size])  # later chunks: other bags
    else:
        np.testing.assert_array_equal(curve, whole[:curve.size])
        assert got == _best_round(whole, patience)


def test_chunked_validation_run_on_two_workers_stops_by_the_rule(client, designs):
    designs, stops, width, params, categorical, day = _setting(designs, True)
    patience = LightGBMRanker().early_stopping_rounds
    text, got, _ = _early_stopped(client, designs, stops, width, params, 300, patience, categorical, day)
    curve = _curve(client, designs, text, day)
    # The best of the rounds the rule looked at: it stops patience rounds after its best, so a lower
    # loss later in the last chunk is never seen (LightGBM's early stopping does not see it either).
    assert got == _best_round(curve, patience) == int(np.argmin(curve[:got + patience])) + 1
    # The first chunk end where the best round is ``patience`` rounds old: the single-machine stop.
    assert curve.size % patience == 0 and patience <= curve.size - got < 2 * patience and curve.size < 300
    assert _chunk_params(params, 1)["bagging_seed"] != _chunk_params(params, 2)["bagging_seed"]


@pytest.fixture(scope="module")
def no_refit(opened):
    return train_on_dask(opened, "lgbm", TRAIN_END, refit=False, leakage_check=False)


def test_no_refit_on_dask_keeps_the_validation_run_model(no_refit, local_data, partitioned):
    record = no_refit.metadata["training"]["validation"]
    assert record["refit"] is False
    chosen = record["chosen"]["num_boost_round"]
    assert no_refit.model.booster_.num_trees() == chosen == no_refit.model.best_iteration_
    # The kept model is the one that chose: its validation-day logloss is the one recorded.
    valid_day = local_data.train["day"].max()
    rows = local_data.train.loc[local_data.train["day"] == valid_day]
    p = no_refit.score(rows, history=local_data.samples)
    y = rows["click"].to_numpy()
    np.testing.assert_allclose(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)), record["valid"]["logloss"],
                               rtol=1e-9)
    local = train_ranker(read_logs(partitioned), "lgbm", data=local_data, refit=False, leakage_check=False)
    assert local.metadata["training"]["validation"]["refit"] is False
    assert abs(no_refit.metadata["metrics"]["auc"] - local.metadata["metrics"]["auc"]) < 0.002
