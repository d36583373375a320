"""Tests for ltr.metrics log loss, normalised entropy and calibration: loops, scikit-learn,
scipy's Wilson interval, hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import log_loss

from ltr.metrics import (
    MetricWarning,
    calibration_table,
    expected_calibration_error,
    logloss,
    normalized_entropy,
    predicted_actual_ratio,
)


# --------------------------------------------------------------------------------------
# Slow, obviously-correct references
# --------------------------------------------------------------------------------------
def ref_bins(pred, n_bins):
    """Bin of each row by the documented rule, with a plain loop."""
    srt = sorted(pred)
    first = {}
    for i, v in enumerate(srt):
        first.setdefault(v, i)
    raw = {v: first[v] * n_bins // len(pred) for v in first}
    renumber = {b: j for j, b in enumerate(sorted(set(raw.values())))}
    return [renumber[raw[v]] for v in pred]


def ref_calibration(y, p, n_bins):
    bins = ref_bins(list(p), n_bins)
    rows = []
    for b in sorted(set(bins)):
        idx = [i for i, bi in enumerate(bins) if bi == b]
        rows.append(
            (
                min(p[i] for i in idx),
                max(p[i] for i in idx),
                len(idx),
                sum(int(y[i]) for i in idx),
                sum(p[i] for i in idx) / len(idx),
            )
        )
    return rows



# --------------------------------------------------------------------------------------
# Log loss and normalised entropy
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_logloss_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, 5_000)
    y = (rng.random(5_000) < p).astype(int)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), rel=1e-12)
    assert logloss(y, p.astype(np.float32)) == pytest.approx(log_loss(y, p.astype(np.float32).astype(float)), rel=1e-12)
    perm = rng.permutation(5_000)
    assert logloss(y[perm], p[perm]) == pytest.approx(logloss(y, p), rel=1e-12)


def test_logloss_hand_computed():
    assert logloss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2), rel=1e-15)
    expected = -(math.log(0.8) + math.log(0.75) + math.log(1 - 1e-15)) / 3
    assert logloss([1, 0, 1], [0.8, 0.25, 1.0]) == pytest.approx(expected, rel=1e-14)
    # A confident wrong prediction is clipped to eps, or infinite when clipping is off.
    assert logloss([1], [0.0]) == pytest.approx(-math.log(1e-15), rel=1e-12)
    with np.errstate(divide="ignore"):
        assert logloss([1], [0.0], eps=0.0) == math.inf


def test_normalized_entropy():
    rng = np.random.default_rng(4)
    y = (rng.random(4_000) < 0.2).astype(int)
    r = y.mean()
    assert normalized_entropy(y, np.full(4_000, r)) == pytest.approx(1.0, rel=1e-12)
    p = rng.uniform(0.02, 0.6, 4_000)
    entropy = -(r * math.log(r) + (1 - r) * math.log(1 - r))
    assert normalized_entropy(y, p) == pytest.approx(log_loss(y, p) / entropy, rel=1e-12)
    with pytest.warns(MetricWarning, match="single class"):
        assert math.isnan(normalized_entropy([1, 1], [0.3, 0.9]))


@pytest.mark.parametrize("func", [logloss, normalized_entropy])
@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 1], [0.2, 1.5], r"y_pred must contain probabilities in \[0, 1\]. Got 1.5 at row 1 instead."),
        ([0, 1], [-0.1, 0.5], r"Got -0.1 at row 0"),
        ([], [], "y_true must be non-empty"),
        ([0, 1], [0.5, np.nan], "y_pred must not contain NaN"),
    ],
)
def test_logloss_bad_input(func, y, p, match):
    with pytest.raises(ValueError, match=match):
        func(y, p)


@pytest.mark.parametrize(
    ("eps", "error", "match"),
    [
        (0.7, ValueError, r"eps must be a float in \[0, 0.5\). Got 0.7 instead."),
        (-1e-9, ValueError, r"eps must be a float in \[0, 0.5\). Got -1e-09 instead."),
        (None, TypeError, "eps must be a float. Got None instead."),
    ],
)
def test_logloss_bad_eps(eps, error, match):
    with pytest.raises(error, match=match):
        logloss([0, 1], [0.2, 0.3], eps=eps)



# --------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("n", "n_levels", "n_bins"), [(9, 100, 4), (200, 7, 10), (333, 1000, 10), (50, 1, 5)])
def test_calibration_table_matches_loop(seed, n, n_levels, n_bins):
    rng = np.random.default_rng(seed)
    p = rng.integers(0, n_levels, n) / max(n_levels, 2)
    y = (rng.random(n) < p).astype(int)
    table = calibration_table(y, p, n_bins)
    expected = ref_calibration(list(y), list(p), n_bins)
    assert list(table.index) == list(range(len(expected)))
    assert table.index.name == "bin"
    got = table[["pred_min", "pred_max", "count", "positives", "mean_predicted"]].to_numpy()
    np.testing.assert_allclose(got, np.array(expected, dtype=float), rtol=1e-12, atol=0)
    np.testing.assert_allclose(table["actual_rate"], table["positives"] / table["count"])
    for row in table.itertuples():
        ci = binomtest(int(row.positives), int(row.count)).proportion_ci(0.95, method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert table["count"].sum() == n
    assert len(table) <= n_bins
    # Equal predictions never straddle two bins.
    assert (table["pred_min"].to_numpy()[1:] > table["pred_max"].to_numpy()[:-1]).all()
    perm = rng.permutation(n)
    pd.testing.assert_frame_equal(calibration_table(y[perm], p[perm], n_bins), table)
    columns = (table["count"], table["mean_predicted"], table["actual_rate"])
    ece = sum(c * abs(m - a) for c, m, a in zip(*columns, strict=True)) / n
    assert expected_calibration_error(y, p, n_bins) == pytest.approx(ece, abs=1e-15)


def test_calibration_table_hand_computed():
    # 10 distinct predictions, 5 bins -> 2 rows per bin.
    p = np.arange(10) / 10
    y = [0, 0, 0, 1, 0, 1, 1, 1, 1, 1]
    table = calibration_table(y, p, n_bins=5)
    assert table["count"].tolist() == [2, 2, 2, 2, 2]
    assert table["positives"].tolist() == [0, 1, 1, 2, 2]
    np.testing.assert_allclose(table["mean_predicted"], [0.05, 0.25, 0.45, 0.65, 0.85])
    # Wilson 95% for 1 of 2: centre (0.5 + z^2/4) / (1 + z^2/2) = 0.5, known bounds.
    assert table.loc[1, "ci_low"] == pytest.approx(0.0945312, abs=1e-6)
    assert table.loc[1, "ci_high"] == pytest.approx(0.9054688, abs=1e-6)
    # |0.05-0| + |0.25-0.5| + |0.45-0.5| + |0.65-1| + |0.85-1| = 0.85, each weight 1/5.
    assert expected_calibration_error(y, p, n_bins=5) == pytest.approx(0.17, abs=1e-15)


def test_calibration_big_tie_takes_one_bin():
    # 6 of 8 predictions equal 0.1: they start at position 0 -> one bin; 0.7 at position
    # 6 -> bin floor(6 * 4 / 8) = 3, renumbered 1.
    table = calibration_table([0, 0, 1, 0, 0, 0, 1, 1], [0.1] * 6 + [0.7, 0.7], n_bins=4)
    assert table["count"].tolist() == [6, 2]
    assert table["actual_rate"].tolist() == [1 / 6, 1.0]


def test_ece_perfect_calibration_is_zero():
    p = np.repeat([0.25, 0.5, 0.75], 4)
    y = np.array([1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(y, p, n_bins=3) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_bins": 0}, ValueError, r"n_bins must be an int in \[1, inf\). Got 0 instead."),
        ({"n_bins": 2.5}, TypeError, "n_bins must be an int. Got 2.5 instead."),
        ({"confidence": 1.0}, ValueError, r"confidence must be a float in \(0, 1\). Got 1.0 instead."),
        ({"confidence": "high"}, TypeError, "confidence must be a float. Got 'high' instead."),
    ],
)
def test_calibration_bad_params(kwargs, error, match):
    with pytest.raises(error, match=match):
        calibration_table([0, 1], [0.2, 0.3], **kwargs)


def test_predicted_actual_ratio_matches_loop():
    rng = np.random.default_rng(8)
    n = 500
    p = rng.uniform(0.01, 0.5, n)
    y = (rng.random(n) < p * 1.3).astype(int)
    seg = pd.Series(rng.choice(["top", "mid", "tail"], n), name="position")
    seg.iloc[[3, 9]] = None
    table = predicted_actual_ratio(y, p, seg)
    assert table.index.name == "position"
    assert list(table.columns) == ["count", "positives", "mean_predicted", "actual_rate", "ratio"]
    values = seg.tolist()
    for key in dict.fromkeys(values):
        idx = [i for i, v in enumerate(values)
               if v == key or (key is None and v is None) or (isinstance(key, float) and isinstance(v, float))]
        row = table.loc[key] if isinstance(key, str) else table[table.index.isna()].iloc[0]
        assert row["count"] == len(idx)
        assert row["mean_predicted"] == pytest.approx(sum(p[i] for i in idx) / len(idx), rel=1e-12)
        assert row["actual_rate"] == pytest.approx(sum(y[i] for i in idx) / len(idx), rel=1e-12)
        assert row["ratio"] == pytest.approx(row["mean_predicted"] / row["actual_rate"], rel=1e-12)
    assert table["count"].sum() == n  # missing segment kept, not dropped
    perm = rng.permutation(n)
    shuffled = predicted_actual_ratio(y[perm], p[perm], seg.iloc[perm].reset_index(drop=True))
    pd.testing.assert_frame_equal(shuffled, table)


def test_predicted_actual_ratio_hand_computed():
    table = predicted_actual_ratio([1, 0, 0, 0, 1], [0.4, 0.2, 0.1, 0.3, 0.6], [2, 1, 1, 2, 2])
    assert table.index.name == "segment"
    assert table.loc[1].tolist() == pytest.approx([2, 0, 0.15, 0.0, math.inf])
    assert table.loc[2].tolist() == pytest.approx([3, 2, 1.3 / 3, 2 / 3, 0.65])
    with pytest.raises(ValueError, match=r"segment must have the same length as y_true \(5\). Got 2"):
        predicted_actual_ratio([1, 0, 0, 0, 1], [0.4, 0.2, 0.1, 0.3, 0.6], [1, 2])
