"""Tests for eval.ab._decide: the primary metric decides, the others wait behind it (defect 4)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from eval.ab import Inference, compare_buckets
from eval.ab._decide import EXPLORATORY, GATED, NOT_TESTED, TESTED, decide
from eval.ab._selfcheck import split_row_stats
from eval.ab._stats import _holm
from eval.ab._units import METRICS_BY_UNIT, metric_columns
from tests.eval.test_ab import _expand, _row


def test_hand_case_primary_significant_opens_the_gate():
    p = np.array([0.01, 0.02, 0.03, 0.5])
    primary = np.array([False, False, True, False])
    d = decide(p, primary, np.zeros(4, int), "holm", 0.05)
    # Secondary family [0.01, 0.02, 0.5] by Holm: [0.03, 0.04, 0.5]; the gate is the primary's 0.03.
    np.testing.assert_allclose(d.p_family, [0.03, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(d.p_adjusted, [0.03, 0.04, 0.03, 0.5])
    np.testing.assert_array_equal(d.significant, [True, True, True, False])
    np.testing.assert_array_equal(d.status, [TESTED] * 4)
    # Each interval level matches its family-adjusted p-value: alpha p / p_family.
    np.testing.assert_allclose(d.ci_alpha, 0.05 * p / d.p_family)


def test_hand_case_primary_not_significant_closes_the_gate():
    p = np.array([0.001, 0.2, 0.004])
    primary = np.array([False, True, False])
    d = decide(p, primary, np.zeros(3, int), "holm", 0.05)
    np.testing.assert_allclose(d.p_family, [0.002, 0.2, 0.004])
    np.testing.assert_allclose(d.p_adjusted, [0.2, 0.2, 0.2])
    assert not d.significant.any()
    np.testing.assert_array_equal(d.status, [GATED, TESTED, GATED])


def test_exploratory_and_undefined_rows():
    p = np.array([0.001, 0.01, np.nan])
    primary = np.array([False, True, False])
    d = decide(p, primary, np.zeros(3, int), None, 0.05)
    np.testing.assert_array_equal(d.status, [EXPLORATORY, TESTED, NOT_TESTED])
    np.testing.assert_array_equal(d.significant, [False, True, False])
    assert np.isnan(d.p_adjusted[0]) and d.p_family[0] == 0.001
    np.testing.assert_allclose(d.ci_alpha[:2], 0.05)


def test_several_treatments_each_gated_by_its_own_primary():
    p = np.array([0.01, 0.001, 0.04, 0.001])  # (B: ctr, cvr), (C: ctr, cvr)
    primary = np.array([True, False, True, False])
    treatment = np.array([0, 0, 1, 1])
    d = decide(p, primary, treatment, "holm", 0.05)
    np.testing.assert_allclose(d.p_family[primary], _holm(p[primary]))
    np.testing.assert_array_equal(d.significant, [True, True, True, True])
    d = decide(np.array([0.01, 0.001, 0.3, 0.001]), primary, treatment, "holm", 0.05)
    np.testing.assert_array_equal(d.significant, [True, True, False, False])
    assert d.status[3] == GATED


def test_batched_rows_equal_one_at_a_time():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, (50, 7))
    p[rng.random((50, 7)) < 0.05] = np.nan
    primary = np.arange(7) == 3
    batch = decide(p, primary, np.zeros(7, int), "holm", 0.05)
    for i in range(50):
        one = decide(p[i], primary, np.zeros(7, int), "holm", 0.05)
        np.testing.assert_array_equal(batch.significant[i], one.significant)
        np.testing.assert_allclose(batch.p_adjusted[i], one.p_adjusted)


def _clustered_users(rng, n):
    """Users with lognormal exposures, beta CTR and a per-user order propensity (seven correlated
    metrics), as per-unit numerators and denominators of the A/B metrics."""
    exposures = np.ceil(rng.lognormal(1.5, 1.2, n)).astype(np.int64)
    clicks = rng.binomial(exposures, rng.beta(0.6, 11.4, n))
    orders = rng.binomial(clicks, rng.beta(2, 8, n))
    sums = {"exposures": exposures, "clicks": clicks, "orders": orders}
    pairs = [metric_columns(sums, num, den) for _, num, den in METRICS_BY_UNIT["user"]]
    return sums, np.column_stack([a for a, _ in pairs]), np.column_stack([b for _, b in pairs])


def test_defect4_aa_readout_flags_anything_at_most_alpha():
    # A/A splits of one clustered population: each of seven correlated metrics tested at 0.05
    # flags at least one metric in about a quarter of the splits; with the primary metric
    # deciding and the others gated behind it, the readout flags anything in at most 5%.
    rng = np.random.default_rng(2024)
    _, y, x = _clustered_users(rng, 6000)
    splits = 800
    p = split_row_stats(y, x, rng.random((6000, splits)) < 0.5, Inference()).p_value
    raw_any = np.mean((p < 0.05).any(axis=1))
    primary = np.array([name == "ctr" for name, _, _ in METRICS_BY_UNIT["user"]])
    d = decide(p, primary, np.zeros(7, int), "holm", 0.05)
    readout_any = d.significant.any(axis=1).mean()
    tolerance = 3 * math.sqrt(0.05 * 0.95 / splits)
    assert raw_any > 0.15
    assert readout_any <= 0.05 + tolerance
    assert abs(np.mean(p[:, primary] < 0.05) - 0.05) <= tolerance


def test_vectorised_splits_match_compare_buckets():
    rng = np.random.default_rng(8)
    sums, y, x = _clustered_users(rng, 1500)
    assign = rng.random((1500, 3)) < 0.5
    rs = split_row_stats(y, x, assign, Inference())
    for s in range(3):
        buckets = np.where(assign[:, s], "t", "c")
        samples = _expand(np.arange(1500), buckets, sums["exposures"], sums["clicks"], sums["orders"])
        result = compare_buckets(samples, "c", "t", adjust=None)
        for j, (name, _, _) in enumerate(METRICS_BY_UNIT["user"]):
            row = _row(result, name)
            assert row["p_value"] == pytest.approx(rs.p_value[s, j], rel=1e-9)
            assert row["lift"] == pytest.approx(rs.lift[s, j], rel=1e-12)
