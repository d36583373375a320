"""Tests for eval.ab._inference: one test per row gives both its p-value and its interval."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from eval.ab import Inference, compare_buckets
from eval.ab._inference import EXACT, infer, interval, mde, multiplier
from tests.eval.test_ab import _expand, _row, _user_samples, _world


def _orders_frame(n_c, orders_c, n_t, orders_t, clicks=3):
    """Users with one request of 5 exposures; the first users of each arm carry one order each."""
    users = np.arange(n_c + n_t)
    buckets = np.where(users < n_c, "control", "treatment")
    orders = np.zeros(users.size, dtype=int)
    orders[:orders_c] = 1
    orders[n_c:n_c + orders_t] = 1
    return _expand(users, buckets, np.full(users.size, 5), np.full(users.size, clicks), orders)


# ----------------------------------------------------------------------------- defects 2, 3, 6


def test_defect3_four_orders_against_none_is_not_significant():
    # 500 users per arm, 4 orders against 0: the Wald test said p = 0.045 with a NaN interval.
    samples = _orders_frame(500, 4, 500, 0)
    result = compare_buckets(samples, "control", "treatment", primary="orders_per_user")
    row = _row(result, "orders_per_user")
    assert row["method"] == "exact"
    # Exact conditional test: 0 of 4 events in treatment when each lands there with chance 1/2.
    assert row["p_value"] == pytest.approx(2 * 0.5**4)
    fisher = stats.fisher_exact([[4, 496], [0, 500]]).pvalue
    assert row["p_value"] == pytest.approx(fisher, abs=0.01)
    assert not row["significant"] and row["direction"] == "down"
    # No treatment event: the lift may be -100%, and the interval holds 0 (not significant).
    assert row["ci_low"] == -1.0 and 0.0 < row["ci_high"] < np.inf


def test_defect2_increase_from_zero_is_flagged_up():
    # 0 orders in control and 9 in treatment: the lift is undefined, the direction is not.
    samples = _orders_frame(500, 0, 500, 9)
    result = compare_buckets(samples, "control", "treatment", primary="orders_per_user")
    row = _row(result, "orders_per_user")
    assert np.isnan(row["lift"]) and row["abs_diff"] > 0
    assert row["method"] == "exact" and row["p_value"] == pytest.approx(2 * 0.5**9)
    assert row["significant"] and row["direction"] == "up"
    assert row["ci_low"] > 0 and np.isinf(row["ci_high"])


@pytest.mark.parametrize("min_events", [1, 30])
def test_defect6_p_value_and_interval_agree_on_15_against_28(min_events):
    # 15 vs 28 orders: p = 0.047 by one method and an interval through 0 by another. Now the
    # interval excludes 0 exactly when p < alpha, whichever method the row uses.
    samples = _orders_frame(2000, 15, 2000, 28)
    for alpha in (0.05, 0.04, 0.1):
        result = compare_buckets(samples, "control", "treatment", primary="orders_per_user", alpha=alpha,
                                 min_events=min_events)
        row = _row(result, "orders_per_user")
        assert row["method"] == ("delta" if min_events == 1 else "exact")
        if min_events == 1:
            # The delta interval is Fieller's: every ratio the Wald test does not reject.
            ratio = row["ci_high"] + 1
            m_c, m_t = row["control"], row["treatment"]
            v = {arm: m * (1 - m) / 2000 for arm, m in (("c", m_c), ("t", m_t))}
            z = stats.norm.isf(alpha / 2)
            assert (m_t - ratio * m_c) ** 2 == pytest.approx(z * z * (v["t"] + ratio**2 * v["c"]), rel=1e-9)
        excludes = row["ci_low"] > 0 or row["ci_high"] < 0
        assert excludes == (row["p_value"] < alpha), (alpha, row["p_value"], row["ci_low"])


# ----------------------------------------------------------------------------- properties on random inputs


def _random_arms(rng, size):
    m_c = rng.uniform(0.5, 2.0, size)
    m_t = m_c * rng.uniform(0.7, 1.4, size)
    v_c = (m_c * rng.uniform(0.01, 0.15, size)) ** 2
    v_t = (m_t * rng.uniform(0.01, 0.15, size)) ** 2
    x_c = rng.integers(0, 200, size).astype(float)
    x_t = rng.integers(0, 200, size).astype(float)
    w = rng.uniform(100, 1000, size)
    return (m_c, v_c, x_c, w), (m_t, v_t, x_t, w * rng.uniform(0.8, 1.2, size))


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_interval_excludes_zero_exactly_when_p_below_level(sequential, seed):
    rng = np.random.default_rng(seed)
    control, treatment = _random_arms(rng, 4000)
    settings = Inference(sequential=sequential)
    rs = infer(control, treatment, rng.integers(100, 50_000, 4000), settings)
    for level in (0.05, 0.01, 0.2):
        low, high = interval(rs, level, settings)
        tested = ~np.isnan(rs.p_value)
        excludes = (low > 0) | (high < 0)
        # Ties at the boundary are measure-zero; compare away from it.
        clear = np.abs(rs.p_value - level) > 1e-9
        np.testing.assert_array_equal(excludes[tested & clear], (rs.p_value < level)[tested & clear])
    assert (rs.method == EXACT).any() and (rs.method != EXACT).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_rows_match_scipy_binomtest_and_clopper_pearson(seed):
    rng = np.random.default_rng(seed)
    x_c, x_t = rng.integers(0, 25, 30).astype(float), rng.integers(0, 25, 30).astype(float)
    w_c, w_t = rng.uniform(100, 900, 30), rng.uniform(100, 900, 30)
    rs = infer((x_c / w_c, x_c / w_c**2, x_c, w_c), (x_t / w_t, x_t / w_t**2, x_t, w_t), 1000, Inference())
    low, high = interval(rs, 0.05, Inference())
    for i in range(30):
        n = int(x_c[i] + x_t[i])
        assert rs.method[i] == EXACT
        if n == 0:
            assert np.isnan(rs.p_value[i])
            continue
        pi = w_t[i] / (w_c[i] + w_t[i])
        k = int(x_t[i])
        central = min(1.0, 2 * min(stats.binom.cdf(k, n, pi), stats.binom.sf(k - 1, n, pi)))
        assert rs.p_value[i] == pytest.approx(central, rel=1e-10)
        ci = stats.binomtest(k, n, pi).proportion_ci(0.95, method="exact")
        to_lift = lambda p, i=i: p / (1 - p) * w_c[i] / w_t[i] - 1  # noqa: E731
        assert low[i] == pytest.approx(to_lift(ci.low), rel=1e-8, abs=1e-12)
        assert high[i] == (pytest.approx(to_lift(ci.high), rel=1e-8) if ci.high < 1 else np.inf)


def test_p_value_never_underflows_to_zero():
    rs = infer((1.0, 1e-8, 1e6, 1e6), (1.5, 1e-8, 1e6, 1e6), 1e6, Inference())
    assert 0.0 < float(rs.p_value) <= np.finfo(np.float64).tiny


def test_swapped_arms_give_the_inverse_interval():
    rng = np.random.default_rng(5)
    samples, *_ = _user_samples(rng, 800, lift=0.15)
    ab = compare_buckets(samples, "A", "B", adjust=None).table
    ba = compare_buckets(samples, "B", "A", adjust=None).table
    np.testing.assert_allclose(ba["ci_low"], 1 / (1 + ab["ci_high"]) - 1, rtol=1e-10)
    np.testing.assert_allclose(ba["ci_high"], 1 / (1 + ab["ci_low"]) - 1, rtol=1e-10)
    np.testing.assert_allclose(ba["p_value"], ab["p_value"], rtol=1e-10)


# ----------------------------------------------------------------------------- sequential


def _boundary_reference(n, alpha, tuning):
    """Half-width multiplier of the normal-mixture confidence sequence, solved numerically: the
    z at which the mixture likelihood ratio sqrt(1 / (1 + n r)) exp(z^2 n r / (2 (1 + n r)))
    reaches 1 / alpha."""
    log_a = math.log(alpha)
    r = (-2 * log_a + math.log(1 - 2 * log_a)) / tuning

    def log_lr(z):
        return -0.5 * math.log1p(n * r) + z * z * n * r / (2 * (1 + n * r)) + log_a

    return optimize.brentq(log_lr, 0.0, 50.0, xtol=1e-14)


@pytest.mark.parametrize("n", [200, 5000, 123_456, 10_000_000])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_sequential_multiplier_matches_mixture_boundary(n, alpha):
    settings = Inference(alpha=alpha, sequential=True)
    assert float(multiplier(alpha, n, settings)) == pytest.approx(_boundary_reference(n, alpha, 5000), rel=1e-10)
    # Wider than the fixed-horizon interval everywhere, about 1.5 times at the tuning size.
    assert float(multiplier(alpha, n, settings)) > stats.norm.isf(alpha / 2)
    if n == 5000 and alpha == 0.05:
        assert float(multiplier(alpha, n, settings)) / 1.96 == pytest.approx(1.55, abs=0.03)


def test_sequential_false_positive_rate_under_daily_looks():
    # 400 A/A experiments, 14 cumulative looks each: peeking at the fixed-horizon test rejects
    # far more often than alpha; the confidence sequence stays below it.
    rng = np.random.default_rng(12)
    runs, days, per_day = 400, 14, 300
    exposures = rng.poisson(4, (days, per_day, runs)) + 1
    clicks = rng.binomial(exposures, 0.05)
    arm = rng.random((days, per_day, runs)) < 0.5
    reject = {False: np.zeros(runs, bool), True: np.zeros(runs, bool)}
    y, x = np.cumsum(clicks, 0), np.cumsum(exposures, 0)
    for d in range(days):
        moments = []
        for a in (~arm[: d + 1], arm[: d + 1]):
            yy = np.where(a, clicks[: d + 1], 0).reshape(-1, runs)
            xx = np.where(a, exposures[: d + 1], 0).reshape(-1, runs)
            n = a.reshape(-1, runs).sum(0)
            moments.append((n, yy.sum(0), xx.sum(0), (yy * yy).sum(0), (xx * xx).sum(0), (xx * yy).sum(0)))
        from eval.ab._stats import _ratio_estimate

        (m_c, v_c), (m_t, v_t) = (_ratio_estimate(*m) for m in moments)
        for sequential in (False, True):
            rs = infer((m_c, v_c, moments[0][1], moments[0][2]), (m_t, v_t, moments[1][1], moments[1][2]),
                       moments[0][0] + moments[1][0], Inference(sequential=sequential))
            reject[sequential] |= rs.p_value < 0.05
    assert y.shape == x.shape
    assert reject[False].mean() > 0.1
    assert reject[True].mean() <= 0.05


# ----------------------------------------------------------------------------- power


def _ctr_runs(rng, exposures, ctr, lift, runs):
    """Row stats of ``runs`` fresh 50/50 experiments on one population with a planted CTR lift."""
    from eval.ab._inference import arm_moments

    treated = rng.random((exposures.size, runs)) < 0.5
    clicks = rng.binomial(exposures[:, None], np.minimum(ctr[:, None] * np.where(treated, 1 + lift, 1), 1))
    x, y = exposures[:, None].astype(float), clicks.astype(float)
    arms = []
    for mask in (~treated, treated):
        m = mask.astype(float)
        arms.append(np.stack([(v * m).sum(0) for v in (np.ones_like(y), y, x * np.ones_like(y), y * y,
                                                       x * x * np.ones_like(y), x * y)], axis=-1))
    return infer(arm_moments(arms[0]), arm_moments(arms[1]), exposures.size, Inference())


def test_mde_is_the_lift_detected_with_80_percent_power():
    seed = 4
    # The typical reported MDE of a population (here about 12%), planted in fresh experiments.
    rng = np.random.default_rng(seed)
    exposures, ctr = _world(rng, 15_000)
    planted = float(np.median(mde(_ctr_runs(rng, exposures, ctr, 0.0, 60), Inference())))
    assert 0.08 < planted < 0.2
    runs = 400
    rs = _ctr_runs(rng, exposures, ctr, planted, runs)
    power = np.mean((rs.p_value < 0.05) & (rs.treatment > rs.control))
    assert abs(power - 0.8) < 3.5 * math.sqrt(0.8 * 0.2 / runs)


def test_inference_settings_are_checked():
    with pytest.raises(ValueError, match=r"min_events must be an int in \[1, inf\)\. Got 0 instead"):
        compare_buckets(_orders_frame(10, 1, 10, 1), "control", "treatment", min_events=0)
    with pytest.raises(ValueError, match=r"tuning_units must be an int in \[1, inf\)"):
        compare_buckets(_orders_frame(10, 1, 10, 1), "control", "treatment", sequential=True, tuning_units=0)
    with pytest.raises(TypeError, match=r"sequential must be a bool"):
        compare_buckets(_orders_frame(10, 1, 10, 1), "control", "treatment", sequential="yes")
    with pytest.raises(ValueError, match=r"primary must be one of .*Got 'revenue' instead"):
        compare_buckets(_orders_frame(10, 1, 10, 1), "control", "treatment", primary="revenue")
    with pytest.raises(ValueError, match=r"samples must have columns"):
        compare_buckets(pd.DataFrame({"x": [1]}), "control", "treatment")
