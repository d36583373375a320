"""Tests for ltr.leakage: planted leaky features are caught and named, allowed ones pass."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ltr.features import FeatureBuilder, FeatureMatrix, labelled_samples
from ltr.leakage import LeakageError, check_leakage, perturb_after, univariate_auc
from ltr.logs import read_logs
from ltr.train import train_ranker

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "fixtures" / "real"
TZ = "Asia/Shanghai"
TRAIN_END = "2022-04-28"


@pytest.fixture(scope="module")
def logs():
    return read_logs(REAL, tz=TZ)


@pytest.fixture(scope="module")
def fitted(logs):
    samples = labelled_samples(logs, TZ)
    train = samples.loc[samples["day"] <= samples["day"].max() - 2].reset_index(drop=True)
    builder = FeatureBuilder(tz=TZ, context=("tab",), outcomes=("outcome_watch_ratio",))
    features = builder.fit_transform(train, items=logs.items, users=logs.users)
    return builder, train, features


def _same_day_user_ctr(rows: pd.DataFrame, history: pd.DataFrame) -> np.ndarray:
    """A leak: the user's click rate over the history rows of the row's own day and later."""
    out = np.full(len(rows), np.nan)
    for i, (user, day) in enumerate(zip(rows["user_id"], rows["day"], strict=True)):
        hit = (history["user_id"] == user).to_numpy() & (history["day"] >= day).to_numpy()
        if hit.any():
            out[i] = history["click"].to_numpy()[hit].mean()
    return out


def _with_planted(builder, plant):
    """``builder.transform`` with the planted columns appended to ``dense``."""
    def transform(rows, history):
        out = builder.transform(rows, history=history)
        extra = {name: fn(rows, history) for name, fn in plant.items()}
        dense = np.column_stack([out.dense, *extra.values()]) if extra else out.dense
        return FeatureMatrix(out.X, out.feature_names, dense, [*out.dense_names, *extra])
    return transform


def _label_copy(rows, history):
    noise = np.random.default_rng(1).random(len(rows)) < 0.02
    return np.where(noise, 1 - rows["click"].to_numpy(), rows["click"].to_numpy()).astype(float)


PLANTS = {"label_copy": _label_copy, "same_day_user_ctr": _same_day_user_ctr}


def test_project_features_pass(fitted):
    builder, train, features = fitted
    report = check_leakage(_with_planted(builder, {}), train, features, rows=300)
    assert report.flagged == [] and report.changed == {}
    assert set(report.univariate) == {n.removesuffix(":code") for n in features.dense_names}
    assert max(report.univariate.values()) < 0.95


@pytest.mark.parametrize("planted", sorted(PLANTS))
@pytest.mark.parametrize("univariate_rows", [100_000, 500])  # every row / a sample of them
def test_planted_leak_is_caught_and_named(fitted, planted, univariate_rows):
    builder, train, _ = fitted
    transform = _with_planted(builder, {planted: PLANTS[planted]})
    features = transform(train, train)
    assert len(train) > 500
    with pytest.raises(LeakageError, match=rf"features look leaky: {planted} \(") as caught:
        check_leakage(transform, train, features, rows=300, univariate_rows=univariate_rows)
    other = [n for n in features.dense_names if n.removesuffix(":code") != planted]
    assert not any(f"{n.removesuffix(':code')} (" in str(caught.value) for n in other)
    why = "univariate AUC" if planted == "label_copy" else "changed on"
    assert why in str(caught.value)


def test_allow_list_lets_a_flagged_feature_through(fitted):
    builder, train, _ = fitted
    transform = _with_planted(builder, PLANTS)
    features = transform(train, train)
    report = check_leakage(transform, train, features, rows=300, allow=tuple(PLANTS))
    assert report.flagged == [] and sorted(report.allowed) == sorted(PLANTS)
    with pytest.raises(LeakageError, match="same_day_user_ctr") as caught:
        check_leakage(transform, train, features, rows=300, allow=("label_copy",))
    assert "label_copy (" not in str(caught.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_univariate_auc_matches_sklearn_for_numbers(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    x = np.round(rng.normal(size=500) + y * 0.5, 1)  # ties
    x[rng.random(500) < 0.1] = np.nan
    filled = np.where(np.isnan(x), np.nanmin(x) - 1, x)
    reference = roc_auc_score(y, filled)
    assert univariate_auc(x, y, categorical=False) == pytest.approx(max(reference, 1 - reference), abs=1e-12)
    assert univariate_auc(-x, y, categorical=False) >= 0.5


def test_univariate_auc_of_ids_is_not_fooled_by_singletons():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    ids = np.arange(2000, dtype=float)  # every row its own level: no signal out of sample
    assert univariate_auc(ids, y, categorical=True) < 0.6
    assert univariate_auc(y.astype(float), y, categorical=True) > 0.99


def test_perturb_after_keeps_earlier_rows(fitted):
    _, train, _ = fitted
    day = int(np.unique(train["day"])[1])
    out = perturb_after(train, day, seed=0)
    before = train.loc[train["day"] < day].sort_values(["request_id", "item_id"]).reset_index(drop=True)
    kept = out.loc[out["day"] < day].sort_values(["request_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, kept)
    assert not out.loc[out["day"] >= day, "click"].reset_index(drop=True).equals(
        train.loc[train["day"] >= day, "click"].reset_index(drop=True))


def test_train_ranker_stops_on_a_leaky_context_column(logs):
    # A request column that records whether the request was clicked: context that knows the label.
    samples = labelled_samples(logs, TZ)
    clicked = samples.groupby("request_id")["click"].max()
    requests = logs.requests.assign(clicked_any=logs.requests["request_id"].map(clicked).fillna(0).astype(int))
    leaky = logs.replace(requests=requests)
    with pytest.raises(LeakageError, match=r"clicked_any \(univariate AUC"):
        train_ranker(leaky, "lr", TRAIN_END, tz=TZ)
    ranker = train_ranker(leaky, "lr", TRAIN_END, tz=TZ, allow_leaky=("clicked_any",))
    assert ranker.metadata["training"]["leakage_seconds"] is not None
