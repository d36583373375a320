"""Tests for eval.ab's sample-ratio-mismatch test."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval.ab import SRMResult, compare_buckets, srm_test
from tests.eval.test_ab import _user_samples

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
