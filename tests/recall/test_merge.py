"""The merger against a per-request reference loop, hand cases, bad input and the CLI."""
from __future__ import annotations

import json
from itertools import product

import numpy as np
import pandas as pd
import pytest

from ltr.artifacts import write_manifest
from recall._fusion import _WEIGHT_GRID, MARGIN_Z, FusedAt, MarginTest, _FusionTable
from recall.base import validate_candidates
from recall.merge import MergedRecall, _scale_quotas, fuse, learn_weights, learn_weights_by_k, merge


def reference_merge(frames: dict, quotas: dict, k: int | None) -> pd.DataFrame:
    """The rule of recall.merge, one request at a time."""
    order = list(quotas)
    total = sum(quotas.values()) if k is None else k
    requests = sorted(set().union(*(set(f["request_id"]) for f in frames.values())))
    rows = []
    for r in requests:
        lists = {s: frames[s].loc[frames[s]["request_id"] == r].sort_values("rank")["item_id"].tolist() for s in order}
        taken, seen = [], set()
        carry = 0
        for s in order:
            allowed, got = quotas[s] + carry, 0
            for item in lists[s]:
                if got >= allowed:
                    break
                if item not in seen:
                    taken.append((item, s))
                    seen.add(item)
                    got += 1
            carry = max(allowed - got, 0)
        for s in order:
            for item in lists[s]:
                if len(taken) >= total:
                    break
                if item not in seen:
                    taken.append((item, s))
                    seen.add(item)
        by_source = {s: [it for it, src in taken if src == s] for s in order}
        slots = []
        for pos, s in enumerate(order):
            n = len(by_source[s])
            slots += [((j + 0.5) / n, pos, item) for j, item in enumerate(by_source[s])]
        for rank, (_, _, item) in enumerate(sorted(slots)[:total], start=1):
            label = "+".join(s for s in order if item in lists[s])
            rows.append((r, item, 1.0 / rank, rank, label))
    return pd.DataFrame(rows, columns=["request_id", "item_id", "score", "rank", "source"])


def random_source(rng, name, n_requests=12, pool=15):
    rows = []
    for r in range(n_requests):
        if rng.random() < 0.15:
            continue  # this source has nothing for the request
        n = int(rng.integers(0, pool))
        items = rng.choice(pool, n, replace=False)
        rows += [(r, int(i), float(n - j), j + 1) for j, i in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["request_id", "item_id", "score", "rank"])
    frame["source"] = name
    return frame


@pytest.mark.parametrize("seed", range(12))
def test_matches_reference(seed):
    rng = np.random.default_rng(seed)
    names = ["itemcf", "hot", "nip"][: int(rng.integers(1, 4))]
    frames = {n: random_source(rng, n) for n in names}
    quotas = {n: int(rng.integers(0, 6)) for n in rng.permutation(names)}
    if sum(quotas.values()) == 0:
        quotas[names[0]] = 3
    k = None if seed % 3 == 0 else int(rng.integers(1, 25))
    got = merge(frames, quotas, k=k)
    ref = reference_merge(frames, quotas, k)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), ref, check_dtype=False)
    validate_candidates(got)
    assert (got.groupby("request_id").size() <= (k or sum(quotas.values()))).all()
    assert (got.groupby("request_id")["score"].diff().dropna() < 0).all()


def _frame(name, pairs):
    return pd.DataFrame({"request_id": [r for r, _ in pairs], "item_id": [i for _, i in pairs],
                         "score": np.linspace(1, 0, len(pairs)),
                         "rank": pd.Series([i for _, i in pairs]).groupby([r for r, _ in pairs]).cumcount() + 1,
                         "source": name})


def test_hand_case():
    a = _frame("itemcf", [(1, 10), (1, 11), (1, 12), (2, 10)])
    b = _frame("hot", [(1, 11), (1, 20), (2, 30), (2, 31), (2, 32)])
    out = merge([a, b], {"itemcf": 2, "hot": 2})
    # Request 1: itemcf takes 10, 11; hot skips 11 and takes 20, one short; the fill pass gives
    # itemcf's 12. Slots: itemcf 10,11,12 at 1/6, 3/6, 5/6, hot 20 at 1/2 (ties to itemcf).
    # Request 2: itemcf has one item, hot gets its slot: 30, 31, 32 at 1/6, 3/6, 5/6; 10 at 1/2.
    assert out["item_id"].tolist() == [10, 11, 20, 12, 30, 10, 31, 32]
    assert out["source"].tolist() == ["itemcf", "itemcf+hot", "hot", "itemcf", "hot", "itemcf", "hot", "hot"]
    assert out["rank"].tolist() == [1, 2, 3, 4, 1, 2, 3, 4]
    np.testing.assert_allclose(out["score"], 1.0 / out["rank"])


def test_k_cuts_and_extends():
    a = _frame("itemcf", [(1, i) for i in range(10)])
    b = _frame("hot", [(1, i) for i in range(5, 15)])
    assert len(merge({"itemcf": a, "hot": b}, {"itemcf": 3, "hot": 3}, k=4)) == 4
    assert len(merge({"itemcf": a, "hot": b}, {"itemcf": 3, "hot": 3}, k=15)) == 15
    assert len(merge({"itemcf": a, "hot": b}, {"itemcf": 3, "hot": 3}, k=100)) == 15
    only = merge({"itemcf": a, "hot": b}, {"itemcf": 0, "hot": 3})
    assert only["item_id"].tolist() == [5, 6, 7]
    assert only["source"].tolist() == ["itemcf+hot"] * 3


def test_scale_quotas():
    assert _scale_quotas({"a": 600, "b": 600}, 50) == {"a": 25, "b": 25}
    assert _scale_quotas({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    assert sum(_scale_quotas({"a": 7, "b": 3, "c": 5}, 101).values()) == 101


def test_bad_input():
    a = _frame("itemcf", [(1, 10), (1, 11)])
    b = _frame("hot", [(1, 11), (1, 20)])
    with pytest.raises(ValueError, match="quotas name an unknown source 'nip'"):
        merge({"itemcf": a, "hot": b}, {"itemcf": 1, "hot": 1, "nip": 3})
    with pytest.raises(ValueError, match=r"quotas must sum to more than 0. Got \{'itemcf': 0, 'hot': 0\}"):
        merge({"itemcf": a, "hot": b}, {"itemcf": 0, "hot": 0})
    dup = pd.concat([a, a.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"candidates of source 'itemcf' has 1 duplicate \(request_id, item_id\)"):
        merge({"itemcf": dup, "hot": b}, {"itemcf": 1, "hot": 1})
    with pytest.raises(ValueError, match=r"Missing \['hot'\]"):
        merge({"itemcf": a, "hot": b}, {"itemcf": 1})
    with pytest.raises(ValueError, match=r"quota of 'hot' must be an int in \[0, inf\)\. Got -1 instead\."):
        merge({"itemcf": a, "hot": b}, {"itemcf": 1, "hot": -1})
    with pytest.raises(ValueError, match=r"k must be an int in \[1, inf\)\. Got 0 instead\."):
        merge({"itemcf": a, "hot": b}, {"itemcf": 1, "hot": 1}, k=0)
    with pytest.raises(ValueError, match="must hold one source"):
        merge([pd.concat([a, b.assign(item_id=[30, 31])])], {"itemcf": 1})


# ----------------------------------------------------------------------------- rank fusion


def _slow_rrf(frames, k, weights, c=60.0):
    rows = []
    for rid in sorted(set().union(*(set(f["request_id"]) for f in frames.values()))):
        score, names = {}, {}
        for name, frame in frames.items():
            for item, rank in frame.loc[frame["request_id"] == rid, ["item_id", "rank"]].itertuples(index=False):
                score[item] = score.get(item, 0.0) + weights.get(name, 1.0) / (c + rank)
                names.setdefault(item, []).append(name)
        best = sorted(score.items(), key=lambda t: (-t[1], t[0]))[:k]
        rows += [(rid, item, s, r, "+".join(n for n in frames if n in names[item]))
                 for r, (item, s) in enumerate(best, start=1)]
    return pd.DataFrame(rows, columns=["request_id", "item_id", "score", "rank", "source"])


@pytest.mark.parametrize("weights", [{}, {"b": 2.0}, {"a": 0.5, "c": 0.0}])
@pytest.mark.parametrize("k", [1, 4, 30])
def test_fuse_matches_slow_reference(weights, k):
    rng = np.random.default_rng(k)
    frames = {}
    for name in ("a", "b", "c"):
        parts = []
        for rid in range(5):
            items = rng.choice(12, size=rng.integers(0, 8), replace=False)
            parts.append(pd.DataFrame({"request_id": rid, "item_id": items, "score": 0.0,
                                       "rank": np.arange(1, len(items) + 1), "source": name}))
        frames[name] = pd.concat(parts, ignore_index=True)
    got = fuse(frames, k, weights)
    expected = _slow_rrf({n: f for n, f in frames.items() if weights.get(n, 1.0) > 0}, k, weights)
    pd.testing.assert_frame_equal(got[["request_id", "item_id", "rank", "source"]],
                                  expected[["request_id", "item_id", "rank", "source"]], check_dtype=False)
    np.testing.assert_allclose(got["score"].to_numpy(), expected["score"].to_numpy(), rtol=1e-12)


def test_learned_weights_are_at_least_equal_weights():
    """On lists where only source b finds the targets, the learned weights drop or shrink a."""
    rng = np.random.default_rng(0)
    rows_a, rows_b, targets = [], [], []
    for rid in range(40):
        target = int(rng.integers(100, 200))
        a = rng.choice(100, 30, replace=False)
        b = np.r_[rng.choice(100, 7, replace=False) + 300, target, rng.choice(100, 22, replace=False) + 400]
        rows_a.append(pd.DataFrame({"request_id": rid, "item_id": a, "rank": np.arange(1, 31)}))
        rows_b.append(pd.DataFrame({"request_id": rid, "item_id": b, "rank": np.arange(1, 31)}))
        targets.append((rid, target))
    frames = {"a": pd.concat(rows_a), "b": pd.concat(rows_b)}
    targets = pd.DataFrame(targets, columns=["request_id", "item_id"])
    weights = learn_weights(frames, targets, ks=(10,))
    assert weights["a"] == 1.0 and weights["b"] > 1.0
    fused = fuse(frames, 10, weights)
    assert targets.merge(fused, on=["request_id", "item_id"]).shape[0] == len(targets)


def test_merged_rrf_of_three_sources_needs_no_quotas(contract_world):
    """RRF ignores the quotas: a quota tuple of the wrong length only matters for method="quota"."""
    logs, train_end, requests = contract_world
    merged = MergedRecall(sources=("itemcf", "hot"), method="rrf", quotas=(1,)).fit(logs, train_end)
    out = merged.retrieve(requests.head(5), logs, 10)
    assert (out.groupby("request_id").size() == 10).all()
    with pytest.raises(ValueError, match=r"quotas must have one int per source \(2\)\. Got \(1,\) instead\."):
        MergedRecall(sources=("itemcf", "hot"), method="quota", quotas=(1,)).fit(logs, train_end)


# ----------------------------------------------------------------------------- weights learned per K


def _fused_hits(frames: dict, targets: pd.DataFrame, k: int, weights: dict, depth: int | None = None) -> int:
    """Targets in the top k of fuse() of the sources' top-``depth`` lists (default k): the
    reference count."""
    depth = k if depth is None else depth
    fused = fuse({n: f.loc[f["rank"] <= depth] for n, f in frames.items()}, k, weights)
    return len(targets.merge(fused[["request_id", "item_id"]], on=["request_id", "item_id"]))


def _candidates(names: list[str]) -> list[dict]:
    """Every weighting the search may return: first source 1, the others on the grid or 1 (the
    start), and each source alone."""
    grid = [{names[0]: 1.0, **dict(zip(names[1:], ws, strict=True))}
            for ws in product(sorted({*_WEIGHT_GRID, 1.0}), repeat=len(names) - 1)]
    return grid + [{n: float(n == alone) for n in names} for alone in names]


def _two_depths_case(n_requests: int = 30) -> tuple[dict, pd.DataFrame]:
    """Source a finds a third of the targets at its ranks 1-2; source b finds the others at its
    ranks 14-20 only: a alone is best at K = 5, b alone at K = 20, and a weighting that keeps
    a's top at K = 5 buries b's depth at K = 20."""
    rng = np.random.default_rng(3)
    parts: dict[str, list] = {"a": [], "b": []}
    targets = []
    for rid in range(n_requests):
        a, b = rng.permutation(1000)[:20], 1000 + rng.permutation(1000)[:20]
        target = int(a[rng.integers(0, 2)]) if rid % 3 == 0 else int(b[rng.integers(13, 20)])
        targets.append((rid, target))
        for name, items in (("a", a), ("b", b)):
            parts[name].append(pd.DataFrame({"request_id": rid, "item_id": items, "score": 0.0,
                                             "rank": np.arange(1, 21), "source": name}))
    return ({n: pd.concat(p, ignore_index=True) for n, p in parts.items()},
            pd.DataFrame(targets, columns=["request_id", "item_id"]))


def test_per_k_weights_beat_every_single_vector():
    frames, targets = _two_depths_case()
    ks = (5, 20)
    brute = {k: {tuple(w.values()): _fused_hits(frames, targets, k, w) for w in _candidates(["a", "b"])}
             for k in ks}
    single = {k: max(_fused_hits(frames, targets, k, {"a": float(s == "a"), "b": float(s == "b")})
                     for s in ("a", "b")) for k in ks}
    assert single == {5: 10, 20: 20}  # a alone at K = 5, b alone at K = 20
    # No one weighting is best at both K: the case needs a set per K.
    assert not any(brute[5][w] == max(brute[5].values()) and brute[20][w] == max(brute[20].values())
                   for w in brute[5])
    by_k = learn_weights_by_k(frames, targets, ks=ks, margin_z=0.0)
    assert sorted(by_k) == [5, 20]
    deep = {tuple(w.values()): _fused_hits(frames, targets, 5, w, depth=20) for w in _candidates(["a", "b"])}
    for k in ks:
        got = _fused_hits(frames, targets, k, by_k[k].weights, by_k[k].depth)
        best = max(max(brute[k].values()), max(deep.values()) if k == 5 else 0)
        assert got == best >= single[k]
        assert by_k[k].depth in (k, 20)
    one = learn_weights(frames, targets, ks=ks)
    assert min(_fused_hits(frames, targets, k, one) - single[k] for k in ks) < 0


def _random_lists(seed: int, n_sources: int, n_requests: int = 25, n_targets: int = 40
                  ) -> tuple[dict, pd.DataFrame]:
    """Random lists of up to 30 of 60 items per source and request, and random targets."""
    rng = np.random.default_rng(seed)
    frames = {}
    for name in ["a", "b", "c"][:n_sources]:
        parts = []
        for rid in range(n_requests):
            items = rng.choice(60, size=int(rng.integers(0, 30)), replace=False)
            parts.append(pd.DataFrame({"request_id": rid, "item_id": items, "score": 0.0,
                                       "rank": np.arange(1, len(items) + 1), "source": name}))
        frames[name] = pd.concat(parts, ignore_index=True)
    targets = pd.DataFrame({"request_id": rng.integers(0, n_requests, n_targets),
                            "item_id": rng.integers(0, 60, n_targets)})
    return frames, targets.drop_duplicates()


@pytest.mark.parametrize("n_sources", [2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_per_k_weights_match_brute_force(n_sources, seed):
    """Random lists and targets: the table's hit counts are fuse()'s; with two sources the search
    covers the grid, so each K's hits are the brute-force maximum; with three, at least the best
    single source's and at most that maximum (no noise margin)."""
    frames, targets = _random_lists(seed, n_sources)
    names = list(frames)
    ks = (3, 8, 20)
    table = _FusionTable(frames, targets, ks)
    candidates = _candidates(names)
    # [weighting, depth (K, then max K), K]
    brute = np.array([[[_fused_hits(frames, targets, k, w, depth) for k in ks] for depth in (None, max(ks))]
                      for w in candidates])
    for w, expected in zip(candidates[:: max(1, len(candidates) // 7)], brute[:: max(1, len(candidates) // 7)],
                           strict=True):
        np.testing.assert_array_equal(table.hits(np.array([w[n] for n in names])), expected)
    single = brute[-n_sources:, 0].max(axis=0)
    by_k = learn_weights_by_k(frames, targets, ks=ks, margin_z=0.0)
    for j, k in enumerate(ks):
        got = _fused_hits(frames, targets, k, by_k[k].weights, by_k[k].depth)
        assert by_k[k].depth in (k, max(ks))
        assert single[j] <= got <= brute[:, :, j].max()
        if n_sources == 2:
            assert got == brute[:, :, j].max()


# ----------------------------------------------------------------------------- the noise margin


def _found(frames: dict, targets: pd.DataFrame, k: int, weights: dict, depth: int) -> set:
    """The targets in the top k of fuse() of the sources' top-``depth`` lists (reference)."""
    fused = fuse({n: f.loc[f["rank"] <= depth] for n, f in frames.items()}, k, weights)
    hit = targets.merge(fused[["request_id", "item_id"]], on=["request_id", "item_id"])
    return set(zip(hit["request_id"], hit["item_id"], strict=True))


def _reference_margin(frames: dict, targets: pd.DataFrame, k: int, searched: FusedAt, margin_z: float) -> FusedAt:
    """The rule at one K, from fuse(): the best single source alone (most targets in its top k,
    ties to the first), the discordant targets b and c of the searched setting against it, and
    the setting kept (the searched one when b - c > margin_z * sqrt(b + c) or margin_z is 0)."""
    names = list(frames)
    alone = [{n: float(n == s) for n in names} for s in names]
    found = [_found(frames, targets, k, w, k) for w in alone]
    best = int(np.argmax([len(f) for f in found]))
    fused = _found(frames, targets, k, searched.weights, searched.depth)
    b, c = len(fused - found[best]), len(found[best] - fused)
    if margin_z == 0 or b - c > margin_z * np.sqrt(b + c):
        return FusedAt(searched.weights, searched.depth, MarginTest("fused", names[best], b, c))
    return FusedAt(alone[best], k, MarginTest("single", names[best], b, c))


@pytest.fixture(scope="module")
def margin_cases() -> list[tuple[dict, pd.DataFrame, dict]]:
    """Random lists and targets, with the search's settings per K (no margin)."""
    cases = []
    for seed, n_sources in product(range(5), (2, 3)):
        frames, targets = _random_lists(seed, n_sources, n_requests=40, n_targets=120)
        cases.append((frames, targets, learn_weights_by_k(frames, targets, ks=(3, 8, 20), margin_z=0.0)))
    return cases


@pytest.mark.parametrize("margin_z", [0.0, 0.5, 1.0, 1.645, 3.0])
def test_margin_matches_reference(margin_cases, margin_z):
    """Random cases: each K's setting is the search's (the grid's best for two sources, see
    test_per_k_weights_match_brute_force) when its McNemar statistic passes the margin, else the
    best single source alone; b and c are counted from fuse()."""
    kept = []
    for seed, (frames, targets, searched) in enumerate(margin_cases):
        ks = (3, 8, 20)
        got = learn_weights_by_k(frames, targets, ks=ks, margin_z=margin_z)
        assert sorted(got) == list(ks)
        for k in ks:
            expected = _reference_margin(frames, targets, k, searched[k], margin_z)
            assert got[k] == expected, (seed, k)
            kept.append(got[k].margin.kept)
    if margin_z == 0:
        assert set(kept) == {"fused"}
    else:  # both outcomes occur: the cases do not pass trivially
        assert {"fused", "single"} <= set(kept), kept


def _gain_case(gain_requests: int) -> tuple[dict, pd.DataFrame]:
    """Ten requests whose target is source a's first item, ``gain_requests`` more whose target is
    source b's first item (every list holds five items of its own): at K = 2 the fusion (1, 1)
    finds every target, a alone ten, b alone ``gain_requests``."""
    parts: dict[str, list] = {"a": [], "b": []}
    targets = []
    for rid in range(10 + gain_requests):
        for offset, name in ((0, "a"), (100, "b")):
            items = 1000 * rid + offset + np.arange(5)
            parts[name].append(pd.DataFrame({"request_id": rid, "item_id": items, "score": 0.0,
                                             "rank": np.arange(1, 6), "source": name}))
        targets.append((rid, 1000 * rid + (0 if rid < 10 else 100)))
    return ({n: pd.concat(p, ignore_index=True) for n, p in parts.items()},
            pd.DataFrame(targets, columns=["request_id", "item_id"]))


@pytest.mark.parametrize(("gain_requests", "margin_z", "expected"), [
    (1, 1.645, FusedAt({"a": 1.0, "b": 0.0}, 2, MarginTest("single", "a", 1, 0))),  # +1 target: noise
    (1, MARGIN_Z, FusedAt({"a": 1.0, "b": 0.0}, 2, MarginTest("single", "a", 1, 0))),  # the default: 1 > 1 fails
    (1, 0.0, FusedAt({"a": 1.0, "b": 1.0}, 2, MarginTest("fused", "a", 1, 0))),  # no margin: as before
    (1, 0.99, FusedAt({"a": 1.0, "b": 1.0}, 2, MarginTest("fused", "a", 1, 0))),  # 1 > 0.99 * sqrt(1)
    (20, 1.645, FusedAt({"a": 1.0, "b": 1.0}, 2, MarginTest("fused", "b", 10, 0))),  # +10 of 20: kept
    (20, 3.0, FusedAt({"a": 1.0, "b": 1.0}, 2, MarginTest("fused", "b", 10, 0))),  # 10 > 3 * sqrt(10)
    (20, 3.2, FusedAt({"a": 0.0, "b": 1.0}, 2, MarginTest("single", "b", 10, 0))),  # 10 < 3.2 * sqrt(10)
])
def test_margin_constructed_cases(gain_requests, margin_z, expected):
    frames, targets = _gain_case(gain_requests)
    got = learn_weights_by_k(frames, targets, ks=(2,), margin_z=margin_z)[2]
    assert got == expected
    assert len(_found(frames, targets, 2, got.weights, got.depth)) == (
        10 + gain_requests if expected.margin.kept == "fused" else max(10, gain_requests))


# What learn_weights_by_k(_random_lists(seed, n_sources), ks=(3, 8, 20)) returned before the margin
# existed (commit f75e3b5; weights of a, b[, c]; depth): margin_z=0 must give the same.
_BEFORE_MARGIN = {
    (2, 0): {3: ((1.0, 1.0), 3), 8: ((1.0, 10.0), 20), 20: ((1.0, 1.0), 20)},
    (2, 1): {3: ((1.0, 1.5), 20), 8: ((1.0, 1.0), 20), 20: ((1.0, 1.0), 20)},
    (2, 2): {3: ((1.0, 1.0), 3), 8: ((1.0, 1.0), 8), 20: ((1.0, 1.5), 20)},
    (3, 0): {3: ((1.0, 4.0, 1.0), 3), 8: ((1.0, 4.0, 1.0), 8), 20: ((1.0, 1.5, 4.0), 20)},
    (3, 1): {3: ((1.0, 0.5, 0.25), 20), 8: ((1.0, 0.1, 10.0), 20), 20: ((1.0, 1.0, 1.0), 20)},
    (3, 2): {3: ((1.0, 0.0, 1.0), 3), 8: ((1.0, 0.0, 0.1), 8), 20: ((1.0, 0.1, 0.75), 20)},
}


@pytest.mark.parametrize("case", sorted(_BEFORE_MARGIN))
def test_margin_zero_is_the_former_behaviour(case):
    n_sources, seed = case
    frames, targets = _random_lists(seed, n_sources)
    got = learn_weights_by_k(frames, targets, ks=(3, 8, 20), margin_z=0)
    assert {k: (tuple(v.weights.values()), v.depth) for k, v in got.items()} == _BEFORE_MARGIN[case]


@pytest.mark.parametrize("margin_z", [-0.5, float("nan"), "1"])
def test_margin_z_is_validated(margin_z, contract_world):
    frames, targets = _gain_case(1)
    with pytest.raises((ValueError, TypeError), match="margin_z must be"):
        learn_weights_by_k(frames, targets, ks=(2,), margin_z=margin_z)
    logs, train_end, _ = contract_world
    with pytest.raises((ValueError, TypeError), match="margin_z must be"):
        MergedRecall(learn_weights=True, margin_z=margin_z).fit(logs, train_end)


# ----------------------------------------------------------------------------- MergedRecall per K


@pytest.fixture(scope="module")
def learned_merged(contract_world):
    logs, train_end, _ = contract_world
    return MergedRecall(sources=("itemcf", "hot"), learn_weights=True).fit(logs, train_end)


@pytest.mark.parametrize(("k", "learned_at"), [(10, 50), (50, 50), (51, 100), (1000, 1200), (1500, 1200)])
def test_retrieve_uses_the_weights_of_the_next_learned_k(learned_merged, contract_world, k, learned_at):
    logs, _, requests = contract_world
    assert sorted(learned_merged.weights_by_k_) == sorted(learned_merged.depth_by_k_) == [50, 100, 200, 400, 800, 1200]
    weights, depth = learned_merged.weights_by_k_[learned_at], learned_merged.depth_by_k_[learned_at]
    assert depth in (learned_at, 1200)
    frames = {n: s.retrieve(requests, logs, max(k, depth)) for n, s in learned_merged.sources_.items()
              if weights[n] > 0}
    expected = fuse(frames, k, {n: weights[n] for n in frames})
    state = {"w": learned_merged.weights_, "k": learned_merged.weights_by_k_, "d": learned_merged.depth_by_k_}
    before = json.dumps(state, sort_keys=True)
    pd.testing.assert_frame_equal(learned_merged.retrieve(requests, logs, k), expected)
    assert json.dumps(state, sort_keys=True) == before


def test_given_weights_hold_for_every_k(contract_world):
    logs, train_end, requests = contract_world
    merged = MergedRecall(sources=("itemcf", "hot"), weights=(1.0, 2.0)).fit(logs, train_end)
    assert merged.weights_ == {"itemcf": 1.0, "hot": 2.0}
    assert merged.weights_by_k_ is None and merged.depth_by_k_ is None
    for k in (10, 300):
        frames = {n: s.retrieve(requests, logs, k) for n, s in merged.sources_.items()}
        pd.testing.assert_frame_equal(merged.retrieve(requests, logs, k), fuse(frames, k, merged.weights_))


def test_save_load_per_k_weights(learned_merged, contract_world, tmp_path):
    logs, _, requests = contract_world
    learned_merged.save(tmp_path / "m")
    loaded = MergedRecall.load(tmp_path / "m")
    assert loaded.weights_by_k_ == learned_merged.weights_by_k_ and loaded.weights_ == learned_merged.weights_
    assert loaded.depth_by_k_ == learned_merged.depth_by_k_
    assert loaded.margin_by_k_ == learned_merged.margin_by_k_ and loaded.margin_z == learned_merged.margin_z == MARGIN_Z
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["format_version"] == 4 and manifest["metadata"]["margin_z"] == MARGIN_Z
    assert manifest["metadata"]["learned_by_k"]["50"]["margin"] == learned_merged.margin_by_k_[50]
    for k in (50, 300, 1200):
        pd.testing.assert_frame_equal(loaded.retrieve(requests, logs, k), learned_merged.retrieve(requests, logs, k))


def test_margin_record_matches_the_settings(learned_merged):
    """Every learned K has a record; where the single source was kept, it is alone at depth K."""
    assert sorted(learned_merged.margin_by_k_) == sorted(learned_merged.weights_by_k_)
    for k, record in learned_merged.margin_by_k_.items():
        assert set(record) == {"kept", "single", "b", "c"} and record["single"] in ("itemcf", "hot")
        assert record["b"] >= 0 and record["c"] >= 0
        fused = record["b"] - record["c"] > MARGIN_Z * np.sqrt(record["b"] + record["c"])
        assert record["kept"] == ("fused" if fused else "single")
        if not fused:
            assert learned_merged.weights_by_k_[k] == {n: float(n == record["single"]) for n in ("itemcf", "hot")}
            assert learned_merged.depth_by_k_[k] == k


def test_format_version_3_still_loads(learned_merged, contract_world, tmp_path):
    """A version-3 directory (per-K settings learned without a margin) loads with margin_z 0 and
    no margin record, and retrieves with its per-K settings."""
    logs, _, requests = contract_world
    root = tmp_path / "m"
    learned_merged.save(root)
    meta = json.loads((root / "manifest.json").read_text())["metadata"]
    del meta["margin_z"]
    for setting in meta["learned_by_k"].values():
        del setting["margin"]
    (root / "manifest.json").unlink()
    write_manifest(root, "recall.merged", 3, meta)
    loaded = MergedRecall.load(root)
    assert loaded.margin_z == 0.0 and loaded.margin_by_k_ is None
    assert loaded.weights_by_k_ == learned_merged.weights_by_k_ and loaded.depth_by_k_ == learned_merged.depth_by_k_
    for k in (50, 300):
        pd.testing.assert_frame_equal(loaded.retrieve(requests, logs, k), learned_merged.retrieve(requests, logs, k))


def test_format_version_2_still_loads(learned_merged, contract_world, tmp_path):
    """A version-2 directory (one learned weight set, no per-K sets) loads and uses that set at every K."""
    logs, _, requests = contract_world
    root = tmp_path / "m"
    learned_merged.save(root)
    meta = json.loads((root / "manifest.json").read_text())["metadata"]
    del meta["learned_by_k"], meta["margin_z"]
    meta["learned"] = {"itemcf": 1.0, "hot": 0.5}
    (root / "manifest.json").unlink()
    write_manifest(root, "recall.merged", 2, meta)
    loaded = MergedRecall.load(root)
    assert loaded.weights_by_k_ is None and loaded.depth_by_k_ is None and loaded.margin_by_k_ is None
    assert loaded.weights_ == {"itemcf": 1.0, "hot": 0.5}
    for k in (50, 1500):
        frames = {n: s.retrieve(requests, logs, k) for n, s in loaded.sources_.items()}
        pd.testing.assert_frame_equal(loaded.retrieve(requests, logs, k), fuse(frames, k, loaded.weights_))
