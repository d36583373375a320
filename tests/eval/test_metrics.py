"""Tests for eval.metrics: slow references, scikit-learn, invariants, hand-computed cases."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

from eval.metrics import (
    GroupAUC,
    MetricWarning,
    auc,
    calibration_table,
    coverage_at_k,
    expected_calibration_error,
    gauc,
    hitrate_at_k,
    logloss,
    mean_hit_position,
    ndcg_at_k,
    normalized_entropy,
    predicted_actual_ratio,
    recall_at_k,
)
from eval.metrics import _helpers as helpers


# --------------------------------------------------------------------------------------
# Slow, obviously-correct references
# --------------------------------------------------------------------------------------
def ref_auc(y, s) -> float:
    """Pairwise loop: 1 per correctly ordered (pos, neg) pair, 0.5 per tie."""
    pos = [float(v) for t, v in zip(y, s) if t]
    neg = [float(v) for t, v in zip(y, s) if not t]
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


def ref_list_metrics(cands: pd.DataFrame, targets: pd.DataFrame, k: int, catalogue: int):
    lists: dict = {}
    for r, i, q in zip(cands["request_id"], cands["item_id"], cands["rank"]):
        lists.setdefault(r, {})[i] = int(q)
    per_request: dict = {}
    hits, positions = 0, []
    for r, i in zip(targets["request_id"], targets["item_id"]):
        q = lists.get(r, {}).get(i)
        hit = q is not None and q <= k
        per_request.setdefault(r, []).append(q if hit else None)
        if hit:
            hits += 1
            positions.append(q)
    recalls, ndcgs = [], []
    for found in per_request.values():
        got = [q for q in found if q is not None]
        recalls.append(len(got) / len(found))
        dcg = sum(1.0 / math.log2(q + 1) for q in got)
        idcg = sum(1.0 / math.log2(j + 1) for j in range(1, min(k, len(found)) + 1))
        ndcgs.append(dcg / idcg)
    top_items = {i for r in lists for i, q in lists[r].items() if q <= k}
    return {
        "hitrate": hits / len(targets),
        "recall": sum(recalls) / len(recalls),
        "ndcg": sum(ndcgs) / len(ndcgs),
        "mean_hit_position": (sum(positions) / len(positions)) if positions else math.nan,
        "coverage": len(top_items) / catalogue,
    }


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
def make_binary(seed: int, n: int, n_levels: int, pos_rate: float = 0.3):
    """Labels correlated with scores on a coarse grid, so ties are frequent."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, n_levels, n) / 8.0
    y = rng.random(n) < np.clip(pos_rate + 0.05 * (s - s.mean()), 0.01, 0.99)
    return y.astype(np.int64), s


def make_lists(seed: int, n_requests: int = 40, n_items: int = 60, gaps: bool = False):
    rng = np.random.default_rng(seed)
    rows, trows = [], []
    for r in range(n_requests):
        length = int(rng.integers(0, 25))  # 0: a request with targets but no list
        items = rng.choice(n_items, size=length, replace=False)
        if gaps:
            ranks = np.sort(rng.choice(np.arange(1, 40), size=length, replace=False))
        else:
            ranks = np.arange(1, length + 1)
        rows += [(r, int(i), int(q)) for i, q in zip(items, ranks)]
        n_t = int(rng.integers(1, 5))
        trows += [(r, int(i)) for i in rng.choice(n_items, size=n_t, replace=False)]
    cands = pd.DataFrame(rows, columns=["request_id", "item_id", "rank"])
    targets = pd.DataFrame(trows, columns=["request_id", "item_id"])
    return cands, targets


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
        real = getattr(helpers, name)

        def wrapper(*args):
            calls.append(name)
            return real(*args)

        monkeypatch.setattr(helpers, name, wrapper)

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


@pytest.mark.parametrize(("same_group", "path"), [(False, ["_ties_are_exact"]), (True, ["_ties_are_exact", "_dense_rank_keys"])])
def test_gauc_few_ties_checked_by_lookup(same_group, path, monkeypatch):
    # Continuous scores over a 64-bit range (truncated keys) with one real tie; two
    # scores one ulp apart share a truncated key. In different groups that is harmless
    # and the tie lookup confirms it; as a (pos, neg) pair of one group it would be a
    # false tie, so the kernel falls back to dense ranks. Both must match the loop.
    calls = []
    for name in ("_ties_are_exact", "_truncation_merges_scores", "_dense_rank_keys"):
        real = getattr(helpers, name)
        monkeypatch.setattr(helpers, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    rng = np.random.default_rng(21)
    n = 2_000
    s = rng.uniform(-1.0, 1.0, n) * 10.0 ** rng.integers(-300, 300, n)
    y = (rng.random(n) < 0.4).astype(int)
    g = rng.integers(0, 100, n)
    s[0], s[1], y[0], y[1] = 0.5, np.nextafter(0.5, 1.0), 1, 0
    g[0], g[1] = (7, 7) if same_group else (7, 8)
    s[2], s[3], y[2], y[3], g[2], g[3] = 0.25, 0.25, 1, 0, 9, 9
    keys, bits, exact, shift = helpers._score_keys(s, 57)
    assert shift > 0 and keys[0] == keys[1]
    value, used, skipped = ref_gauc(list(y), list(s), list(g))
    assert gauc(y, s, g).value == pytest.approx(value, abs=1e-14)
    assert calls == path


def test_gauc_collision_path_is_taken():
    # Keys keep at most 64 - group bits; these scores need 64 bits, so two distinct values
    # 2**-52 apart share a truncated key and the check must report it.
    scores = np.array([-1e300, 0.5, 0.5 + 2.0**-52, 1e300])
    keys, bits, exact, shift = helpers._score_keys(scores, 40)
    assert shift == 24 and exact is not None and bits == 40
    assert keys[1] == keys[2] and np.all(exact[1:] > exact[:-1])
    assert helpers._truncation_merges_scores(exact, shift)
    assert not helpers._truncation_merges_scores(exact[[0, 1, 3]], shift)


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
        ([1, 1, 1], "users", "weight must be 'exposures' or 'positives'. Got 'users' instead."),
    ],
)
def test_gauc_bad_input(groups, weight, match):
    with pytest.raises(ValueError, match=match):
        gauc([0, 1, 1], [0.1, 0.2, 0.3], groups, weight=weight)


def test_gauc_empty():
    with pytest.raises(ValueError, match="y_true must be non-empty"):
        gauc([], [], [])


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
    assert logloss([1, 0, 1], [0.8, 0.25, 1.0]) == pytest.approx(-(math.log(0.8) + math.log(0.75) + math.log(1 - 1e-15)) / 3, rel=1e-14)
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


def test_logloss_bad_eps():
    with pytest.raises(ValueError, match=r"eps must be a float in \[0, 0.5\). Got 0.7 instead."):
        logloss([0, 1], [0.2, 0.3], eps=0.7)


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
    ece = sum(c * abs(m - a) for c, m, a in zip(table["count"], table["mean_predicted"], table["actual_rate"])) / n
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
    ("kwargs", "match"),
    [
        ({"n_bins": 0}, "n_bins must be an int >= 1. Got 0 instead."),
        ({"n_bins": 2.5}, "n_bins must be an int >= 1. Got 2.5 instead."),
        ({"confidence": 1.0}, r"confidence must be a float in \(0, 1\). Got 1.0 instead."),
    ],
)
def test_calibration_bad_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
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
        idx = [i for i, v in enumerate(values) if v == key or (key is None and v is None) or (isinstance(key, float) and isinstance(v, float))]
        row = table.loc[key] if isinstance(key, str) else table[table.index.isna()].iloc[0]
        assert row["count"] == len(idx)
        assert row["mean_predicted"] == pytest.approx(sum(p[i] for i in idx) / len(idx), rel=1e-12)
        assert row["actual_rate"] == pytest.approx(sum(y[i] for i in idx) / len(idx), rel=1e-12)
        assert row["ratio"] == pytest.approx(row["mean_predicted"] / row["actual_rate"], rel=1e-12)
    assert table["count"].sum() == n  # missing segment kept, not dropped
    perm = rng.permutation(n)
    pd.testing.assert_frame_equal(predicted_actual_ratio(y[perm], p[perm], seg.iloc[perm].reset_index(drop=True)), table)


def test_predicted_actual_ratio_hand_computed():
    table = predicted_actual_ratio([1, 0, 0, 0, 1], [0.4, 0.2, 0.1, 0.3, 0.6], [2, 1, 1, 2, 2])
    assert table.index.name == "segment"
    assert table.loc[1].tolist() == pytest.approx([2, 0, 0.15, 0.0, math.inf])
    assert table.loc[2].tolist() == pytest.approx([3, 2, 1.3 / 3, 2 / 3, 0.65])
    with pytest.raises(ValueError, match=r"segment must have the same length as y_true \(5\). Got 2"):
        predicted_actual_ratio([1, 0, 0, 0, 1], [0.4, 0.2, 0.1, 0.3, 0.6], [1, 2])


# --------------------------------------------------------------------------------------
# Candidate-list metrics
# --------------------------------------------------------------------------------------
KS = [1, 3, 5, 10, 1000]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gaps", [False, True])
def test_list_metrics_match_loop(seed, gaps):
    cands, targets = make_lists(seed, gaps=gaps)
    catalogue = 60
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        frames = {
            "hitrate": hitrate_at_k(cands, targets, KS),
            "recall": recall_at_k(cands, targets, KS),
            "ndcg": ndcg_at_k(cands, targets, KS),
            "mean_hit_position": mean_hit_position(cands, targets, KS),
            "coverage": coverage_at_k(cands, KS, catalogue),
        }
    for k in KS:
        expected = ref_list_metrics(cands, targets, k, catalogue)
        for name, frame in frames.items():
            assert list(frame.index) == KS and frame.index.name == "k"
            assert frame.loc[k, name] == pytest.approx(expected[name], abs=1e-14, nan_ok=True), (name, k)
    # Row order of either frame changes nothing.
    rng = np.random.default_rng(seed)
    shuffled_c = cands.sample(frac=1.0, random_state=rng).reset_index(drop=True)
    shuffled_t = targets.sample(frac=1.0, random_state=rng)
    pd.testing.assert_frame_equal(ndcg_at_k(shuffled_c, shuffled_t, KS), frames["ndcg"])
    pd.testing.assert_frame_equal(recall_at_k(shuffled_c, shuffled_t, KS), frames["recall"])
    pd.testing.assert_frame_equal(hitrate_at_k(shuffled_c, shuffled_t, KS), frames["hitrate"])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 4, 12, 30])
def test_ndcg_matches_sklearn_on_full_rankings(seed, k):
    rng = np.random.default_rng(seed)
    n_req, n_items = 25, 12
    relevance = rng.random((n_req, n_items)) < 0.25
    relevance[np.arange(n_req), rng.integers(0, n_items, n_req)] = True
    ranks = np.argsort(rng.random((n_req, n_items)), axis=1) + 1  # a permutation per row
    cands = pd.DataFrame(
        {"request_id": np.repeat(np.arange(n_req), n_items), "item_id": np.tile(np.arange(n_items), n_req), "rank": ranks.ravel()}
    )
    r, i = np.nonzero(relevance)
    targets = pd.DataFrame({"request_id": r, "item_id": i})
    got = ndcg_at_k(cands, targets, k).loc[k, "ndcg"]
    assert got == pytest.approx(ndcg_score(relevance.astype(int), -ranks, k=k), abs=1e-12)


def test_list_metrics_hand_computed():
    cands = pd.DataFrame(
        {"request_id": ["r1"] * 3 + ["r2"] * 2, "item_id": ["a", "b", "c", "a", "d"], "rank": [1, 2, 3, 1, 2]}
    )
    # r1: b hit at 2, x missing; r2: d at 2; r3 has no list (a miss).
    targets = pd.DataFrame({"request_id": ["r1", "r1", "r2", "r3"], "item_id": ["b", "x", "d", "a"]})
    hr = hitrate_at_k(cands, targets, [1, 2, 5])
    assert hr["hits"].tolist() == [0, 2, 2]
    assert hr["hitrate"].tolist() == [0.0, 0.5, 0.5]
    assert hr["n_targets"].tolist() == [4, 4, 4]
    # K=2: r1 1/2, r2 1/1, r3 0/1 -> mean 0.5.
    assert recall_at_k(cands, targets, 2)["recall"].tolist() == [0.5]
    # K=2: r1 (1/log2 3) / (1 + 1/log2 3), r2 (1/log2 3) / 1, r3 0.
    d2 = 1 / math.log2(3)
    assert ndcg_at_k(cands, targets, 2).loc[2, "ndcg"] == pytest.approx((d2 / (1 + d2) + d2) / 3, abs=1e-15)
    assert mean_hit_position(cands, targets, [2]).loc[2].tolist() == [2.0, 2]
    # Items in top 1: {a}; top 2: {a, b, d}; top 3: {a, b, c, d} of a catalogue of 8.
    cov = coverage_at_k(cands, [1, 2, 3], 8)
    assert cov["n_items"].tolist() == [1, 3, 4]
    assert cov["coverage"].tolist() == [1 / 8, 3 / 8, 4 / 8]


def test_list_metrics_single_k_and_types():
    cands, targets = make_lists(0)
    one = hitrate_at_k(cands, targets, np.int64(5))
    assert isinstance(one, pd.DataFrame) and list(one.index) == [5]
    assert one["hits"].dtype == np.int64
    # Unsorted, repeated K come back sorted and distinct.
    assert list(hitrate_at_k(cands, targets, (10, 5, 10)).index) == [5, 10]
    # rank_pos as in the candidates log table.
    renamed = cands.rename(columns={"rank": "rank_pos"})
    pd.testing.assert_frame_equal(hitrate_at_k(renamed, targets, 5, rank_col="rank_pos"), one)


def test_list_metrics_empty_candidates_and_no_hits():
    cands = pd.DataFrame({"request_id": pd.Series([], dtype=np.int64), "item_id": pd.Series([], dtype=np.int64), "rank": pd.Series([], dtype=np.int64)})
    targets = pd.DataFrame({"request_id": [1, 2], "item_id": [5, 6]})
    assert hitrate_at_k(cands, targets, 3)["hitrate"].tolist() == [0.0]
    assert ndcg_at_k(cands, targets, 3)["ndcg"].tolist() == [0.0]
    assert coverage_at_k(cands, 3, 10)["coverage"].tolist() == [0.0]
    with pytest.warns(MetricWarning, match=r"no hit; NaN for k=\[3\]"):
        out = mean_hit_position(cands, targets, 3)
    assert math.isnan(out.loc[3, "mean_hit_position"]) and out.loc[3, "hits"] == 0


GOOD_C = pd.DataFrame({"request_id": [1, 1], "item_id": [7, 8], "rank": [1, 2]})
GOOD_T = pd.DataFrame({"request_id": [1], "item_id": [8]})


@pytest.mark.parametrize(
    ("k", "error", "match"),
    [
        (0, ValueError, "k must be an int >= 1. Got 0 instead."),
        ([5, -1], ValueError, "k must be an int >= 1. Got -1 instead."),
        ([], ValueError, "k must be an int >= 1 or a non-empty sequence of them. Got"),
        (2.5, TypeError, "k must be an int >= 1 or a sequence of them. Got 2.5 instead."),
        ([2.5], TypeError, "k must be an int >= 1. Got 2.5 instead."),
        (True, TypeError, "k must be an int >= 1 or a sequence of them. Got True instead."),
        ("5", TypeError, "k must be an int >= 1 or a sequence of them. Got '5' instead."),
    ],
)
@pytest.mark.parametrize("func", [hitrate_at_k, recall_at_k, ndcg_at_k, mean_hit_position])
def test_list_metrics_bad_k(func, k, error, match):
    with pytest.raises(error, match=match):
        func(GOOD_C, GOOD_T, k)


@pytest.mark.parametrize(
    ("cands", "targets", "error", "match"),
    [
        (GOOD_C.drop(columns="rank"), GOOD_T, ValueError, r"candidates must have columns \['request_id', 'item_id', 'rank'\]"),
        (GOOD_C, GOOD_T.rename(columns={"item_id": "item"}), ValueError, r"targets must have columns .* \(missing \['item_id'\]\)"),
        (GOOD_C.assign(rank=[1.0, 2.0]), GOOD_T, TypeError, r"candidates\['rank'\] must be an integer column \(1 = best\). Got dtype float64"),
        (GOOD_C.assign(rank=[0, 1]), GOOD_T, ValueError, r"candidates\['rank'\] must be >= 1 \(1 = best\). Got 0 at index 0"),
        (GOOD_C.assign(item_id=[7, 7]), GOOD_T, ValueError, r"candidates must have one row per \(request_id, item_id\). Got duplicate \(request_id=1, item_id=7\) at index 0 and 1"),
        (GOOD_C.assign(rank=[2, 2]), GOOD_T, ValueError, r"candidates must have one row per \(request_id, rank\)"),
        (GOOD_C, pd.concat([GOOD_T, GOOD_T]), ValueError, r"targets must have one row per \(request_id, item_id\).*drop_duplicates"),
        (GOOD_C, GOOD_T.iloc[:0], ValueError, "targets must have at least one row. Got 0 rows instead."),
        (GOOD_C.assign(item_id=[7.0, np.nan]), GOOD_T, ValueError, r"candidates\['item_id'\] must not contain missing values. Got a missing value at index 1"),
        (GOOD_C, GOOD_T.assign(item_id=["8"]), TypeError, r"targets\['item_id'\] and candidates\['item_id'\] must have comparable types"),
        (GOOD_C.to_dict(), GOOD_T, TypeError, "candidates must be a pandas DataFrame. Got dict instead."),
    ],
)
def test_list_metrics_bad_frames(cands, targets, error, match):
    with pytest.raises(error, match=match):
        hitrate_at_k(cands, targets, 5)


@pytest.mark.parametrize(("size", "match"), [(1, r"catalogue_size must be >= the number of distinct items in candidates \(2\). Got 1"), (0, "catalogue_size must be an int >= 1. Got 0 instead.")])
def test_coverage_bad_catalogue(size, match):
    with pytest.raises(ValueError, match=match):
        coverage_at_k(GOOD_C, 5, size)


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
