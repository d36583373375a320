"""Tests of the NIP recall source: scorer, graph search vs exact, artifacts, bad input."""
from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch
from threadpoolctl import ThreadpoolController

from ltr.logs import day_index, events_with_users, join_samples
from ltr.simulate import simulate_world
from recall import base
from recall._catalogue import catalogue_ids
from recall.base import validate_candidates
from recall.neural._nip import NIPRecall

# The scorer without its popularity input (tests/recall/test_nip_popularity.py tests that input
# against its own references); refit is covered there too.
SMALL = dict(epochs=1, threads=1, seed=0, popularity_windows=())


@pytest.fixture(scope="module")
def model(nip_world):
    logs, end, _ = nip_world
    return NIPRecall(**SMALL).fit(logs, end)


def _reference_score(net, hist_vecs: np.ndarray, profile_codes: np.ndarray, v: np.ndarray) -> float:
    """One pair, by hand from the state dict: attention with an always-present empty slot, MLP."""
    sd = {k: p.detach().numpy().astype(np.float64) for k, p in net.state_dict().items()}
    keys = [sd["null_key"]] + [sd["wk.weight"] @ h for h in hist_vecs]
    values = [sd["null_value"]] + [sd["wv.weight"] @ h + sd["wv.bias"] for h in hist_vecs]
    q = sd["wq.weight"] @ v / np.sqrt(v.shape[0])
    logits = np.array([q @ k for k in keys])
    att = np.exp(logits - logits.max())
    att /= att.sum()
    interest = sum(a * val for a, val in zip(att, values, strict=True))
    prof = np.concatenate([sd[f"profile.embs.{j}.weight"][c] for j, c in enumerate(profile_codes)])
    h = (sd["w_interest.weight"] @ interest + sd["w_interest.bias"] + sd["w_profile.weight"] @ prof
         + sd["w_item.weight"] @ v + sd["w_cross.weight"] @ (interest * v))
    h = np.maximum(h, 0)
    h = np.maximum(sd["head.1.weight"] @ h + sd["head.1.bias"], 0)
    return float((sd["head.3.weight"] @ h + sd["head.3.bias"])[0])


@pytest.mark.parametrize("n_hist", [0, 1, 4])
def test_scorer_matches_hand_reference(model, n_hist):
    rng = np.random.default_rng(n_hist)
    net = model.net_
    vecs = model.item_vectors_
    hist_rows = rng.choice(len(vecs), n_hist, replace=False)
    hist = np.zeros((1, 4, vecs.shape[1]), np.float32)
    mask = np.zeros((1, 4), bool)
    hist[0, 4 - n_hist:] = vecs[hist_rows]
    mask[0, 4 - n_hist:] = True
    prof = np.array([[1, 2, 1, 0]])[:, : len(model.user_vocab_)]
    items = rng.choice(len(vecs), 6, replace=False)
    with torch.no_grad():
        state = net.query_state(torch.from_numpy(hist), torch.from_numpy(mask), torch.from_numpy(prof))
        got = net.score(state, torch.from_numpy(vecs[items])[None])[0].numpy()
    want = [_reference_score(net, vecs[hist_rows], prof[0], vecs[i].astype(np.float64)) for i in items]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("n_queries", "n_items", "seed"), [(1, 7, 0), (1, 500, 1), (4, 60, 2), (9, 33, 3)])
def test_numpy_scorer_matches_torch_network(model, n_queries, n_items, seed):
    """The prepared numpy scorer (item side precomputed) against the torch network on random
    histories (cold rows included), profiles and pairs in shuffled order."""
    rng = np.random.default_rng(seed)
    vecs = model.item_vectors_
    length = model.history_len
    hist = rng.integers(0, len(vecs), (n_queries, length))
    n_real = rng.integers(0, length + 1, n_queries)
    n_real[0] = 0  # a cold query: the empty-history slot only
    hist[np.arange(length)[None, :] < (length - n_real)[:, None]] = -1
    profiles = np.stack([rng.integers(0, len(v) + 1, n_queries) for v in model.user_vocab_.values()], axis=1)
    queries = rng.permutation(np.repeat(np.arange(n_queries), n_items))
    items = rng.integers(0, len(vecs), queries.size)
    with torch.no_grad():
        padded = torch.from_numpy(vecs)[torch.from_numpy(np.maximum(hist, 0))]
        state = model.net_.query_state(padded, torch.from_numpy(hist >= 0), torch.from_numpy(profiles))
        want = model.net_.score(tuple(t[torch.from_numpy(queries)] for t in state),
                                torch.from_numpy(vecs[items])[:, None, :])[:, 0].numpy()
    scorer = model.scorer_
    got = scorer.score_fn(scorer.query_state(hist, profiles))(queries, items)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for q in range(n_queries):  # same top items per query
        mine = queries == q
        top = min(10, int(mine.sum()))
        np.testing.assert_array_equal(np.argsort(-got[mine], kind="stable")[:top],
                                      np.argsort(-want[mine], kind="stable")[:top])


def test_contract_and_graph_recall(model, nip_world):
    logs, _, requests = nip_world
    graph = validate_candidates(model.retrieve(requests, logs, 50))
    exact = model.retrieve(requests, logs, 50, exact=True)
    assert list(graph.columns) == base.CANDIDATE_COLUMNS
    assert (graph["source"] == "nip").all()
    assert graph.groupby("request_id").size().max() == 50
    assert (graph.groupby("request_id")["score"].diff().fillna(0) <= 1e-6).all()
    assert set(graph["item_id"]) <= set(logs.items["item_id"])
    recall = len(graph.merge(exact, on=["request_id", "item_id"])) / len(exact)
    assert recall >= 0.95  # stated threshold for a 400-item catalogue, ef_search=200


def test_exact_equals_brute_force(model, nip_world):
    logs, _, requests = nip_world
    few = requests.iloc[:5]
    result = model.search(few, logs, 20, exact=True)
    state = model._query_states(few, logs)
    score = model._score_fn(state)
    n = model.item_table_.n
    for q in range(len(few)):
        s = score(np.full(n, q, dtype=np.int64), np.arange(n, dtype=np.int64))
        order = np.lexsort((np.arange(n), -s))[:20]
        np.testing.assert_array_equal(result.labels[q], order)
    assert (result.n_scored == n).all()


def test_batch_equals_single(model, nip_world):
    logs, _, requests = nip_world
    batch = model.retrieve(requests.iloc[:6], logs, 30)
    singles = pd.concat([model.retrieve(requests.iloc[[i]], logs, 30) for i in range(6)], ignore_index=True)
    pd.testing.assert_frame_equal(batch, singles, check_exact=False, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("windows", [(), (2, 24)])
def test_no_leakage_from_future_clicks(model, nip_world, windows):
    """Shuffling the items of the clicks at or after a request's time changes nothing for it
    (with the popularity input too: its counts stop before the request's hour)."""
    logs, end, requests = nip_world
    source = model if not windows else NIPRecall(**dict(SMALL, popularity_windows=windows)).fit(logs, end)
    for i in range(0, 40, 4):
        one = requests.iloc[[i]]
        late = logs.clicks["ts"].to_numpy() >= one["ts"].iloc[0]
        assert late.any()
        shuffled = logs.clicks.copy()
        shuffled.loc[late, "item_id"] = np.random.default_rng(i).permutation(shuffled.loc[late, "item_id"].to_numpy())
        pd.testing.assert_frame_equal(source.retrieve(one, logs, 20),
                                      source.retrieve(one, dataclasses.replace(logs, clicks=shuffled), 20))


def test_cold_and_unknown_users(model, nip_world):
    logs, _, requests = nip_world
    cold = pd.DataFrame({"request_id": [1, 2], "user_id": [10**9, requests["user_id"].iloc[0]],
                         "ts": [0, 0]})  # nobody has clicks before ts 0
    out = model.retrieve(cold, logs, 15)
    assert out.groupby("request_id").size().tolist() == [15, 15]
    assert np.isfinite(out["score"]).all()


@pytest.mark.parametrize("exact", [False, True])
def test_k_larger_than_catalogue(model, nip_world, exact):
    logs, _, requests = nip_world
    few = requests.iloc[:3]
    out = model.retrieve(few, logs, 10_000, exact=exact)
    # The catalogue: the items table plus the item the clicks show without a row in it.
    catalogue = set(catalogue_ids(logs))
    assert len(catalogue) == logs.items["item_id"].nunique() + 1
    clicks = events_with_users(logs, "clicks")
    for request in few.itertuples():
        mine = clicks.loc[(clicks["user_id"] == request.user_id) & (clicks["ts"] < request.ts), "item_id"]
        got = out.loc[out["request_id"] == request.request_id, "item_id"]
        # The whole catalogue but the items the user clicked before (exclude_seen="clicks").
        assert set(got) == catalogue - set(mine) and len(got) == len(set(got))


def test_unseen_items_get_vectors_and_items_without_a_row_have_missing_attributes(model, nip_world):
    from recall.neural._towers import feature_tensors

    logs, _, requests = nip_world
    table = model.item_table_
    rows = table.rows(np.array([10**6, 10**6 + 1]))
    assert (rows >= 0).all() and (table.id_codes[rows] == 0).all()
    # their vector is the tower's fallback: "unknown id" slot + their own attributes
    src = table.rows(logs.items["item_id"].to_numpy()[:2])
    feats = feature_tensors(table, src)
    feats["id_codes"] = torch.zeros_like(feats["id_codes"])
    with torch.no_grad():
        want = model.net_.item_vectors(feats).numpy()
    np.testing.assert_allclose(model.item_vectors_[rows], want, rtol=1e-5, atol=1e-6)
    out = model.retrieve(requests.iloc[:3], logs, 10_000, exact=True)
    assert {10**6, 10**6 + 1} <= set(out["item_id"])
    # An item of the logs the items table lacks is an item whose attributes are all missing:
    # in the catalogue (last), with the unknown id slot, the missing level "<na>" of category
    # and city, no price bucket, and retrieved.
    row = model.item_table_.rows(np.array([5 * 10**6]))[0]
    assert row == table.n - 1
    vocab = model.item_vocab_
    missing = (vocab["category"].index("<na>") + 1, vocab["city"].index("<na>") + 1)
    assert (table.id_codes[row], table.categories[row], table.cities[row], table.prices[row]) == (0, *missing, 0)
    assert (table.categories[:-1] != missing[0]).all()
    assert 5 * 10**6 in set(out["item_id"])
    assert model.item_table_.rows(np.array([7 * 10**6]))[0] == -1


def test_save_load_roundtrip(model, nip_world, tmp_path):
    """Tampered files are refused by the contract tests (every file of every source)."""
    logs, _, requests = nip_world
    model.save(tmp_path / "nip")
    loaded = base.load(tmp_path / "nip")
    assert isinstance(loaded, NIPRecall)
    pd.testing.assert_frame_equal(model.retrieve(requests, logs, 40), loaded.retrieve(requests, logs, 40))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"dim": 0}, r"dim must be an int in \[1, inf\)\. Got 0 instead\."),
    ({"temperature": 0.0}, r"temperature must be a float in \(0\.0, inf\)\. Got 0\.0 instead\."),
    ({"id_dropout": 1.0}, r"id_dropout must be a float in \[0, 1\)"),
    ({"hidden": ()}, "hidden must be a non-empty tuple"),
    ({"in_batch": False, "n_popular": 0, "n_uniform": 0}, "n_popular \\+ n_uniform must be >= 1"),
    ({"exhaustive_upper": -1}, r"exhaustive_upper must be an int in \[0, inf\)\. Got -1 instead\."),
])
def test_bad_params(nip_world, kwargs, match):
    logs, end, _ = nip_world
    with pytest.raises(ValueError, match=match):
        NIPRecall(**kwargs).fit(logs, end)


def test_bad_k_and_unfitted(model, nip_world):
    logs, _, requests = nip_world
    with pytest.raises(ValueError, match=r"k must be an int in \[1, inf\)"):
        model.retrieve(requests, logs, 0)
    with pytest.raises(ValueError, match="is not fitted yet"):
        NIPRecall().retrieve(requests, logs, 5)


class _TableNet:
    """A scorer reading a fixed (query, item) table; item "vectors" carry the item index."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = torch.from_numpy(table)

    def score(self, state, items):
        q = state[0]
        idx = items[..., 0].long().expand(q.shape[0], -1)
        return self.table[q[:, None], idx]


def _slow_loss(T, pos, hard, levels, sampled, p, q, q_pos, w, tau, in_batch, cw, n_popular):
    """The objective of recall.neural._trainer, one positive at a time: a logQ-corrected
    softmax against random negatives, then the cascade on raw scores."""
    def lse(values):
        values = np.asarray(values, dtype=np.float64)
        return values.max() + np.log(np.exp(values - values.max()).sum())

    B = len(pos)
    pos_terms, top_terms, casc = [], [], []
    for b in range(B):
        raw = T[b, pos[b]] / tau
        own = raw - np.log(p[b] if in_batch else q_pos[b])
        others = [j for j in range(B) if in_batch and j != b and pos[j] != pos[b]]
        samples = [(s, qs) for s, qs in zip(sampled, q, strict=True) if s != pos[b]]
        rand = [T[b, pos[j]] / tau - np.log(p[j]) for j in others] + [T[b, s] / tau - np.log(qs) for s, qs in samples]
        uniform_raw = [T[b, s] / tau for s in sampled[n_popular:] if s != pos[b]]
        hard_b = [(T[b, h] / tau, lv) for h, lv in zip(hard[b], levels[b], strict=True) if lv >= 0]
        pos_terms.append(w[b] * (lse([own, *rand]) - own))
        top_terms.append(w[b] * (lse([raw] + [x for x, _ in hard_b]) - raw))
        for x, lv in hard_b:
            lower = [y for y, lk in hard_b if lv > 0 and lk > lv]
            casc.append(lse([x, *uniform_raw, *lower]) - x)
    loss = sum(pos_terms) / sum(w)
    if casc:
        loss += cw * (sum(top_terms) / sum(w) + np.mean(casc))
    return loss


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("in_batch", [True, False])
def test_batch_loss_matches_slow_reference(seed, in_batch):
    from recall.neural._trainer import TrainConfig, _batch_loss

    rng = np.random.default_rng(seed)
    n_items, B, H = 12, 5, 4
    T = rng.normal(size=(B, n_items + 1)).astype(np.float32)
    pos = rng.integers(0, 4, B)  # few distinct items: accidental in-batch hits happen
    sampled = rng.integers(0, n_items, 6)
    hard = rng.integers(4, n_items, (B, H))
    levels = rng.integers(-1, 4, (B, H))
    hard = np.where(levels >= 0, hard, n_items)  # padding points at the pad row
    p = rng.uniform(0.05, 0.9, B)
    q = rng.uniform(0.05, 2.0, sampled.size)
    q_pos = rng.uniform(0.05, 2.0, B)
    w = rng.choice([1.0, 3.0], B).astype(np.float32)
    cfg = TrainConfig(epochs=1, batch_size=B, lr=0.1, weight_decay=0.0, temperature=0.7, n_popular=3,
                      n_uniform=3, in_batch=in_batch, cascade_weight=0.5, id_dropout=0.0, flatness=0.0,
                      seed=0, verbose=False, desc="")
    vecs = torch.arange(n_items + 1, dtype=torch.float32)[:, None]
    state = (torch.arange(B),)
    got = _batch_loss(_TableNet(T), cfg, state, vecs, pos, hard, sampled, pos, levels.astype(np.int64), sampled,
                      p, q, q_pos, torch.from_numpy(w))
    want = _slow_loss(T.astype(np.float64), pos, hard, levels, sampled, p, q, q_pos, w, 0.7, in_batch, 0.5,
                      cfg.n_popular)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


@pytest.mark.parametrize("exact", [False, True])
def test_empty_requests(model, nip_world, exact):
    logs, _, requests = nip_world
    out = model.retrieve(requests.iloc[:0], logs, 10, exact=exact)
    assert list(out.columns) == base.CANDIDATE_COLUMNS and len(out) == 0


def test_category_cap(nip_world, model):
    logs, _, requests = nip_world
    capped = NIPRecall(**dict(model.get_params(), max_per_category=3))
    for name, value in vars(model).items():  # the fitted state, without refitting
        if name.endswith("_"):
            setattr(capped, name, value)
    capped.searcher_ = capped._searcher()  # the search prepared for the cap
    for exact in (False, True):
        out = capped.retrieve(requests.iloc[:5], logs, 20, exact=exact)
        cats = model.item_table_.categories[model.item_table_.rows(out["item_id"].to_numpy())]
        assert pd.Series(cats).groupby(out["request_id"].to_numpy()).value_counts().max() <= 3


def test_cascade_learns_click_over_exposed_over_random():
    """On a world whose exposures are a draw from the ranker's top 40 (so exposed and ranked
    items differ) and whose clicks follow affinity strongly (so the order click > exposed >
    random is there to learn), the cascade-trained scorer ranks, on the held-out day (about
    500 clicks, 2,600 exposed-not-clicked), clicked items above exposed-not-clicked ones and
    those above random catalogue items (mean raw score)."""
    logs = simulate_world(users=600, items=400, days=6, candidates_per_request=100, exposure_depth=40,
                          affinity=4.0, seed=4).logs
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    end = int(days.max()) - 1
    model = NIPRecall(**dict(SMALL, epochs=3, val_k=0, cascade=True)).fit(logs, end)
    held = logs.requests.loc[days > end].reset_index(drop=True)
    samples = join_samples(logs).samples
    samples = samples.loc[samples["request_id"].isin(held["request_id"])]
    score = model._score_fn(model._query_states(held, logs))
    row_of = pd.Series(np.arange(len(held)), index=held["request_id"])

    def mean_score(frame):
        rows = row_of.reindex(frame["request_id"]).to_numpy()
        return float(score(rows, model.item_table_.rows(frame["item_id"].to_numpy())).mean())

    rng = np.random.default_rng(0)
    random_items = pd.DataFrame({"request_id": held["request_id"].repeat(5).to_numpy(),
                                 "item_id": rng.choice(logs.items["item_id"].to_numpy(), 5 * len(held))})
    clicked = mean_score(samples.loc[samples["click"] > 0])
    exposed = mean_score(samples.loc[samples["click"] == 0])
    assert clicked > exposed > mean_score(random_items)


def test_training_curve_early_stopping_and_manifest(nip_world, tmp_path):
    """One point per epoch (loss, lr, validation hitrate); the learning rate decays; training
    stops after ``patience`` epochs without a better validation hitrate; the curve is saved."""
    logs, end, _ = nip_world
    model = NIPRecall(epochs=4, patience=1, val_k=50, refit=False, threads=1, seed=0).fit(logs, end)
    curve = model.curve_
    assert 1 <= len(curve) <= 4 and all({"epoch", "loss", "lr", "val_hitrate"} <= set(p) for p in curve)
    assert all(a["lr"] > b["lr"] for a, b in itertools.pairwise(curve))
    best = max(range(len(curve)), key=lambda i: (curve[i]["val_hitrate"], -i))
    assert len(curve) == 4 or len(curve) == best + 2  # stopped one epoch after the best
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["metadata"]["curve"] == curve
    assert NIPRecall.load(tmp_path / "m").curve_ == curve


@pytest.mark.parametrize("exact", [False, True])
def test_search_thread_settings_are_scoped(model, nip_world, monkeypatch, exact):
    """Graph search scores with numpy's BLAS on one thread; after any search the caller's BLAS and
    torch thread settings are as they were."""
    logs, _, requests = nip_world
    inside: list[list[int]] = []
    make_score = model.scorer_.score_fn

    def recording(state, chunk=16384):
        score = make_score(state, chunk)

        def wrapped(queries, items):
            blas = ThreadpoolController().select(user_api="blas").lib_controllers
            inside.append(sorted({lib.num_threads for lib in blas}))
            return score(queries, items)

        return wrapped

    monkeypatch.setattr(model.scorer_, "score_fn", recording)
    before = [(lib.internal_api, lib.num_threads) for lib in ThreadpoolController().lib_controllers]
    torch_before = torch.get_num_threads()
    model.search(requests.iloc[:3], logs, 10, exact=exact)
    assert [(lib.internal_api, lib.num_threads) for lib in ThreadpoolController().lib_controllers] == before
    assert torch.get_num_threads() == torch_before
    assert inside and all(threads == [1] for threads in inside)  # threads=1 for exact search too
