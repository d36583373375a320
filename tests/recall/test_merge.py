"""The merger against a per-request reference loop, hand cases, bad input and the CLI."""
from __future__ import annotations

import json
from itertools import product

import numpy as np
import pandas as pd
import pytest

from ltr.artifacts import write_manifest
from recall._fusion import _WEIGHT_GRID, _FusionTable
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
    by_k = learn_weights_by_k(frames, targets, ks=ks)
    assert sorted(by_k) == [5, 20]
    deep = {tuple(w.values()): _fused_hits(frames, targets, 5, w, depth=20) for w in _candidates(["a", "b"])}
    for k in ks:
        got = _fused_hits(frames, targets, k, by_k[k].weights, by_k[k].depth)
        best = max(max(brute[k].values()), max(deep.values()) if k == 5 else 0)
        assert got == best >= single[k]
        assert by_k[k].depth in (k, 20)
    one = learn_weights(frames, targets, ks=ks)
    assert min(_fused_hits(frames, targets, k, one) - single[k] for k in ks) < 0


@pytest.mark.parametrize("n_sources", [2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_per_k_weights_match_brute_force(n_sources, seed):
    """Random lists and targets: the table's hit counts are fuse()'s; with two sources the search
    covers the grid, so each K's hits are the brute-force maximum; with three, at least the best
    single source's and at most that maximum."""
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c"][:n_sources]
    frames = {}
    for name in names:
        parts = []
        for rid in range(25):
            items = rng.choice(60, size=int(rng.integers(0, 30)), replace=False)
            parts.append(pd.DataFrame({"request_id": rid, "item_id": items, "score": 0.0,
                                       "rank": np.arange(1, len(items) + 1), "source": name}))
        frames[name] = pd.concat(parts, ignore_index=True)
    targets = pd.DataFrame({"request_id": rng.integers(0, 25, 40), "item_id": rng.integers(0, 60, 40)})
    targets = targets.drop_duplicates()
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
    by_k = learn_weights_by_k(frames, targets, ks=ks)
    for j, k in enumerate(ks):
        got = _fused_hits(frames, targets, k, by_k[k].weights, by_k[k].depth)
        assert by_k[k].depth in (k, max(ks))
        assert single[j] <= got <= brute[:, :, j].max()
        if n_sources == 2:
            assert got == brute[:, :, j].max()


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
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["format_version"] == 3
    for k in (50, 300, 1200):
        pd.testing.assert_frame_equal(loaded.retrieve(requests, logs, k), learned_merged.retrieve(requests, logs, k))


def test_format_version_2_still_loads(learned_merged, contract_world, tmp_path):
    """A version-2 directory (one learned weight set, no per-K sets) loads and uses that set at every K."""
    logs, _, requests = contract_world
    root = tmp_path / "m"
    learned_merged.save(root)
    meta = json.loads((root / "manifest.json").read_text())["metadata"]
    del meta["learned_by_k"]
    meta["learned"] = {"itemcf": 1.0, "hot": 0.5}
    (root / "manifest.json").unlink()
    write_manifest(root, "recall.merged", 2, meta)
    loaded = MergedRecall.load(root)
    assert loaded.weights_by_k_ is None and loaded.depth_by_k_ is None
    assert loaded.weights_ == {"itemcf": 1.0, "hot": 0.5}
    for k in (50, 1500):
        frames = {n: s.retrieve(requests, logs, k) for n, s in loaded.sources_.items()}
        pd.testing.assert_frame_equal(loaded.retrieve(requests, logs, k), fuse(frames, k, loaded.weights_))
