"""Tests for eval.metrics: the candidate-list metrics against loops, scikit-learn's NDCG and
hand-computed cases, and the re-export of ltr.metrics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

import eval.metrics
import ltr.metrics
from eval.metrics import (
    MetricWarning,
    coverage_at_k,
    hitrate_at_k,
    mean_hit_position,
    ndcg_at_k,
    recall_at_k,
)


# --------------------------------------------------------------------------------------
# Slow, obviously-correct reference
# --------------------------------------------------------------------------------------
def ref_list_metrics(cands: pd.DataFrame, targets: pd.DataFrame, k: int, catalogue: int):
    lists: dict = {}
    for r, i, q in zip(cands["request_id"], cands["item_id"], cands["rank"], strict=True):
        lists.setdefault(r, {})[i] = int(q)
    per_request: dict = {}
    hits, positions = 0, []
    for r, i in zip(targets["request_id"], targets["item_id"], strict=True):
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
def make_lists(seed: int, n_requests: int = 40, n_items: int = 60, gaps: bool = False):
    rng = np.random.default_rng(seed)
    rows, trows = [], []
    for r in range(n_requests):
        length = int(rng.integers(0, 25))  # 0: a request with targets but no list
        items = rng.choice(n_items, size=length, replace=False)
        ranks = np.sort(rng.choice(np.arange(1, 40), size=length, replace=False)) if gaps else np.arange(1, length + 1)
        rows += [(r, int(i), int(q)) for i, q in zip(items, ranks, strict=True)]
        n_t = int(rng.integers(1, 5))
        trows += [(r, int(i)) for i in rng.choice(n_items, size=n_t, replace=False)]
    cands = pd.DataFrame(rows, columns=["request_id", "item_id", "rank"])
    targets = pd.DataFrame(trows, columns=["request_id", "item_id"])
    return cands, targets


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
        {
            "request_id": np.repeat(np.arange(n_req), n_items),
            "item_id": np.tile(np.arange(n_items), n_req),
            "rank": ranks.ravel(),
        }
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
    empty = pd.Series([], dtype=np.int64)
    cands = pd.DataFrame({"request_id": empty, "item_id": empty, "rank": empty})
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
        (0, ValueError, r"k must be an int in \[1, inf\). Got 0 instead."),
        ([5, -1], ValueError, r"k must be an int in \[1, inf\). Got -1 instead."),
        ([], ValueError, r"k must be an int in \[1, inf\) or a non-empty sequence of them. Got"),
        (2.5, TypeError, r"k must be an int in \[1, inf\) or a sequence of them. Got 2.5 instead."),
        ([2.5], TypeError, "k must be an int. Got 2.5 instead."),
        (True, TypeError, r"k must be an int in \[1, inf\) or a sequence of them. Got True instead."),
        ("5", TypeError, r"k must be an int in \[1, inf\) or a sequence of them. Got '5' instead."),
    ],
)
@pytest.mark.parametrize("func", [hitrate_at_k, recall_at_k, ndcg_at_k, mean_hit_position])
def test_list_metrics_bad_k(func, k, error, match):
    with pytest.raises(error, match=match):
        func(GOOD_C, GOOD_T, k)


@pytest.mark.parametrize(
    ("cands", "targets", "error", "match"),
    [
        (GOOD_C.drop(columns="rank"), GOOD_T, ValueError,
         r"candidates must have columns \['request_id', 'item_id', 'rank'\]"),
        (GOOD_C, GOOD_T.rename(columns={"item_id": "item"}), ValueError,
         r"targets must have columns .* \(missing \['item_id'\]\)"),
        (GOOD_C.assign(rank=[1.0, 2.0]), GOOD_T, TypeError,
         r"candidates\['rank'\] must be an integer column \(1 = best\). Got dtype float64"),
        (GOOD_C.assign(rank=[0, 1]), GOOD_T, ValueError,
         r"candidates\['rank'\] must be >= 1 \(1 = best\). Got 0 at index 0"),
        (GOOD_C.assign(item_id=[7, 7]), GOOD_T, ValueError,
         (r"candidates must have one row per \(request_id, item_id\). Got duplicate \(request_id=1, item_id=7\) "
          r"at index 0 and 1")),
        (GOOD_C.assign(rank=[2, 2]), GOOD_T, ValueError, r"candidates must have one row per \(request_id, rank\)"),
        (GOOD_C, pd.concat([GOOD_T, GOOD_T]), ValueError,
         r"targets must have one row per \(request_id, item_id\).*drop_duplicates"),
        (GOOD_C, GOOD_T.iloc[:0], ValueError, "targets must have at least one row. Got 0 rows instead."),
        (GOOD_C.assign(item_id=[7.0, np.nan]), GOOD_T, ValueError,
         r"candidates\['item_id'\] must not contain missing values. Got a missing value at index 1"),
        (GOOD_C, GOOD_T.assign(item_id=["8"]), TypeError,
         r"targets\['item_id'\] and candidates\['item_id'\] must have comparable types"),
        (GOOD_C.to_dict(), GOOD_T, TypeError, "candidates must be a pandas DataFrame. Got dict instead."),
    ],
)
def test_list_metrics_bad_frames(cands, targets, error, match):
    with pytest.raises(error, match=match):
        hitrate_at_k(cands, targets, 5)


@pytest.mark.parametrize(
    ("size", "match"),
    [
        (1, r"catalogue_size must be >= the number of distinct items in candidates \(2\). Got 1"),
        (0, r"catalogue_size must be an int in \[1, inf\). Got 0 instead."),
    ],
)
def test_coverage_bad_catalogue(size, match):
    with pytest.raises(ValueError, match=match):
        coverage_at_k(GOOD_C, 5, size)


# --------------------------------------------------------------------------------------
# The score-quality metrics are ltr.metrics' own
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ltr.metrics.__all__)
def test_score_metrics_are_reexported_from_ltr(name):
    assert name in eval.metrics.__all__
    assert getattr(eval.metrics, name) is getattr(ltr.metrics, name)
