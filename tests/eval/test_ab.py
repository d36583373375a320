"""Tests for eval.ab: A/B metrics, delta-method inference, SRM, p-value adjustment, CUPED."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from eval.ab import (
    TABLE_COLUMNS,
    ABResult,
    Inference,
    compare_buckets,
    unit_sums,
)
from eval.ab._inference import arm_moments as moments_of
from eval.ab._inference import infer, interval
from eval.ab._stats import (
    _ctr_split_pvalues,
    _estimate_from_moments,
    _moments,
)

Z95 = stats.norm.ppf(0.975)


# ----------------------------------------------------------------------------- builders


def _expand(user_ids, buckets, exposures, clicks, orders, day=100, per_request=3, rng=None):
    """Exposure rows from per-user counts: the first `clicks` exposures are clicked, the first
    `orders` of those ordered; `per_request` consecutive exposures share a request."""
    exposures = np.asarray(exposures)
    uid = np.repeat(np.asarray(user_ids), exposures)
    starts = np.repeat(np.cumsum(exposures) - exposures, exposures)
    k = np.arange(uid.size) - starts
    user_pos = np.repeat(np.arange(exposures.size), exposures)
    frame = pd.DataFrame(
        {
            "request_id": user_pos.astype(np.int64) * 100_000 + k // per_request,
            "user_id": uid,
            "bucket": np.repeat(np.asarray(buckets, dtype=object), exposures).astype(str),
            "click": (k < np.repeat(clicks, exposures)).astype(np.int8),
            "order": (k < np.repeat(orders, exposures)).astype(np.int8),
            "day": np.full(uid.size, day, dtype=np.int64),
        }
    )
    if rng is not None:
        frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    return frame


def _world(rng, n_users, mean_ctr=0.05, concentration=12.0, mu=1.5, sigma=1.2):
    """Clustered users: lognormal exposure counts, beta-distributed CTR."""
    exposures = np.ceil(rng.lognormal(mu, sigma, n_users)).astype(np.int64)
    ctr = rng.beta(mean_ctr * concentration, (1 - mean_ctr) * concentration, n_users)
    return exposures, ctr


def _user_samples(rng, n_users, lift=0.0, buckets=("A", "B"), day=100, shuffle=True,
                  exposures=None, ctr=None, assign=None):
    if exposures is None:
        exposures, ctr = _world(rng, n_users)
    if assign is None:
        assign = rng.integers(0, len(buckets), n_users)
    multiplier = np.where(assign == len(buckets) - 1, 1.0 + lift, 1.0)
    clicks = rng.binomial(exposures, np.minimum(ctr * multiplier, 1.0))
    orders = rng.binomial(clicks, 0.2)
    frame = _expand(np.arange(n_users), np.asarray(buckets)[assign], exposures, clicks, orders,
                    day=day, rng=rng if shuffle else None)
    return frame, exposures, ctr, assign


def _row(result: ABResult, metric: str, treatment: str | None = None) -> pd.Series:
    t = result.table
    mask = t["metric"] == metric
    if treatment is not None:
        mask &= t["treatment_bucket"] == treatment
    (idx,) = np.flatnonzero(mask.to_numpy())
    return t.iloc[idx]


# ----------------------------------------------------------------------------- unit sums


def test_unit_sums_hand_case():
    samples = pd.DataFrame(
        {
            "request_id": [1, 1, 2, 3, 4, 4],
            "user_id": ["u2", "u2", "u2", "u1", "u3", "u3"],
            "bucket": ["B", "B", "B", "A", "A", "A"],
            "click": [1, 0, 1, 0, 1, 1],
            "order": [1, 0, 0, 0, 0, 0],
            "day": [5, 5, 6, 5, 5, 5],
        }
    )
    users = unit_sums(samples)
    assert list(users.columns) == ["user_id", "bucket", "exposures", "clicks", "orders",
                                   "has_click", "has_order"]
    assert users["user_id"].tolist() == ["u1", "u2", "u3"]
    assert users["bucket"].tolist() == ["A", "B", "A"]
    assert users["exposures"].tolist() == [1, 3, 2]
    assert users["clicks"].tolist() == [0, 2, 2]
    assert users["orders"].tolist() == [0, 1, 0]
    assert users["has_click"].tolist() == [0, 1, 1]
    assert users["has_order"].tolist() == [0, 1, 0]
    requests = unit_sums(samples, unit="request")
    assert requests["request_id"].tolist() == [1, 2, 3, 4]
    assert requests["exposures"].tolist() == [2, 1, 1, 2]
    assert requests["clicks"].tolist() == [1, 1, 0, 2]


@pytest.mark.parametrize("unit", ["user", "request"])
@pytest.mark.parametrize("seed", [0, 1])
def test_unit_sums_matches_loop_reference(unit, seed):
    rng = np.random.default_rng(seed)
    samples, *_ = _user_samples(rng, 300)
    got = unit_sums(samples, unit=unit).set_index(f"{unit}_id")
    ref: dict = {}
    for rid, uid, bucket, click, order in zip(samples["request_id"], samples["user_id"],
                                              samples["bucket"], samples["click"],
                                              samples["order"], strict=True):
        key = uid if unit == "user" else rid
        entry = ref.setdefault(key, [bucket, 0, 0, 0])
        entry[1] += 1
        entry[2] += int(click)
        entry[3] += int(order)
    assert sorted(ref) == got.index.tolist()
    for key, (bucket, e, c, o) in ref.items():
        row = got.loc[key]
        assert (row["bucket"], row["exposures"], row["clicks"], row["orders"]) == (bucket, e, c, o)
        assert row["has_click"] == int(c > 0) and row["has_order"] == int(o > 0)


# ----------------------------------------------------------------------------- point estimates


@pytest.mark.parametrize("unit", ["user", "request"])
def test_bucket_metrics_equal_direct_counts(unit):
    rng = np.random.default_rng(3)
    samples, *_ = _user_samples(rng, 500, lift=0.2)
    result = compare_buckets(samples, "A", "B", unit=unit)
    assert list(result.table.columns) == list(TABLE_COLUMNS)
    key = f"{unit}_id"
    share = "uctr" if unit == "user" else "request_ctr"
    share_order = "ucvr" if unit == "user" else "request_cvr"
    for bucket, col in [("A", "control"), ("B", "treatment")]:
        arm = samples[samples["bucket"] == bucket]
        n_units = arm[key].nunique()
        clicked_units = arm.loc[arm["click"] == 1, key].nunique()
        ordered_units = arm.loc[arm["order"] == 1, key].nunique()
        expected = {
            f"exposures_per_{unit}": len(arm) / n_units,
            f"clicks_per_{unit}": arm["click"].sum() / n_units,
            f"orders_per_{unit}": arm["order"].sum() / n_units,
            "ctr": arm["click"].sum() / len(arm),
            "cvr": arm["order"].sum() / arm["click"].sum(),
            share: clicked_units / n_units,
            share_order: ordered_units / n_units,
        }
        for metric, value in expected.items():
            assert _row(result, metric)[col] == pytest.approx(value, rel=1e-12)
        assert _row(result, "ctr")[f"n_{col}"] == n_units
    t = result.table
    np.testing.assert_allclose(t["abs_diff"], t["treatment"] - t["control"])
    np.testing.assert_allclose(t["lift"], t["treatment"] / t["control"] - 1)
    assert result.unit == unit and result.alpha == 0.05 and result.adjust == "holm" and result.primary == "ctr"
    assert t["role"].tolist() == ["secondary"] * 3 + ["primary"] + ["secondary"] * 3
    assert result.pre_period is None and result.experiment_days == (100, 100)
    assert t["var_reduction"].isna().all()


def test_result_does_not_depend_on_row_order():
    rng = np.random.default_rng(4)
    samples, *_ = _user_samples(rng, 400, lift=0.1, shuffle=False)
    a = compare_buckets(samples, "A", "B").table
    b = compare_buckets(samples.sample(frac=1.0, random_state=1), "A", "B").table
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize(
    "convert",
    [
        lambda f: f.assign(click=f["click"].astype(bool), order=f["order"].astype(bool)),
        lambda f: f.assign(click=f["click"].astype("Int8"), order=f["order"].astype(np.int64)),
        lambda f: f.assign(bucket=f["bucket"].astype(object)),
        lambda f: f.assign(bucket=f["bucket"].astype("category")),
        lambda f: f.assign(user_id=f["user_id"].map("user-{}".format),
                           day=f["day"].astype(np.int32)),
    ],
    ids=["bool-labels", "nullable-int-labels", "object-bucket", "categorical-bucket",
         "string-user-ids"],
)
def test_input_dtypes_give_the_same_result(convert):
    rng = np.random.default_rng(6)
    samples, *_ = _user_samples(rng, 300, lift=0.1)
    expected = compare_buckets(samples, "A", "B").table
    got = compare_buckets(convert(samples), "A", "B").table
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_result_is_frozen():
    rng = np.random.default_rng(6)
    samples, *_ = _user_samples(rng, 200)
    result = compare_buckets(samples, "A", "B")
    with pytest.raises(AttributeError):
        result.alpha = 0.1  # type: ignore[misc]


def test_swapping_arms_inverts_lift_interval():
    rng = np.random.default_rng(5)
    samples, *_ = _user_samples(rng, 800, lift=0.15)
    ab = compare_buckets(samples, "A", "B").table
    ba = compare_buckets(samples, "B", "A").table
    np.testing.assert_allclose(ba["lift"], 1 / (1 + ab["lift"]) - 1, rtol=1e-10)
    np.testing.assert_allclose(ba["ci_low"], 1 / (1 + ab["ci_high"]) - 1, rtol=1e-10)
    np.testing.assert_allclose(ba["ci_high"], 1 / (1 + ab["ci_low"]) - 1, rtol=1e-10)
    np.testing.assert_allclose(ba["p_value"], ab["p_value"], rtol=1e-10)


# ----------------------------------------------------------------------------- inference


def _fieller_reference(m_c, v_c, m_t, v_t, z):
    """Lifts rho - 1 where the Wald test of t - rho c does not reject, by root finding on each
    side of the estimate (an independent route to the closed form in eval.ab._inference)."""
    def excess(rho):
        return (m_t - rho * m_c) ** 2 - z * z * (v_t + rho * rho * v_c)

    rho_hat = m_t / m_c
    low = optimize.brentq(excess, max(rho_hat * 1e-6, 1e-12), rho_hat, xtol=1e-15, rtol=1e-14)
    high = optimize.brentq(excess, rho_hat, rho_hat * 1e3, xtol=1e-15, rtol=1e-14)
    return low - 1, high - 1


def _two_proportion_reference(x_c, n_c, x_t, n_t, z):
    """Textbook two-proportion z-test and the interval of p_t / p_c - 1 that inverts it."""
    p_c, p_t = x_c / n_c, x_t / n_t
    var_c, var_t = p_c * (1 - p_c) / n_c, p_t * (1 - p_t) / n_t
    z_unpooled = (p_t - p_c) / math.sqrt(var_c + var_t)
    p_pool = (x_c + x_t) / (n_c + n_t)
    z_pooled = (p_t - p_c) / math.sqrt(p_pool * (1 - p_pool) * (1 / n_c + 1 / n_t))
    low, high = _fieller_reference(p_c, var_c, p_t, var_t, z)
    return {
        "lift": p_t / p_c - 1,
        "ci_low": low,
        "ci_high": high,
        "p_unpooled": 2 * (1 - 0.5 * (1 + math.erf(abs(z_unpooled) / math.sqrt(2)))),
        "p_pooled": 2 * (1 - 0.5 * (1 + math.erf(abs(z_pooled) / math.sqrt(2)))),
    }


@pytest.mark.parametrize("unit", ["request", "user"])
@pytest.mark.parametrize(("n_c", "x_c", "n_t", "x_t"),
                         [(5000, 260, 5200, 310), (20000, 1000, 19000, 1000), (3000, 90, 3100, 60)])
def test_single_exposure_units_match_two_proportion_z_test(unit, n_c, x_c, n_t, x_t):
    # One exposure per request; for unit="user" also one request per user, so both units agree
    # with the textbook test on the same counts.
    n = n_c + n_t
    rng = np.random.default_rng(n)
    bucket = np.array(["ctl"] * n_c + ["trt"] * n_t)
    click = np.concatenate([np.arange(n_c) < x_c, np.arange(n_t) < x_t]).astype(np.int8)
    user = np.arange(n) if unit == "user" else rng.integers(0, 500, n)
    samples = pd.DataFrame({"request_id": np.arange(n), "user_id": user, "bucket": bucket,
                            "click": click, "order": np.zeros(n, dtype=np.int8),
                            "day": np.full(n, 7)})
    row = _row(compare_buckets(samples, "ctl", "trt", unit=unit), "ctr")
    ref = _two_proportion_reference(x_c, n_c, x_t, n_t, Z95)
    assert row["lift"] == pytest.approx(ref["lift"], rel=1e-12)
    assert row["ci_low"] == pytest.approx(ref["ci_low"], rel=1e-9)
    assert row["ci_high"] == pytest.approx(ref["ci_high"], rel=1e-9)
    assert row["p_value"] == pytest.approx(ref["p_unpooled"], rel=1e-6)
    # The pooled textbook variant differs only at second order at these sizes.
    assert row["p_value"] == pytest.approx(ref["p_pooled"], rel=0.15, abs=1e-3)
    # CTR and the share of units with a click coincide with one exposure per unit.
    share = _row(compare_buckets(samples, "ctl", "trt", unit=unit),
                 "uctr" if unit == "user" else "request_ctr")
    assert share["p_value"] == pytest.approx(row["p_value"], rel=1e-9)


def _delta_variance_loop(y, x):
    n = len(y)
    sy = sx = 0.0
    for yi, xi in zip(y, x, strict=True):
        sy += yi
        sx += xi
    my, mx = sy / n, sx / n
    vy = vx = cxy = 0.0
    for yi, xi in zip(y, x, strict=True):
        vy += (yi - my) ** 2 / n
        vx += (xi - mx) ** 2 / n
        cxy += (yi - my) * (xi - mx) / n
    r = my / mx
    return r, (vy - 2 * r * cxy + r * r * vx) / (n * mx * mx)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delta_variance_matches_closed_form_loop(seed):
    rng = np.random.default_rng(seed)
    x = rng.geometric(0.15, 700).astype(float)
    y = rng.binomial(x.astype(int), rng.beta(1, 12, 700)).astype(float)
    ratio, var = _estimate_from_moments(_moments(y, x))
    ref_ratio, ref_var = _delta_variance_loop(y, x)
    assert ratio == pytest.approx(ref_ratio, rel=1e-12)
    assert var == pytest.approx(ref_var, rel=1e-9)
    # A mean metric is the ratio with x = 1: the plug-in variance of the mean.
    _, var_mean = _estimate_from_moments(_moments(y, np.ones_like(y)))
    assert var_mean == pytest.approx(np.var(y) / y.size, rel=1e-9)


def test_ctr_interval_uses_delta_variances_of_both_arms():
    rng = np.random.default_rng(11)
    samples, *_ = _user_samples(rng, 600, lift=0.1)
    users = unit_sums(samples)
    row = _row(compare_buckets(samples, "A", "B", alpha=0.1), "ctr")
    arms = {}
    for b in ("A", "B"):
        u = users[users["bucket"] == b]
        arms[b] = _delta_variance_loop(u["clicks"].tolist(), u["exposures"].tolist())
    (m_c, v_c), (m_t, v_t) = arms["A"], arms["B"]
    low, high = _fieller_reference(m_c, v_c, m_t, v_t, stats.norm.ppf(0.95))
    assert row["ci_level"] == 0.9  # the primary metric: unadjusted
    assert row["ci_low"] == pytest.approx(low, rel=1e-9)
    assert row["ci_high"] == pytest.approx(high, rel=1e-9)
    z_diff = (m_t - m_c) / math.sqrt(v_c + v_t)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z_diff)), rel=1e-9)


def test_delta_variance_matches_bootstrap():
    rng = np.random.default_rng(21)
    exposures, ctr = _world(rng, 400)
    clicks = rng.binomial(exposures, ctr).astype(float)
    exposures = exposures.astype(float)
    _, var = _estimate_from_moments(_moments(clicks, exposures))
    weights = rng.multinomial(400, np.full(400, 1 / 400), size=4000).astype(float)
    boot = (weights @ clicks) / (weights @ exposures)
    assert math.sqrt(var) == pytest.approx(boot.std(), rel=0.1)


def _aa_pvalues(clicks, exposures, n_splits, rng):
    """Delta-method and naive exposure-level CTR p-values over vectorised random user splits."""
    assign = (rng.random((clicks.size, n_splits)) < 0.5).astype(np.float64)
    delta, naive = _ctr_split_pvalues(clicks, exposures, assign)
    return delta, naive, assign


def test_aa_false_positive_rate_is_nominal_and_naive_test_is_inflated():
    rng = np.random.default_rng(2024)
    exposures, ctr = _world(rng, 4000)
    clicks = rng.binomial(exposures, ctr)
    n_splits = 300
    delta, naive, _ = _aa_pvalues(clicks, exposures, n_splits, rng)
    tolerance = 3 * math.sqrt(0.05 * 0.95 / n_splits)
    assert abs(np.mean(delta < 0.05) - 0.05) <= tolerance
    assert np.mean(naive < 0.05) > 0.05 + 2 * tolerance


def test_vectorised_split_statistics_match_compare_buckets():
    rng = np.random.default_rng(8)
    exposures, ctr = _world(rng, 1500)
    clicks = rng.binomial(exposures, ctr)
    delta, _, assign = _aa_pvalues(clicks, exposures, 3, rng)
    for s in range(3):
        buckets = np.where(assign[:, s] > 0, "t", "c")
        samples = _expand(np.arange(1500), buckets, exposures, clicks, np.zeros(1500, int))
        row = _row(compare_buckets(samples, "c", "t"), "ctr")
        assert row["p_value"] == pytest.approx(delta[s], rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_ctr_lift_is_recovered(seed):
    rng = np.random.default_rng(100 + seed)
    samples, *_ = _user_samples(rng, 30000, lift=0.15)
    result = compare_buckets(samples, "A", "B")
    ctr = _row(result, "ctr")
    assert ctr["ci_low"] < 0.15 < ctr["ci_high"]
    assert ctr["ci_low"] > 0 and ctr["p_value"] < 0.05 and ctr["significant"]
    # Exposures are not affected by the treatment.
    exposures = _row(result, "exposures_per_user")
    assert exposures["ci_low"] < 0 < exposures["ci_high"]
    assert not result.srm.flagged


def test_lift_interval_covers_planted_lift_at_nominal_rate():
    # 400 experiments on one clustered population, vectorised: fresh split and clicks each run.
    rng = np.random.default_rng(77)
    exposures, ctr = _world(rng, 5000)
    planted, runs = 0.2, 400
    treated = rng.random((exposures.size, runs)) < 0.5
    clicks = rng.binomial(exposures[:, None],
                          np.minimum(ctr[:, None] * np.where(treated, 1 + planted, 1.0), 1.0))
    x, y = exposures[:, None].astype(float), clicks.astype(float)

    def arm_moments(mask):
        m = mask.astype(float)
        return np.stack([(v * m).sum(axis=0) for v in (np.ones_like(y), y, x * np.ones_like(y),
                                                       y * y, x * x * np.ones_like(y), x * y)],
                        axis=-1)

    rs = infer(moments_of(arm_moments(~treated)), moments_of(arm_moments(treated)), exposures.size, Inference())
    low, high = interval(rs, 0.05, Inference())
    coverage = np.mean((low < planted) & (planted < high))
    assert abs(coverage - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / runs)


def test_degenerate_metrics_give_nan_not_errors():
    # No orders anywhere and exactly one exposure per user: undefined quantities are NaN.
    n = 200
    samples = pd.DataFrame({"request_id": np.arange(n), "user_id": np.arange(n),
                            "bucket": np.where(np.arange(n) < 100, "A", "B"),
                            "click": (np.arange(n) % 7 == 0).astype(np.int8),
                            "order": np.zeros(n, dtype=np.int8), "day": np.zeros(n, dtype=int)})
    result = compare_buckets(samples, "A", "B", adjust="holm")
    exposures = _row(result, "exposures_per_user")
    assert exposures["lift"] == 0.0 and np.isnan(exposures["p_value"])
    assert exposures["method"] == "undefined" and exposures["status"] == "not tested"
    for metric in ("orders_per_user", "cvr", "ucvr"):
        row = _row(result, metric)
        assert row["control"] == 0.0 and np.isnan(row["lift"]) and np.isnan(row["ci_low"])
        assert np.isnan(row["p_adjusted"]) and row["method"] == "undefined"
    assert not result.table["significant"].any()
    # 15 vs 14 clicks: the exact test, and an even split of 29 events is as central as it gets.
    ctr = _row(result, "ctr")
    assert ctr["method"] == "exact" and ctr["p_value"] == 1.0
    assert (ctr["events_control"], ctr["events_treatment"]) == (15, 14)
