"""The world simulator: deterministic, committed fixtures reproducible, planted truth visible in the logs."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ltr.logs import join_samples, read_logs
from ltr.simulate import WorldConfig, simulate_world
from ltr.simulate.__main__ import main as simulate_main

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "fixtures" / "world"


@pytest.fixture(scope="module")
def fixture_samples():
    logs = read_logs(WORLD)
    return logs, join_samples(logs).samples, json.loads((WORLD / "truth.json").read_text())


def _fixture_config() -> WorldConfig:
    """``FIXTURE_CONFIG`` of ``fixtures/make_fixtures.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "fixtures" / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FIXTURE_CONFIG


def test_committed_fixture_world_equals_a_fresh_simulation():
    world = simulate_world(_fixture_config())
    committed = read_logs(WORLD)
    for name, frame in world.logs.tables().items():
        pd.testing.assert_frame_equal(committed.tables()[name], frame, check_dtype=False, rtol=1e-6,
                                      obj=f"fixtures/world/{name} (re-run `make fixtures` if the change is deliberate)")
    truth = json.loads((WORLD / "truth.json").read_text())
    assert truth["rows"] == world.truth["rows"]
    assert truth["true_ctr_by_bucket"] == pytest.approx(world.truth["true_ctr_by_bucket"], rel=1e-9)


def test_same_seed_same_world_and_other_seed_differs():
    a = simulate_world(users=200, items=300, days=3, seed=5, candidates_per_request=40)
    b = simulate_world(users=200, items=300, days=3, seed=5, candidates_per_request=40)
    c = simulate_world(users=200, items=300, days=3, seed=6, candidates_per_request=40)
    for name in ("requests", "candidates", "exposures", "clicks", "orders"):
        pd.testing.assert_frame_equal(a.logs.tables()[name], b.logs.tables()[name])
    assert not a.logs.clicks.equals(c.logs.clicks)


def test_fixture_ctr_per_bucket_matches_truth_within_sampling_error(fixture_samples):
    _, samples, truth = fixture_samples
    ctr = samples.groupby("bucket")["click"].agg(["mean", "size"])
    for bucket, row in ctr.iterrows():
        p = truth["true_ctr_by_bucket"][bucket]
        # Clicks are independent Bernoulli draws given the exposures, so the binomial
        # standard error is the right yardstick; 4 SE keeps the false-alarm rate ~6e-5.
        se = np.sqrt(p * (1 - p) / row["size"])
        assert abs(row["mean"] - p) < 4 * se, (bucket, row["mean"], p, se)
    diff = ctr.loc["treatment", "mean"] - ctr.loc["control", "mean"]
    true_diff = truth["true_ctr_by_bucket"]["treatment"] - truth["true_ctr_by_bucket"]["control"]
    se_diff = np.sqrt(sum(truth["true_ctr_by_bucket"][b] / ctr.loc[b, "size"] for b in ("treatment", "control")))
    assert abs(diff - true_diff) < 4 * se_diff
    assert truth["planted_ctr_lift"] > 0.02


def test_fixture_world_shape(fixture_samples):
    logs, samples, _ = fixture_samples
    assert logs.users["user_id"].nunique() == 2000
    assert samples["day"].nunique() == 14
    assert set(logs.requests["bucket"]) == {"control", "treatment"}
    assert {"interest", "hot", "random"} == set(logs.candidates["recall_source"])
    per_request = logs.candidates.groupby("request_id").size()
    assert per_request.min() >= 10
    # Position bias: CTR falls with position.
    by_pos = samples.groupby("position")["click"].mean()
    assert by_pos.iloc[0] > by_pos.iloc[-1] * 1.5
    # The production ranker's score is informative but not perfect.
    auc = roc_auc_score(samples["click"], samples["rank_score"])
    assert 0.55 < auc < 0.9
    assert sum(Path(WORLD, f).stat().st_size for f in Path(WORLD).iterdir()) < 6_000_000


def test_aa_world_has_no_planted_lift():
    world = simulate_world(users=1500, items=500, days=3, seed=3, candidates_per_request=40, aa=True)
    assert world.truth["planted_ctr_lift"] == pytest.approx(0.0, abs=0.03)
    assert world.truth["aa"] is True


def test_click_lift_is_planted_on_top():
    world = simulate_world(users=1500, items=500, days=3, seed=3, candidates_per_request=40,
                           ranker_noise_treatment=1.2, ranker_noise_control=1.2, click_lift=0.10)
    assert world.truth["planted_ctr_lift"] == pytest.approx(0.10, abs=0.03)


def test_no_item_is_shown_before_it_is_published():
    world = simulate_world(users=300, items=400, days=4, seed=1, candidates_per_request=40)
    cand = world.logs.candidates.merge(world.logs.requests[["request_id", "ts"]], on="request_id")
    published = world.logs.items.set_index("item_id")["publish_ts"]
    assert (cand["item_id"].map(published) <= cand["ts"]).all()


@pytest.mark.parametrize(("field", "value", "pattern"), [
    ("users", 0, r"users must be an int in \[1, inf\)\. Got 0 instead\."),
    ("exposures_per_request", 50, "exposures_per_request must be <= candidates_per_request"),
    ("treatment_share", 1.0, r"treatment_share must be a float in \(0, 1\)\. Got 1\.0 instead\."),
    ("requests_per_user_day", 0.0, r"requests_per_user_day must be a float in \(0, inf\)\. Got 0\.0 instead\."),
    ("start_date", "tomorrow", "start_date must be a date"),
])
def test_bad_config(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        simulate_world(WorldConfig(candidates_per_request=20), **{field: value})


def test_cli_writes_world_and_truth(tmp_path):
    assert simulate_main([str(tmp_path / "w"), "--users", "100", "--items", "200", "--days", "2", "--seed", "1",
                  "--candidates", "30"]) == 0
    truth = json.loads((tmp_path / "w" / "truth.json").read_text())
    assert truth["seed"] == 1 and "position_bias" in truth
    read_logs(tmp_path / "w")
    assert simulate_main([str(tmp_path / "x"), "--users", "0"]) == 1


#: Small worlds over the parameters that push click probabilities and ranker scores to 0 or 1
#: (strong intercepts, big lifts, no or much ranker noise): every one must write valid logs.
GRID = [
    dict(intercept=intercept, click_lift=lift, ranker_noise_control=noise, ranker_noise_treatment=noise / 2, aa=aa)
    for intercept in (-6.0, -4.2, 4.0, 40.0)
    for lift in (0.0, 0.15, 3.0)
    for noise in (0.0, 1.2, 6.0)
    for aa in (False, True)
    if not (aa and lift == 3.0)
]


@pytest.mark.parametrize("params", GRID, ids=[",".join(f"{k}={v}" for k, v in p.items()) for p in GRID])
def test_every_simulated_world_passes_validation(params, tmp_path):
    world = simulate_world(users=40, items=40, days=2, seed=7, candidates_per_request=12, exposures_per_request=4,
                           requests_per_user_day=1.0, **params)
    world.save(tmp_path)
    logs = read_logs(tmp_path)  # validates every table
    score = logs.candidates["rank_score"].to_numpy()
    assert np.isfinite(score).all() and ((score >= 0) & (score <= 1)).all()
    json.loads((tmp_path / "truth.json").read_text())


def test_a_world_without_clicks_is_refused_clearly():
    with pytest.raises(ValueError, match=r"^the world must have clicks to be a log: with intercept=-30\.0, 30 users"):
        simulate_world(users=30, items=40, days=2, seed=7, candidates_per_request=12, intercept=-30.0)


def test_cli_world_of_the_issue_is_valid(tmp_path):
    # `--click-lift 0.15` once wrote NaN rank_score (log-odds of a click probability capped at 1).
    assert simulate_main([str(tmp_path / "w"), "--users", "400", "--items", "300", "--days", "2", "--seed", "3",
                          "--click-lift", "0.15", "--candidates", "50"]) == 0
    assert np.isfinite(read_logs(tmp_path / "w").candidates["rank_score"]).all()
