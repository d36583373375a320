"""Request context columns are categorical features by default: low-cardinality ones are used,
high-cardinality ones (and attributes nearly unique per user) reported and skipped, ids and the
bucket never; a planted context effect is recovered by the default ranker."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ltr.features import FeatureBuilder, context_candidates
from ltr.features._attributes import AttributeTable
from ltr.features._plan import count_levels
from ltr.logs import join_samples, write_logs
from ltr.simulate import simulate_world
from ltr.train import main as train_main
from ltr.train import report_text, train_ranker

TABS = np.array(["feed", "follow", "search"])


@pytest.fixture(scope="module")
def world():
    """A world whose requests carry a tab (clicks in "search" mostly removed: a planted effect)
    and a near-unique session column, whose exposures carry an outcome column, and whose users
    have a follower count (nearly unique per user)."""
    logs = simulate_world(users=300, items=300, days=6, seed=8, candidates_per_request=20).logs
    rng = np.random.default_rng(0)
    requests = logs.requests.assign(tab=TABS[rng.integers(0, 3, len(logs.requests))],
                                    session=[f"s{i}" for i in rng.permutation(len(logs.requests))])
    tab = requests.set_index("request_id")["tab"]
    clicks = logs.clicks
    searched = tab.reindex(clicks["request_id"]).to_numpy() == "search"
    clicks = clicks.loc[~(searched & (rng.random(len(clicks)) < 0.85))].reset_index(drop=True)
    exposures = logs.exposures.assign(watch_time=rng.random(len(logs.exposures)))
    users = logs.users.assign(followers=rng.integers(0, 10**6, len(logs.users)))
    return logs.replace(requests=requests, clicks=clicks, exposures=exposures, users=users)


def test_count_levels_of_columns_and_attributes():
    frame = pd.DataFrame({"tab": ["a", "b", None, "a"] * 10, "user_id": np.arange(40) % 8, "item_id": 7})
    users = AttributeTable.from_frame(pd.DataFrame({"user_id": np.arange(6), "city": ["x", "y", None] * 2,
                                                    "age": [1.0, 2, 3, 4, 5, 6]}), "user_id", "users")
    # Users 6 and 7 are absent from the table: missing, not a level.
    assert count_levels(frame, ["tab", "user_city", "user_age"], None, users) == {"tab": 2, "user_city": 2,
                                                                                "user_age": 6}


def test_context_candidates_are_request_and_candidate_columns(world):
    samples = join_samples(world).samples
    # Requests' columns first, then the candidates'; never the exposures' own (watch_time may
    # be an outcome of the exposure), ids, times, labels, rank_pos/rank_score or the bucket.
    assert context_candidates(samples, world) == ("device", "tab", "session", "recall_source")


def test_builder_uses_low_and_reports_high_cardinality_context(world):
    samples = join_samples(world).samples
    builder = FeatureBuilder(context=("tab", "session", "device"), max_levels=50, min_count=5)
    builder.fit(samples, items=world.items, users=world.users)
    assert builder.categorical_[:4] == ["tab", "device", "hour", "position"]
    n_followers = world.users.set_index("user_id")["followers"].reindex(samples["user_id"]).nunique()
    assert builder.skipped_categorical_ == {"session": samples["session"].nunique(), "user_followers": n_followers}
    assert "user_city" in builder.categorical_ and "user_followers" not in builder.categorical_
    features = builder.transform(samples.head(50))
    assert "tab=search" in features.feature_names and not any(n.startswith("session") for n in features.feature_names)
    meta, arrays = builder.to_state()
    again = FeatureBuilder.from_state(json.loads(json.dumps(meta)), arrays)
    assert again.skipped_categorical_ == builder.skipped_categorical_ and again.categorical_ == builder.categorical_


def test_exclude_removes_context_and_attribute_features(world):
    samples = join_samples(world).samples
    builder = FeatureBuilder(context=("tab", "device"), exclude=("tab", "hour", "user_city", "item_category",
                                                                 "user_followers"))
    builder.fit(samples, items=world.items, users=world.users)
    assert not {"tab", "hour", "user_city", "item_category"} & set(builder.categorical_)
    assert {"device", "position", "item_city", "user_gender"} <= set(builder.categorical_)
    assert builder.skipped_categorical_ == {}


def test_default_context_is_device_and_recall_source(world):
    samples = join_samples(world).samples
    builder = FeatureBuilder().fit(samples.head(2000), items=world.items)
    assert builder.categorical_[:4] == ["device", "recall_source", "hour", "position"]


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"context": ("bucket",)}, ValueError, r"context must not include 'bucket': the A/B bucket is never a feature"),
    ({"context": ("tab", "user_id")}, ValueError, r"context must not include ids, times, labels .* Got \['user_id'\]"),
    ({"context": ("rank_score",)}, ValueError, r"Got \['rank_score'\] in"),
    ({"context": "tab"}, TypeError, r"context must be a tuple of str\. Got 'tab' instead\."),
    ({"context": ("tab",), "categorical": ("tab",)}, ValueError, r"context must be None when categorical is given"),
    ({"exclude": "tab"}, TypeError, r"exclude must be a tuple of str\. Got 'tab' instead\."),
    ({"max_levels": 0}, ValueError, r"max_levels must be an int in \[1, inf\)\. Got 0 instead\."),
])
def test_bad_context_parameters(world, params, error, match):
    samples = join_samples(world).samples.head(100)
    with pytest.raises(error, match=match):
        FeatureBuilder(**params).fit(samples)


@pytest.fixture(scope="module")
def rankers(world):
    end = "2026-01-08"
    with_tab = train_ranker(world, "lr", end)
    without = train_ranker(world, "lr", end, feature_params={"exclude": ("tab",)})
    return with_tab, without


def test_train_uses_request_context_by_default_and_reports_skipped(rankers):
    with_tab, without = rankers
    training = with_tab.metadata["training"]
    assert training["context_features"] == ["device", "tab", "recall_source", "hour", "position"]
    assert list(training["skipped_categorical"]) == ["session", "user_followers"]
    assert "tab=search" in with_tab.feature_names and "tab=search" not in without.feature_names
    text = report_text(with_tab)
    assert "  context features: device, tab, recall_source, hour, position" in text
    assert "categorical features skipped (distinct values > max_levels=200): session (" in text


def test_planted_context_effect_is_recovered(rankers):
    with_tab, without = rankers
    assert with_tab.metadata["metrics"]["auc"] > without.metadata["metrics"]["auc"] + 0.01


def test_train_cli_feature_option_excludes_a_context_column(world, tmp_path, capsys):
    write_logs(world, tmp_path / "logs")
    code = train_main([str(tmp_path / "logs"), "--model", "lr", "--train-end", "2026-01-08", "--out",
                       str(tmp_path / "bundle"), "--feature", 'exclude=["tab", "session", "user_followers"]'])
    out = capsys.readouterr().out
    assert code == 0 and "context features: device, recall_source, hour, position" in out
    assert "skipped" not in out
