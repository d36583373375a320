"""Tests for ltr.serving.Ranker: train/serve consistency, explanations, bad frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from sklearn.metrics import roc_auc_score

from ltr.logs import join_samples
from ltr.score import score_logs
from ltr.simulate import simulate_world
from ltr.train import evaluation_metrics, prepare_training, train_ranker

MODELS = {"lr": {}, "lgbm": {"num_boost_round": 20, "min_data_in_leaf": 20, "num_threads": 2, "seed": 0}}


@pytest.fixture(scope="module")
def world():
    logs = simulate_world(users=300, items=400, days=6, seed=7).logs
    samples = join_samples(logs).samples
    train_end = int(samples["day"].max()) - 1
    data = prepare_training(logs, train_end)
    rankers = {name: train_ranker(logs, name, model_params=params, data=data) for name, params in MODELS.items()}
    return logs, samples, train_end, rankers


def _request_frame(samples: pd.DataFrame, day: int, n_items: int, seed: int) -> pd.DataFrame:
    """One request of ``day`` with ``n_items`` candidate items (known and unknown ids)."""
    rng = np.random.default_rng(seed)
    row = samples.loc[samples["day"] == day].iloc[0]
    items = rng.choice(np.arange(1, 2 * samples["item_id"].max()), size=n_items, replace=False)
    return pd.DataFrame({
        "request_id": np.full(n_items, row["request_id"]),
        "user_id": np.full(n_items, row["user_id"]),
        "item_id": items.astype(np.int64),
        "ts": np.full(n_items, row["ts"], dtype=np.int64),
        "position": np.tile(np.arange(1, 11), n_items // 10 + 1)[:n_items],
        "device": np.full(n_items, row["device"], dtype=object),
        "recall_source": rng.choice(np.asarray(samples["recall_source"].unique(), dtype=object), size=n_items),
    })


@pytest.mark.parametrize("name", sorted(MODELS))
def test_300_candidates_match_batch(world, name):
    _, samples, train_end, rankers = world
    ranker = rankers[name]
    frame = _request_frame(samples, train_end + 1, 300, seed=1)
    online = ranker.score(frame)
    assert online.shape == (300,) and online.dtype == np.float64
    # Batch path: the candidates inside a large batch of other rows, features from the full log history.
    others = samples.loc[samples["day"] == train_end + 1]
    batch = pd.concat([others[frame.columns], frame], ignore_index=True)
    scored = ranker.score(batch, history=samples)
    np.testing.assert_allclose(online, scored[len(others):], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_requests_match_batch_cli_path(world, name):
    logs, samples, train_end, rankers = world
    ranker = rankers[name]
    batch = score_logs(ranker, logs, train_end + 1, train_end + 1)
    day = samples.loc[samples["day"] == train_end + 1].reset_index(drop=True)
    assert len(batch) == len(day)
    for request_id in day["request_id"].unique()[:5]:
        rows = day.loc[day["request_id"] == request_id, ["request_id", "user_id", "item_id", "ts", "position",
                                                          "device", "recall_source"]]
        keys = list(zip(rows["request_id"], rows["item_id"], strict=True))
        expected = batch.set_index(["request_id", "item_id"]).loc[keys, "score"].to_numpy()
        np.testing.assert_allclose(ranker.score(rows), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_row_order_does_not_matter(world, name):
    _, samples, train_end, rankers = world
    frame = _request_frame(samples, train_end + 1, 50, seed=2)
    perm = np.random.default_rng(3).permutation(50)
    a = rankers[name].score(frame)
    b = rankers[name].score(frame.iloc[perm].reset_index(drop=True))
    np.testing.assert_allclose(b, a[perm], rtol=1e-12)


def test_metrics_reported_match_sklearn(world):
    _, samples, train_end, rankers = world
    ranker = rankers["lr"]
    held = samples.loc[samples["day"] > train_end]
    p = ranker.score(held, history=samples)
    m = ranker.metadata["metrics"]
    assert m["auc"] == pytest.approx(roc_auc_score(held["click"], p), abs=1e-12)
    assert m["online_auc"] == pytest.approx(roc_auc_score(held["click"], held["rank_score"]), abs=1e-12)
    assert m["mean_predicted_ctr"] == pytest.approx(p.mean(), rel=1e-12)
    assert m["actual_ctr"] == pytest.approx(held["click"].mean(), rel=1e-12)
    assert m["rows"] == len(held)


def test_evaluation_metrics_edge_cases():
    one_class = evaluation_metrics([0, 0, 0], [0.1, 0.2, 0.3], online=[1.0, 2.0, 3.0])
    assert one_class["auc"] is None and one_class["online_auc"] is None and one_class["calibration_ratio"] is None
    hand = evaluation_metrics([0, 1, 1, 0], [0.2, 0.8, 0.4, 0.4], online=[np.nan, 1.0, 2.0, 0.5])
    # pairs (pos, neg): (0.8>0.2), (0.8>0.4), (0.4>0.2), (0.4=0.4 -> 1/2) -> 3.5/4
    assert hand["auc"] == pytest.approx(0.875)
    assert hand["online_auc"] == pytest.approx(1.0) and hand["online_auc_rows"] == 3
    assert hand["mean_predicted_ctr"] == pytest.approx(0.45) and hand["calibration_ratio"] == pytest.approx(0.9)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_explain_contributions_add_up(world, name):
    _, samples, train_end, rankers = world
    ranker = rankers[name]
    frame = _request_frame(samples, train_end + 1, 4, seed=4)
    table = ranker.explain(frame, top=5)
    scores = ranker.score(frame)
    assert set(table["row"]) <= {0, 1, 2, 3}
    assert table.groupby("row").size().max() <= 5
    for row, part in table.groupby("row"):
        assert list(part["rank"]) == list(range(1, len(part) + 1))
        assert np.all(np.diff(np.abs(part["contribution"].to_numpy())) <= 1e-15)
        assert part["score"].iloc[0] == pytest.approx(scores[row], rel=1e-9)
        assert part["logit"].iloc[0] == pytest.approx(logit(scores[row]), rel=1e-9, abs=1e-9)
    X, _ = ranker.transform(frame)
    full = ranker.model.contributions(X)
    np.testing.assert_allclose(full.sum(axis=1), logit(scores), rtol=1e-9, atol=1e-9)


def test_explain_lr_is_weight_times_value(world):
    _, samples, train_end, rankers = world
    ranker = rankers["lr"]
    frame = _request_frame(samples, train_end + 1, 2, seed=5)
    table = ranker.explain(frame, top=1000)
    X, names = ranker.transform(frame)
    dense = X.toarray()
    coef = ranker.model.coef_
    for _, r in table.iterrows():
        j = names.index(r["feature"])
        assert r["value"] == dense[r["row"], j]
        assert r["contribution"] == pytest.approx(coef[j] * dense[r["row"], j], abs=1e-15)
        assert r["bias"] == ranker.model.intercept_
    assert len(table) == np.count_nonzero(dense * coef)


@pytest.mark.parametrize("column", ["user_id", "item_id", "ts", "device"])
def test_missing_column_is_named(world, column):
    _, samples, train_end, rankers = world
    frame = _request_frame(samples, train_end + 1, 10, seed=6).drop(columns=[column])
    with pytest.raises(ValueError, match=f"frame must have column '{column}'"):
        rankers["lr"].score(frame)


def test_bad_frames(world):
    _, samples, train_end, rankers = world
    with pytest.raises(TypeError, match=r"frame must be a pandas DataFrame\. Got dict instead\."):
        rankers["lr"].score({"user_id": [1]})
    empty = _request_frame(samples, train_end + 1, 10, seed=6).iloc[:0]
    assert rankers["lgbm"].score(empty).shape == (0,)
    with pytest.raises(ValueError, match=r"top must be an int in \[1, inf\)\. Got 0 instead\."):
        rankers["lr"].explain(_request_frame(samples, train_end + 1, 3, seed=6), top=0)
