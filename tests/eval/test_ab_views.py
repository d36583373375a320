"""Tests for the daily view, the segments and the A/A self-check of eval.ab, each against the
plain comparison run on the matching slice of the samples."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval.ab import MAX_SEGMENTS, Inference, aa_self_check, compare_buckets, daily_lift, segment_lift
from eval.ab._stats import _holm
from eval.ab._units import unit_sums
from tests.eval.test_ab import _row, _user_samples


@pytest.fixture(scope="module")
def days_world():
    """2,000 users over 6 days with a +10% CTR lift; each request on one day, a device per request."""
    rng = np.random.default_rng(17)
    samples, *_ = _user_samples(rng, 2000, lift=0.1)
    samples["day"] = 100 + (samples["request_id"].to_numpy() * 7919) % 6
    samples["device"] = np.array(["ios", "android", "web"])[(samples["request_id"].to_numpy() * 31) % 3]
    samples.loc[samples["request_id"].to_numpy() % 11 == 0, "device"] = None
    return samples


@pytest.mark.parametrize("metric", ["ctr", "uctr", "clicks_per_user"])
def test_daily_rows_equal_the_comparison_of_each_day_and_of_days_so_far(days_world, metric):
    table = daily_lift(days_world, "A", "B", "user", metric, Inference())
    assert table["day"].tolist() == list(range(100, 106))
    for _, row in table.iterrows():
        day, upto = days_world.loc[days_world["day"] == row["day"]], days_world.loc[days_world["day"] <= row["day"]]
        for frame, prefix in ((day, ""), (upto, "cum_")):
            ref = _row(compare_buckets(frame, "A", "B", adjust=None, primary=metric), metric)
            assert row[f"{prefix}lift"] == pytest.approx(ref["lift"], rel=1e-9)
            assert row[f"{prefix}p_value"] == pytest.approx(ref["p_value"], rel=1e-8)
            assert row[f"{prefix}ci_low"] == pytest.approx(ref["ci_low"], rel=1e-8)
            assert row[f"{prefix}units"] == ref["n_control"] + ref["n_treatment"]


def test_daily_cumulative_sequential_intervals_are_wider(days_world):
    fixed = daily_lift(days_world, "A", "B", "user", "ctr", Inference())
    seq = daily_lift(days_world, "A", "B", "user", "ctr", Inference(sequential=True))
    np.testing.assert_allclose(seq["ci_low"], fixed["ci_low"])  # per-day view stays fixed-horizon
    assert (seq["cum_ci_high"] - seq["cum_ci_low"] > fixed["cum_ci_high"] - fixed["cum_ci_low"]).all()
    assert (seq["cum_method"] == "sequential").all()


def test_segment_rows_equal_the_comparison_of_each_segment(days_world):
    result = segment_lift(days_world, "device", "A", "B", "user", "ctr", Inference())
    table = result.table
    assert table["segment"].tolist() == ["(missing)", "android", "ios", "web"]
    for _, row in table.iterrows():
        mask = (days_world["device"].isna() if row["segment"] == "(missing)"
                else days_world["device"] == row["segment"])
        ref = _row(compare_buckets(days_world.loc[mask], "A", "B", adjust=None), "ctr")
        assert row["lift"] == pytest.approx(ref["lift"], rel=1e-9)
        assert row["p_value"] == pytest.approx(ref["p_value"], rel=1e-8)
        assert (row["n_control"], row["n_treatment"]) == (ref["n_control"], ref["n_treatment"])
    np.testing.assert_allclose(table["p_holm"], _holm(table["p_value"].to_numpy()))
    # Cochran's Q against a loop over the segments' log ratios and their delta-method variances.
    parts = []
    for _, row in table.iterrows():
        mask = (days_world["device"].isna() if row["segment"] == "(missing)"
                else days_world["device"] == row["segment"])
        units = unit_sums(days_world.loc[mask])
        arm = {}
        for bucket in ("A", "B"):
            u = units[units["bucket"] == bucket]
            y, x = u["clicks"].to_numpy(float), u["exposures"].to_numpy(float)
            ratio = y.sum() / x.sum()
            arm[bucket] = (ratio, np.mean((y - ratio * x) ** 2) / (x.mean() ** 2 * len(y)))
        theta = np.log(arm["B"][0] / arm["A"][0])
        parts.append((theta, 1 / (arm["B"][1] / arm["B"][0] ** 2 + arm["A"][1] / arm["A"][0] ** 2)))
    pooled = sum(w * t for t, w in parts) / sum(w for _, w in parts)
    q = sum(w * (t - pooled) ** 2 for t, w in parts)
    assert result.q == pytest.approx(q, rel=1e-9) and result.q_df == 3
    assert result.q_p_value == pytest.approx(stats.chi2.sf(q, 3), rel=1e-9)


def test_segments_refuse_unknown_and_wide_columns(days_world):
    with pytest.raises(ValueError, match=r"segment must be a column of the requests table\. Got 'city'"):
        segment_lift(days_world, "city", "A", "B", "user", "ctr", Inference())
    wide = days_world.assign(device=days_world["request_id"].astype(str))
    with pytest.raises(ValueError, match=rf"must have at most {MAX_SEGMENTS} distinct values\. Got \d+ instead"):
        segment_lift(wide, "device", "A", "B", "user", "ctr", Inference())


def test_self_check_rates_equal_a_loop_over_the_same_splits(days_world):
    splits, seed = 12, 5
    check = aa_self_check(days_world, "A", "user", "ctr", "holm", Inference(), splits=splits, seed=seed)
    control = days_world.loc[days_world["bucket"] == "A"]
    users = control["user_id"].unique()  # first-appearance order, as the self-check splits them
    assign = np.random.default_rng(seed).random((users.size, splits)) < 0.5
    hits = {}
    for s in range(splits):
        half = pd.Series(np.where(assign[:, s], "t", "c"), index=users)
        frame = control.assign(bucket=control["user_id"].map(half))
        table = compare_buckets(frame, "c", "t", adjust=None).table
        for _, r in table.iterrows():
            hits[r["metric"]] = hits.get(r["metric"], 0) + int(r["p_value"] < 0.05)
    got = check.table.set_index("metric")["false_positive_rate"]
    for metric, k in hits.items():
        assert got[metric] == pytest.approx(k / splits)
    assert check.units == users.size and check.split_by == "user"


def test_views_check_their_input(days_world):
    with pytest.raises(ValueError, match=r"metric must be one of .*Got 'revenue' instead"):
        daily_lift(days_world, "A", "B", "user", "revenue", Inference())
    with pytest.raises(ValueError, match=r"bucket must be one of \['A', 'B'\]\. Got 'Z' instead"):
        daily_lift(days_world, "A", "Z", "user", "ctr", Inference())
    with pytest.raises(ValueError, match=r"splits must be an int in \[1, inf\)\. Got 0 instead"):
        aa_self_check(days_world, "A", "user", "ctr", "holm", Inference(), splits=0)
