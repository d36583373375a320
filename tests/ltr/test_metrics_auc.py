"""Tests for ltr.metrics.auc and gauc: slow references, scikit-learn, invariants, hand cases."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ltr.metrics import GroupAUC, MetricWarning, auc, gauc
from ltr.metrics import _auc_kernels as kernels


# --------------------------------------------------------------------------------------
# Slow, obviously-correct references
# --------------------------------------------------------------------------------------
def ref_auc(y, s) -> float:
    """Pairwise loop: 1 per correctly ordered (pos, neg) pair, 0.5 per tie."""
    pos = [float(v) for t, v in zip(y, s, strict=True) if t]
    neg = [float(v) for t, v in zip(y, s, strict=True) if not t]
    if not pos or not neg:
        return math.nan
    total = 0.0
    for p in pos:
        for q in neg:
            total += 1.0 if p > q else (0.5 if p == q else 0.0)
    return total / (len(pos) * len(neg))


def ref_auc_outer(y, s) -> float:
    """The same definition with a full pairwise comparison matrix (medium n)."""
    y = np.asarray(y, dtype=bool)
    s = np.asarray(s, dtype=np.float64)
    p, q = s[y][:, None], s[~y][None, :]
    return float(((p > q) + 0.5 * (p == q)).mean())


def ref_gauc(y, s, g, weight="exposures"):
    num = den = 0.0
    used = skipped = 0
    for group in dict.fromkeys(g):
        idx = [i for i, gi in enumerate(g) if gi == group]
        yy = [y[i] for i in idx]
        if all(yy) or not any(yy):
            skipped += 1
            continue
        w = len(idx) if weight == "exposures" else sum(yy)
        num += w * ref_auc(yy, [s[i] for i in idx])
        den += w
        used += 1
    return (num / den if den else math.nan), used, skipped



# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
def make_binary(seed: int, n: int, n_levels: int, pos_rate: float = 0.3):
    """Labels correlated with scores on a coarse grid, so ties are frequent."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, n_levels, n) / 8.0
    y = rng.random(n) < np.clip(pos_rate + 0.05 * (s - s.mean()), 0.01, 0.99)
    return y.astype(np.int64), s



# --------------------------------------------------------------------------------------
# AUC
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("n", "n_levels"), [(2, 2), (7, 3), (60, 4), (150, 1000)])
def test_auc_matches_pairwise_loop(seed, n, n_levels):
    y, s = make_binary(seed, n, n_levels, pos_rate=0.5)
    y[0], y[-1] = 0, 1  # both classes present
    assert auc(y, s) == pytest.approx(ref_auc(y, s), abs=1e-15)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_levels", [2, 10, 100_000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_auc_matches_sklearn(seed, n_levels, dtype):
    y, s = make_binary(seed, 20_000, n_levels, pos_rate=0.1)
    s = (s * 8).astype(dtype)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auc_matches_sklearn_continuous_float64():
    rng = np.random.default_rng(5)
    s = rng.normal(size=30_000)
    y = rng.random(30_000) < 1 / (1 + np.exp(-s))
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize(
    ("y", "s", "expected"),
    [
        # 3 of the 4 (pos, neg) pairs ordered: 0.35 < 0.4 is the miss.
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
        # One tied pair: half credit.
        ([0, 1], [0.5, 0.5], 0.5),
        # Pairs (2 vs 1) 1, (2 vs 2) 0.5, (3 vs 1) 1, (3 vs 2) 1 -> 3.5 / 4.
        ([0, 0, 1, 1], [1, 2, 2, 3], 0.875),
        # Perfectly reversed.
        ([1, 1, 0], [0.1, 0.2, 0.3], 0.0),
        # All tied: every pair half credit.
        ([1, 0, 1, 0, 0], [7, 7, 7, 7, 7], 0.5),
        # Infinite scores order like any others.
        ([0, 1, 0, 1], [-np.inf, np.inf, 0.0, 0.0], 0.875),
    ],
)
def test_auc_hand_computed(y, s, expected):
    assert auc(y, s) == expected


@pytest.mark.parametrize("seed", range(3))
def test_auc_invariants(seed):
    y, s = make_binary(seed, 500, 40)  # dyadic grid: shifts and exp are exact/strict
    base = auc(y, s)
    assert auc(y, s + 1000.0) == base
    assert auc(y, np.exp(s)) == base
    assert auc(y, 1 / (1 + np.exp(-s))) == base
    assert auc(y, s**3) == base
    perm = np.random.default_rng(seed).permutation(len(y))
    assert auc(y[perm], s[perm]) == base
    assert auc(1 - y, s) == pytest.approx(1 - base, abs=1e-15)
    assert auc(y, -s) == pytest.approx(1 - base, abs=1e-15)


@pytest.mark.parametrize(
    "y",
    [
        np.array([1, 0, 1, 1], dtype=np.int64),
        np.array([True, False, True, True]),
        np.array([1.0, 0.0, 1.0, 1.0]),
        [1, 0, 1, 1],
        pd.Series([1, 0, 1, 1]),
    ],
)
@pytest.mark.parametrize(
    "s",
    [
        np.array([0.3, 0.2, 0.1, 0.9]),
        np.array([0.3, 0.2, 0.1, 0.9], dtype=np.float32),
        np.array([0.3, 0.2, 0.1, 0.9], dtype=np.float16),
        np.array([3, 2, 1, 9], dtype=np.int32),
        pd.Series([3, 2, 1, 9]),
    ],
)
def test_auc_input_types(y, s):
    # Positives 0.3 > 0.2, 0.1 < 0.2, 0.9 > 0.2 -> 2 / 3.
    assert auc(y, s) == pytest.approx(2 / 3, abs=1e-15)
    assert isinstance(auc(y, s), float)


@pytest.mark.parametrize("y", [[1, 1, 1], [0, 0], [False]])
def test_auc_one_class_is_nan_with_warning(y):
    with pytest.warns(MetricWarning, match="single class"):
        value = auc(y, np.arange(len(y), dtype=float))
    assert isinstance(value, float) and math.isnan(value)


@pytest.mark.parametrize(
    ("y", "s", "error", "match"),
    [
        ([], [], ValueError, "y_true must be non-empty. Got 0 rows instead."),
        ([0, 1], [0.1], ValueError, r"y_score must have the same length as y_true \(2\)"),
        ([0, 2], [0.1, 0.2], ValueError, "y_true must contain only 0 and 1. Got 2 at row 1 instead."),
        ([0, np.nan], [0.1, 0.2], ValueError, "y_true must contain only 0 and 1. Got nan at row 1"),
        ([0, 1], [0.1, np.nan], ValueError, "y_score must not contain NaN. Got NaN at row 1 instead."),
        ([[0, 1]], [[0.1, 0.2]], ValueError, r"y_true must be 1-D. Got an array of shape \(1, 2\)"),
        (["a", "b"], [0.1, 0.2], TypeError, "y_true must be a bool or numeric array"),
        ([0, 1], ["x", "y"], TypeError, "y_score must be a numeric array"),
    ],
)
def test_auc_bad_input(y, s, error, match):
    with pytest.raises(error, match=match):
        auc(y, s)



# --------------------------------------------------------------------------------------
# GAUC
# --------------------------------------------------------------------------------------
def make_groups(seed: int, n: int, n_groups: int, n_levels: int):
    y, s = make_binary(seed, n, n_levels)
    g = np.random.default_rng(seed + 100).integers(0, n_groups, n)
    return y, s, g


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weight", ["exposures", "positives"])
@pytest.mark.parametrize(("n_groups", "n_levels"), [(5, 3), (40, 10), (80, 10_000)])
def test_gauc_matches_per_user_loop(seed, weight, n_groups, n_levels):
    y, s, g = make_groups(seed, 600, n_groups, n_levels)
    value, used, skipped = ref_gauc(list(y), list(s), list(g), weight)
    result = gauc(y, s, g, weight=weight)
    assert result.value == pytest.approx(value, abs=1e-14)
    assert (result.n_groups_used, result.n_groups_skipped, result.weight) == (used, skipped, weight)


@pytest.mark.parametrize(
    ("make_scores", "path"),
    [
        pytest.param(lambda s, rng: s.astype(np.float32), "direct", id="float32"),
        pytest.param(lambda s, rng: s, "direct", id="float32-exact-float64"),
        # Truncated keys (the range crosses 0) but no tie: nothing to check.
        pytest.param(lambda s, rng: s + rng.normal(size=s.size) * 1e-3, "no-ties", id="float64-no-ties"),
        pytest.param(lambda s, rng: np.round(s + 0.1, 3), "direct", id="float64-ties"),
        pytest.param(lambda s, rng: (s * 8).astype(np.int64) * 2**55, "direct", id="int64-wide"),
        pytest.param(lambda s, rng: (s * 8).astype(np.int64) * 2**58 - 2**62, "checked", id="int64-truncated"),
        pytest.param(lambda s, rng: (s * 8).astype(np.int16), "direct", id="int16"),
        pytest.param(lambda s, rng: (s * 8).astype(np.int8).astype(bool), "direct", id="bool"),
        # A range needing all 64 key bits forces truncation; many ties make the kernel
        # check with one sort that no two distinct scores were merged (none are here).
        pytest.param(lambda s, rng: np.where(s > 0.5, 1e300 * s, -1e300 * s), "checked", id="float64-truncated"),
        # Distinct scores 2**-52 apart share a truncated key: exact dense-rank fallback.
        pytest.param(
            lambda s, rng: np.where(s > 0.5, 1e300, 0.5 + (s * 8) * 2.0**-52), "dense", id="float64-collide"
        ),
    ],
)
def test_gauc_exact_on_every_key_path(make_scores, path, monkeypatch):
    calls = []

    def spy(name):
        real = getattr(kernels, name)

        def wrapper(*args):
            calls.append(name)
            return real(*args)

        monkeypatch.setattr(kernels, name, wrapper)

    for name in ("_ties_are_exact", "_truncation_merges_scores", "_dense_rank_keys"):
        spy(name)
    rng = np.random.default_rng(11)
    y, s, g = make_groups(3, 800, 30, 6)
    scores = make_scores(s, rng)
    value, used, skipped = ref_gauc(list(y), list(scores), list(g))
    result = gauc(y, scores, g)
    assert result.value == pytest.approx(value, abs=1e-14)
    assert (result.n_groups_used, result.n_groups_skipped) == (used, skipped)
    expected_calls = {
        "direct": [],
        "no-ties": ["_ties_are_exact"],
        "checked": ["_ties_are_exact", "_truncation_merges_scores"],
        "dense": ["_ties_are_exact", "_truncation_merges_scores", "_dense_rank_keys"],
    }[path]
    assert calls == expected_calls


@pytest.mark.parametrize(
    ("same_group", "path"), [(False, ["_ties_are_exact"]), (True, ["_ties_are_exact", "_dense_rank_keys"])]
)
def test_gauc_few_ties_checked_by_lookup(same_group, path, monkeypatch):
    # Continuous scores over a 64-bit range (truncated keys) with one real tie; two
    # scores one ulp apart share a truncated key. In different groups that is harmless
    # and the tie lookup confirms it; as a (pos, neg) pair of one group it would be a
    # false tie, so the kernel falls back to dense ranks. Both must match the loop.
    calls = []
    for name in ("_ties_are_exact", "_truncation_merges_scores", "_dense_rank_keys"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    rng = np.random.default_rng(21)
    n = 2_000
    s = rng.uniform(-1.0, 1.0, n) * 10.0 ** rng.integers(-300, 300, n)
    y = (rng.random(n) < 0.4).astype(int)
    g = rng.integers(0, 100, n)
    s[0], s[1], y[0], y[1] = 0.5, np.nextafter(0.5, 1.0), 1, 0
    g[0], g[1] = (7, 7) if same_group else (7, 8)
    s[2], s[3], y[2], y[3], g[2], g[3] = 0.25, 0.25, 1, 0, 9, 9
    keys, _, _, shift = kernels._score_keys(s, 57)
    assert shift > 0 and keys[0] == keys[1]
    value, _, _ = ref_gauc(list(y), list(s), list(g))
    assert gauc(y, s, g).value == pytest.approx(value, abs=1e-14)
    assert calls == path


def test_gauc_collision_path_is_taken():
    # Keys keep at most 64 - group bits; these scores need 64 bits, so two distinct values
    # 2**-52 apart share a truncated key and the check must report it.
    scores = np.array([-1e300, 0.5, 0.5 + 2.0**-52, 1e300])
    keys, bits, exact, shift = kernels._score_keys(scores, 40)
    assert shift == 24 and exact is not None and bits == 40
    assert keys[1] == keys[2] and np.all(exact[1:] > exact[:-1])
    assert kernels._truncation_merges_scores(exact, shift)
    assert not kernels._truncation_merges_scores(exact[[0, 1, 3]], shift)


def test_gauc_single_group_equals_auc():
    y, s = make_binary(0, 300, 7)
    assert gauc(y, s, np.zeros(300, dtype=int)).value == pytest.approx(auc(y, s), abs=1e-15)


def test_gauc_invariants():
    y, s, g = make_groups(1, 700, 25, 12)
    base = gauc(y, s, g)
    perm = np.random.default_rng(1).permutation(len(y))
    assert gauc(y[perm], s[perm], g[perm]) == base
    assert gauc(y, s, np.array([f"user-{v}" for v in g], dtype=object)) == base
    # Shifting each user's scores by its own constant changes no per-user AUC.
    offsets = np.random.default_rng(2).integers(-50, 50, g.max() + 1)
    assert gauc(y, s + offsets[g], g) == base


def test_gauc_hand_computed():
    # a: pos 0.9 > neg 0.2 -> 1 (2 rows); b: pos 0.1 < neg 0.5 -> 0 (3 rows, 2 positives:
    # 0.1 < 0.5 and 0.6 > 0.5 -> 0.5); c: one class, skipped.
    y = [0, 1, 0, 1, 1, 1]
    s = [0.2, 0.9, 0.5, 0.1, 0.6, 0.3]
    g = ["a", "a", "b", "b", "b", "c"]
    exposures = gauc(y, s, g)
    assert exposures == GroupAUC(value=(2 * 1.0 + 3 * 0.5) / 5, n_groups_used=2, n_groups_skipped=1, weight="exposures")
    positives = gauc(y, s, g, weight="positives")
    assert positives.value == pytest.approx((1 * 1.0 + 2 * 0.5) / 3, abs=1e-15)
    assert float(positives) == positives.value


def test_gauc_all_groups_one_class():
    with pytest.warns(MetricWarning, match="no group has both classes"):
        result = gauc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [1, 1, 2, 2])
    assert math.isnan(result.value)
    assert (result.n_groups_used, result.n_groups_skipped) == (0, 2)


def test_gauc_result_is_frozen():
    result = gauc([0, 1], [0.1, 0.2], [1, 1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("groups", "weight", "match"),
    [
        ([1, 1, None], "exposures", "groups must not contain missing ids. Got None at row 2 instead."),
        ([1.0, np.nan, 1.0], "exposures", "groups must not contain missing ids. Got nan at row 1"),
        ([1, 1], "exposures", r"groups must have the same length as y_true \(3\). Got 2 instead."),
        ([1, 1, 1], "users", r"weight must be one of \['exposures', 'positives'\]. Got 'users' instead."),
    ],
)
def test_gauc_bad_input(groups, weight, match):
    with pytest.raises(ValueError, match=match):
        gauc([0, 1, 1], [0.1, 0.2, 0.3], groups, weight=weight)


def test_gauc_empty():
    with pytest.raises(ValueError, match="y_true must be non-empty"):
        gauc([], [], [])



@pytest.mark.parametrize(
    "groups",
    [
        ["u1", "u1", "u1", "u2", "u2", "u2"],
        np.array([7, 7, 7, 9, 9, 9]),
        pd.Series(["u1", "u1", "u1", "u2", "u2", "u2"], dtype="string", index=[9, 8, 7, 6, 5, 4]),
        pd.Series(pd.Categorical(["a", "a", "a", "b", "b", "b"], categories=["a", "b", "unused"])),
    ],
)
def test_gauc_group_id_types(groups):
    # u1: positive 0.3 vs negatives 0.1 (win) and 0.5 (loss) -> 1/2;
    # u2: positives 0.4, 0.2 vs negative 0.2 -> (1 + 0.5) / 2. Exposure weights 3 and 3.
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.3, 0.5, 0.4, 0.2, 0.2]
    result = gauc(y, s, groups)
    assert result == GroupAUC(value=(0.5 + 0.75) / 2, n_groups_used=2, n_groups_skipped=0, weight="exposures")
