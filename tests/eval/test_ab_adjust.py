"""Tests for the multiple-testing adjustments of eval.ab: Holm and Benjamini-Hochberg against
loop references, and the gating of the secondary metrics across several treatments."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from eval.ab import compare_all, compare_buckets
from eval.ab._stats import _benjamini_hochberg, _holm
from tests.eval.test_ab import _user_samples

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
