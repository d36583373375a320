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
    SRMResult,
    compare_all,
    compare_buckets,
    srm_test,
    unit_sums,
)
from eval.ab._stats import (
    _benjamini_hochberg,
    _ctr_split_pvalues,
    _diff_test,
    _estimate_from_moments,
    _holm,
    _moments,
    _relative_lift,
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

    m_t, v_t = _estimate_from_moments(arm_moments(treated))
    m_c, v_c = _estimate_from_moments(arm_moments(~treated))
    _, low, high = _relative_lift(m_c, v_c, m_t, v_t, Z95)
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


# ----------------------------------------------------------------------------- adjustments


def _holm_loop(p):
    order = sorted(range(len(p)), key=lambda i: p[i])
    m, running, out = len(p), 0.0, [0.0] * len(p)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _bh_loop(p):
    order = sorted(range(len(p)), key=lambda i: p[i])
    m, running, out = len(p), 1.0, [0.0] * len(p)
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, p[i] * m / (rank + 1))
        out[i] = min(1.0, running)
    return out


def _holm_rejects(p, alpha):
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = set()
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        rejected.add(i)
    return rejected


def _bh_rejects(p, q):
    order = sorted(range(len(p)), key=lambda i: p[i])
    k = max((rank + 1 for rank, i in enumerate(order) if p[i] <= q * (rank + 1) / len(p)),
            default=0)
    return set(order[:k])


def _random_pvalues(rng, m):
    p = np.concatenate([rng.uniform(0, 1, m // 2), rng.uniform(0, 0.01, m - m // 2)])
    p[rng.integers(0, m, 3)] = p[0]  # ties
    return p


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("m", [1, 2, 7, 40])
def test_holm_and_bh_match_references(seed, m):
    rng = np.random.default_rng(seed * 100 + m)
    p = _random_pvalues(rng, m)
    holm, bh = _holm(p), _benjamini_hochberg(p)
    np.testing.assert_allclose(holm, _holm_loop(p.tolist()), rtol=1e-12)
    np.testing.assert_allclose(bh, _bh_loop(p.tolist()), rtol=1e-12)
    np.testing.assert_allclose(bh, stats.false_discovery_control(p, method="bh"), rtol=1e-12)
    assert np.all(holm >= p) and np.all(bh >= p) and np.all(holm >= bh - 1e-15)
    # Adjusted p-values are the smallest level at which each procedure rejects.
    for level in np.concatenate([np.geomspace(1e-5, 0.9, 60), [0.05]]):
        assert set(np.flatnonzero(holm <= level)) == _holm_rejects(p.tolist(), level)
        assert set(np.flatnonzero(bh <= level)) == _bh_rejects(p.tolist(), level)


def test_adjustments_hand_case_and_nan_entries():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(_holm(p), [0.03, np.nan, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(_benjamini_hochberg(p), [0.02, np.nan, 0.04, 0.04, 0.02])
    assert np.isnan(_holm(np.array([np.nan]))).all()


@pytest.mark.parametrize("adjust", ["holm", "bh"])
def test_compare_all_gates_secondaries_behind_the_primary(adjust):
    rng = np.random.default_rng(9)
    samples, *_ = _user_samples(rng, 3000, lift=0.15, buckets=("A", "B", "C"))
    result = compare_all(samples, adjust=adjust)
    assert result.control == "A" and result.treatments == ("B", "C")
    t = result.table
    assert len(t) == 14 and t["treatment_bucket"].tolist() == ["B"] * 7 + ["C"] * 7
    primary = (t["metric"] == "ctr").to_numpy()
    p = t["p_value"].to_numpy()
    # Primary rows: Holm across the treatments; secondary rows: one family across both treatments.
    np.testing.assert_allclose(t["p_family"][primary], _holm(p[primary]))
    reference = _holm if adjust == "holm" else _benjamini_hochberg
    np.testing.assert_allclose(t["p_family"][~primary], reference(p[~primary]))
    gate = {b: t.loc[primary & (t["treatment_bucket"] == b).to_numpy(), "p_family"].iloc[0] for b in ("B", "C")}
    expected = np.where(primary, t["p_family"], np.maximum(t["treatment_bucket"].map(gate), t["p_family"]))
    np.testing.assert_allclose(t["p_adjusted"], expected)
    np.testing.assert_array_equal(t["significant"], t["p_adjusted"] < 0.05)
    assert (t.loc[t["significant"], "p_family"] < 0.05).all()
    single = compare_buckets(samples, "A", "C").table
    cols = ["control", "treatment", "lift", "p_value"]
    np.testing.assert_allclose(t.iloc[7:][cols].to_numpy(), single[cols].to_numpy())
    assert compare_all(samples, control="C").treatments == ("A", "B")


# ----------------------------------------------------------------------------- SRM


def test_srm_flags_52_48_split_and_not_50_50():
    assert srm_test({"A": 52_000, "B": 48_000}).flagged
    balanced = srm_test({"A": 50_000, "B": 50_000})
    assert balanced == SRMResult(chi2=0.0, p_value=1.0, flagged=False)
    assert not srm_test({"A": 50_200, "B": 49_800}).flagged


@pytest.mark.parametrize("seed", range(3))
def test_srm_matches_scipy_chisquare(seed):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 2.0, 4)
    counts = rng.multinomial(10_000, weights / weights.sum())
    names = ["a", "b", "c", "d"]
    got = srm_test(dict(zip(names, counts, strict=True)), expected=dict(zip(names, weights, strict=True)))
    ref = stats.chisquare(counts, f_exp=counts.sum() * weights / weights.sum())
    assert got.chi2 == pytest.approx(ref.statistic, rel=1e-10)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    series = srm_test(pd.Series(counts, index=names))
    assert series.p_value == pytest.approx(stats.chisquare(counts).pvalue, rel=1e-8)


def test_compare_reports_srm_on_unit_counts_with_expected_split():
    rng = np.random.default_rng(12)
    n = 20_000
    assign = (rng.random(n) < 0.7).astype(int)  # 30/70 split
    samples, *_ = _user_samples(rng, n, assign=assign)
    assert compare_buckets(samples, "A", "B").srm.flagged
    result = compare_buckets(samples, "A", "B", expected_split={"A": 3, "B": 7})
    n_a = int((assign == 0).sum())
    assert result.srm == srm_test({"A": n_a, "B": n - n_a}, expected={"A": 0.3, "B": 0.7})
    assert not result.srm.flagged


@pytest.mark.parametrize(
    ("counts", "expected", "match"),
    [
        ({"A": 10}, None, "at least two buckets"),
        ({"A": 10, "B": -1}, None, "non-negative integer"),
        ({"A": 1.5, "B": 3}, None, "non-negative integer"),
        ({"A": 0, "B": 0}, None, "positive total"),
        ({"A": 10, "B": 12}, {"A": 1, "C": 1}, r"buckets \['A', 'B'\]"),
        ({"A": 10, "B": 12}, {"A": 1, "B": 0}, "positive weights"),
    ],
)
def test_srm_rejects_bad_input(counts, expected, match):
    with pytest.raises(ValueError, match=match):
        srm_test(counts, expected=expected)


# ----------------------------------------------------------------------------- CUPED


def _cuped_world(rng, n_users, lift, pre_coverage=1.0):
    """Experiment on days 10-13 and a pre-period on days 3-9 with the same user propensities."""
    exposures, ctr = _world(rng, n_users)
    samples, _, _, assign = _user_samples(rng, n_users, lift=lift, exposures=exposures, ctr=ctr,
                                          day=10)
    samples["day"] = 10 + samples["request_id"].to_numpy() % 4
    pre_exp = rng.poisson(exposures * 1.5)
    keep = rng.random(n_users) < pre_coverage
    pre_clicks = rng.binomial(pre_exp, ctr)
    pre = _expand(np.arange(n_users)[keep], np.full(keep.sum(), "A"), pre_exp[keep],
                  pre_clicks[keep], rng.binomial(pre_clicks, 0.2)[keep], day=3)
    pre["day"] = 3 + pre["request_id"].to_numpy() % 7
    return samples, pre.drop(columns=["bucket"]), assign


def _cuped_mean_reference(y, xp, arm):
    """Textbook CUPED for a mean metric with theta pooled over within-arm centred moments."""
    num = den = 0.0
    for a in (0, 1):
        ya, xa = y[arm == a], xp[arm == a]
        num += float(np.sum((ya - ya.mean()) * (xa - xa.mean())))
        den += float(np.sum((xa - xa.mean()) ** 2))
    theta = num / den
    out = []
    for a in (0, 1):
        ya, xa = y[arm == a], xp[arm == a]
        adjusted = ya - theta * (xa - xp.mean())
        out.append((adjusted.mean(), np.var(ya - theta * xa) / ya.size))
    return out


def test_cuped_mean_metric_matches_textbook_formula():
    rng = np.random.default_rng(31)
    samples, pre, _ = _cuped_world(rng, 2000, lift=0.0, pre_coverage=0.8)
    result = compare_buckets(samples, "A", "B", pre_samples=pre)
    users = unit_sums(samples)
    pre_clicks = (pre.groupby("user_id")["click"].sum()
                  .reindex(users["user_id"], fill_value=0).to_numpy(float))
    arm = (users["bucket"] == "B").to_numpy().astype(int)
    (m_c, v_c), (m_t, v_t) = _cuped_mean_reference(users["clicks"].to_numpy(float),
                                                   pre_clicks, arm)
    row = _row(result, "clicks_per_user")
    assert row["control"] == pytest.approx(m_c, rel=1e-10)
    assert row["treatment"] == pytest.approx(m_t, rel=1e-10)
    assert row["p_value"] == pytest.approx(_diff_test(m_c, v_c, m_t, v_t), rel=1e-8)
    assert result.pre_period == (3, 9) and result.experiment_days == (10, 13)


def test_cuped_ratio_metric_matches_linearised_reference():
    rng = np.random.default_rng(32)
    samples, pre, _ = _cuped_world(rng, 1500, lift=0.05)
    users = unit_sums(samples)
    pre_users = (unit_sums(pre.assign(bucket="A")).drop(columns=["bucket"])
                 .set_index("user_id").reindex(users["user_id"], fill_value=0))
    arm = (users["bucket"] == "B").to_numpy()
    y, x = users["clicks"].to_numpy(float), users["exposures"].to_numpy(float)
    yp, xp = pre_users["clicks"].to_numpy(float), pre_users["exposures"].to_numpy(float)
    lin, ratios = {}, {}
    for a in (False, True):
        r, rp = y[arm == a].sum() / x[arm == a].sum(), yp[arm == a].sum() / xp[arm == a].sum()
        lin[a] = ((y[arm == a] - r * x[arm == a]) / x[arm == a].mean(),
                  (yp[arm == a] - rp * xp[arm == a]) / xp[arm == a].mean())
        ratios[a] = (r, rp)
    theta = (sum(float(ly @ lp) for ly, lp in lin.values())
             / sum(float(lp @ lp) for _, lp in lin.values()))
    pooled = yp.sum() / xp.sum()
    est = {a: ratios[a][0] - theta * (ratios[a][1] - pooled) for a in lin}
    var = {a: np.mean((lin[a][0] - theta * lin[a][1]) ** 2) / lin[a][0].size for a in lin}
    raw_var = {a: np.mean(lin[a][0] ** 2) / lin[a][0].size for a in lin}
    row = _row(compare_buckets(samples, "A", "B", pre_samples=pre), "ctr")
    assert row["control"] == pytest.approx(est[False], rel=1e-10)
    assert row["treatment"] == pytest.approx(est[True], rel=1e-10)
    assert row["var_reduction"] == pytest.approx(
        1 - (var[False] + var[True]) / (raw_var[False] + raw_var[True]), rel=1e-8)


def test_cuped_reduces_variance_and_stays_unbiased():
    planted = 0.05
    raw_lifts, cuped_lifts, reductions = [], [], []
    for seed in range(25):
        rng = np.random.default_rng(500 + seed)
        samples, pre, _ = _cuped_world(rng, 3000, lift=planted)
        raw = _row(compare_buckets(samples, "A", "B"), "ctr")
        adj = compare_buckets(samples, "A", "B", pre_samples=pre)
        cup = _row(adj, "ctr")
        raw_lifts.append(raw["lift"])
        cuped_lifts.append(cup["lift"])
        reductions.append(cup["var_reduction"])
        assert cup["ci_high"] - cup["ci_low"] < raw["ci_high"] - raw["ci_low"]
        assert _row(adj, "clicks_per_user")["var_reduction"] > 0.3
    raw_lifts, cuped_lifts = np.array(raw_lifts), np.array(cuped_lifts)
    assert np.min(reductions) > 0.1
    # Empirical spread confirms the reported variance reduction.
    assert cuped_lifts.std() < raw_lifts.std()
    se_mean = cuped_lifts.std(ddof=1) / math.sqrt(cuped_lifts.size)
    assert abs(cuped_lifts.mean() - planted) < 3 * se_mean
    assert abs(np.mean(cuped_lifts - raw_lifts)) < 3 * np.std(cuped_lifts - raw_lifts, ddof=1) / 5


def test_cuped_with_uncorrelated_pre_period_changes_little():
    rng = np.random.default_rng(41)
    samples, pre, _ = _cuped_world(rng, 3000, lift=0.0)
    # Shuffle pre-period users: the covariate carries no information about the experiment.
    mapping = dict(zip(range(3000), rng.permutation(3000), strict=True))
    pre = pre.assign(user_id=pre["user_id"].map(mapping))
    table = compare_buckets(samples, "A", "B", pre_samples=pre).table
    assert np.all(np.abs(table["var_reduction"]) < 0.02)


# ----------------------------------------------------------------------------- bad input


def _small_samples():
    return pd.DataFrame({"request_id": [1, 2, 3, 4], "user_id": ["u1", "u1", "u2", "u3"],
                         "bucket": ["A", "A", "B", "B"], "click": [0, 1, 1, 0],
                         "order": [0, 0, 1, 0], "day": [4, 4, 4, 5]})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"control": "Z"}, ValueError,
         r"control must be one of the buckets \['A', 'B'\]\. Got 'Z'"),
        ({"treatment": "C"}, ValueError, r"treatment must be one of the buckets .*Got 'C'"),
        ({"treatment": "A"}, ValueError, "treatment must differ from control"),
        ({"unit": "session"}, ValueError,
         r"unit must be one of \['request', 'user'\]\. Got 'session'"),
        ({"alpha": 1.5}, ValueError, r"alpha must be a float in \(0, 1\)\. Got 1.5"),
        ({"adjust": "bonferroni"}, ValueError, "adjust must be one of .*Got 'bonferroni'"),
        ({"expected_split": {"A": 1}}, ValueError, "expected_split must give a weight"),
        ({"expected_split": {"A": 1, "B": 1, "Q": 1}}, ValueError, "expected_split must give"),
    ],
)
def test_compare_rejects_bad_arguments(kwargs, error, match):
    args = {"control": "A", "treatment": "B"} | kwargs
    with pytest.raises(error, match=match):
        compare_buckets(_small_samples(), **args)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"\(missing \['order', 'day'\]\)"):
        compare_buckets(_small_samples().drop(columns=["order", "day"]), "A", "B")
    with pytest.raises(ValueError, match=r"pre_samples must have columns .*\(missing \['click'\]\)"):
        compare_buckets(_small_samples().assign(day=9), "A", "B",
                        pre_samples=_small_samples().drop(columns=["click"]))


def test_user_in_two_buckets_is_named():
    samples = _small_samples()
    samples.loc[3, "user_id"] = "u1"  # u1 now also in B
    with pytest.raises(ValueError, match=r"user_id='u1' in buckets \['A', 'B'\]"):
        compare_buckets(samples, "A", "B")
    # Assignment per request allows a user in both buckets.
    assert compare_buckets(samples, "A", "B", unit="request").unit == "request"
    samples.loc[3, "request_id"] = 1
    with pytest.raises(ValueError, match=r"per request .*request_id=1 in buckets"):
        unit_sums(samples, unit="request")


def test_bucket_without_users_is_rejected():
    samples = _small_samples()
    samples["bucket"] = pd.Categorical(samples["bucket"], categories=["A", "B", "C"])
    with pytest.raises(ValueError, match="Got 'C', which has no users"):
        compare_buckets(samples, "A", "C")
    with pytest.raises(ValueError, match="Got 'C', which has no users"):
        compare_all(samples)
    assert compare_buckets(samples, "A", "B").table["n_treatment"].iloc[0] == 2


@pytest.mark.parametrize(
    ("column", "value", "error", "match"),
    [
        ("click", 2, ValueError, r"samples\.click must be 0 or 1.*row 1 has click=2"),
        ("order", -1, ValueError, r"samples\.order must be 0 or 1"),
        ("user_id", None, ValueError, r"samples\.user_id must not be missing.*row 1"),
        ("bucket", None, ValueError, r"samples\.bucket must not be missing"),
        ("day", pd.NA, ValueError, r"samples\.day must not be missing.*row 1"),
    ],
)
def test_bad_values_name_the_row(column, value, error, match):
    samples = _small_samples()
    if value is None:
        samples[column] = samples[column].astype(object)
    elif value is pd.NA:
        samples[column] = samples[column].astype("Int64")
    samples.loc[1, column] = value
    with pytest.raises(error, match=match):
        compare_buckets(samples, "A", "B")


def test_bad_types_are_rejected():
    with pytest.raises(TypeError, match=r"samples must be a pandas DataFrame\. Got dict"):
        unit_sums({"user_id": [1]})
    with pytest.raises(TypeError, match=r"samples\.bucket must hold strings"):
        unit_sums(_small_samples().assign(bucket=[1, 1, 2, 2]))
    with pytest.raises(TypeError, match=r"samples\.day must be an integer column"):
        unit_sums(_small_samples().assign(day=[0.5, 1.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match=r"samples\.click must be a 0/1 integer column"):
        unit_sums(_small_samples().assign(click=["0", "1", "1", "0"]))
    with pytest.raises(ValueError, match="at least one row"):
        unit_sums(_small_samples().iloc[:0])
    with pytest.raises(ValueError, match="at least two buckets"):
        compare_all(_small_samples().assign(bucket="A"))


def test_bad_pre_period_is_rejected():
    samples = _small_samples().assign(day=10)
    with pytest.raises(ValueError, match=r"end before the experiment's first day 10.*day=10"):
        compare_buckets(samples, "A", "B", pre_samples=samples.assign(day=[3, 4, 5, 10]))
    with pytest.raises(ValueError, match="unit must be 'user' when pre_samples is given"):
        compare_buckets(samples, "A", "B", unit="request", pre_samples=samples.assign(day=3))
    with pytest.raises(ValueError, match="must share users with samples"):
        compare_buckets(samples, "A", "B",
                        pre_samples=samples.assign(day=3, user_id=["x", "y", "z", "w"]))
