"""Tests for eval.ab._guards: CUPED with a contaminated pre-period (defect 1) and the request unit
on user-randomised logs (defect 7)."""
from __future__ import annotations

import numpy as np
import pytest

from eval.ab import Inference, aa_self_check, compare_buckets
from eval.report import build_readout
from ltr.logs import join_samples
from ltr.simulate import simulate_world
from tests.eval.test_ab import _expand, _row, _user_samples, _world
from tests.eval.test_ab_cuped import _cuped_world


@pytest.fixture(scope="module")
def live_from_day_one():
    """A simulated world whose treatment (+15% clicks) is live on every day."""
    world = simulate_world(users=4000, days=10, seed=4, click_lift=0.15, candidates_per_request=20)
    return world.logs, join_samples(world.logs).samples


def test_defect1_cuped_refused_when_the_treatment_was_live_in_the_pre_period(live_from_day_one):
    logs, samples = live_from_day_one
    start = int(samples["day"].min()) + 5
    plain = build_readout(logs, samples, start_day=start, aa_splits=0)
    cuped = build_readout(logs, samples, start_day=start, cuped=True, aa_splits=0)
    lift = {name: next(r for r in r_["ab"]["table"] if r["metric"] == "ctr")["lift"]
            for name, r_ in (("plain", plain), ("cuped", cuped))}
    # Before the guard, CUPED regressed most of the lift away; now it is refused, loudly.
    assert cuped["ab"]["cuped"]["applied"] is False and cuped["ab"]["pre_period"] is None
    assert lift["cuped"] == pytest.approx(lift["plain"], rel=1e-12) and lift["plain"] > 0.1
    warning = cuped["verdict"][0]["warnings"][0]
    assert warning.startswith("CUPED refused: the arms already differed before the experiment window")
    assert "--experiment-start" in warning
    assert cuped["ab"]["cuped"]["worst"]["p_holm"] < 0.01
    assert all(r["var_reduction"] is None for r in cuped["ab"]["table"])


def _contaminated(rng, n_users, lift, pre_lift):
    """The CUPED world of test_ab, with the treatment also acting in the pre-period."""
    samples, pre, assign = _cuped_world(rng, n_users, lift=lift)
    exposures, ctr = _world(np.random.default_rng(1), n_users)
    pre_exp = rng.poisson(exposures * 1.5)
    pre_clicks = rng.binomial(pre_exp, np.minimum(ctr * np.where(assign == 1, 1 + pre_lift, 1.0), 1.0))
    pre = _expand(np.arange(n_users), np.full(n_users, "A"), pre_exp, pre_clicks, rng.binomial(pre_clicks, 0.2),
                  day=3).drop(columns=["bucket"])
    return samples, pre


@pytest.mark.parametrize(("pre_lift", "applied"), [(0.0, True), (0.3, False)])
def test_cuped_balance_check_on_planted_pre_periods(pre_lift, applied):
    rng = np.random.default_rng(77)
    samples, pre = _contaminated(rng, 4000, lift=0.1, pre_lift=pre_lift)
    result = compare_buckets(samples, "A", "B", pre_samples=pre)
    assert result.cuped is not None and result.cuped.applied is applied
    assert result.cuped.balance.balanced is applied
    assert (result.pre_period is not None) is applied
    assert set(result.cuped.balance.table["metric"]) == set(result.table["metric"])
    ctr = _row(result, "ctr")
    assert np.isnan(ctr["var_reduction"]) is not applied


def test_experiment_start_moves_the_pre_period(live_from_day_one):
    logs, samples = live_from_day_one
    first = int(samples["day"].min())
    readout = build_readout(logs, samples, experiment_start=first + 3, start_day=first + 5, cuped=True, aa_splits=0)
    assert readout["window"][0] == readout["ab"]["experiment_days"][0]
    assert readout["ab"]["cuped"]["pre_period"][1] < readout["window"][0]
    with pytest.raises(ValueError, match=r"--start must not be before --experiment-start"):
        build_readout(logs, samples, experiment_start=first + 5, start_day=first + 3)


def test_defect7_request_unit_on_user_randomised_logs_is_warned_and_self_check_flags_it():
    rng = np.random.default_rng(3)
    samples, *_ = _user_samples(rng, 3000)
    result = compare_buckets(samples, "A", "B", unit="request")
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("unit='request' but the buckets look assigned per user")
    assert compare_buckets(samples, "A", "B", unit="user").warnings == ()
    # 1,000 splits tell a rate near 0.12 from the 0.075 flag line whatever the seed.
    check = aa_self_check(samples, "A", "request", "ctr", "holm", Inference(), splits=1000, seed=1)
    assert check.split_by == "user"
    flagged = check.table.set_index("metric")["flagged"]
    assert flagged["ctr"] and check.table.set_index("metric").loc["ctr", "false_positive_rate"] > 0.1
    by_user = aa_self_check(samples, "A", "user", "ctr", "holm", Inference(), splits=200, seed=1)
    assert not by_user.table["flagged"].any()


def test_request_randomised_logs_are_not_warned():
    rng = np.random.default_rng(4)
    samples, *_ = _user_samples(rng, 3000)
    samples["bucket"] = np.where(samples["request_id"].to_numpy() % 2 == 0, "A", "B")
    result = compare_buckets(samples, "A", "B", unit="request")
    assert result.warnings == ()
    check = aa_self_check(samples, "A", "request", "ctr", "holm", Inference(), splits=50, seed=1)
    assert check.split_by == "request"
