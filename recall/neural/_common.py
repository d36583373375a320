"""Shared machinery of the torch recall models: feature encoding, towers, the trainer.

The trainer optimises a sampled softmax with logQ correction (seed 001) plus the cascade
levels of seed 000 for any network exposing

* ``item_vectors(features) -> (n, dim)`` (the item tower; its output is what gets indexed),
* ``query_state(hist_vecs, hist_mask, profile) -> state`` (a tuple of per-query tensors),
* ``score(state, items) -> (B, C)`` where ``items`` is ``(B, C, dim)`` or ``(1, C, dim)``.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ltr.logs import Logs
from recall.base import recent_events
from recall.neural._freq_estimator import StreamingFrequencyEstimator
from recall.neural._training_data import EXPOSED_LEVEL, PairSamples, click_history_events

_NA = "<na>"
_PRICE_BINS = 8
_PROFILE_DIM = 8


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}. Got {value!r} instead.")
    return int(value)


def _check_float(value, name: str, low: float, low_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a float. Got {value!r} instead.")
    value = float(value)
    if not math.isfinite(value) or value < low or (low_open and value == low):
        raise ValueError(f"{name} must be a float {'>' if low_open else '>='} {low}. Got {value!r} instead.")
    return value


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run a block with ``threads`` torch threads (0 = leave torch's setting), restoring it after."""
    if threads <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Progress:
    """A dependency-free progress line on stderr (silent unless ``verbose``)."""

    def __init__(self, total: int, desc: str, verbose: bool) -> None:
        self.total, self.desc, self.verbose = max(int(total), 1), desc, verbose
        self.done, self.start, self.last = 0, time.monotonic(), 0.0

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        now = time.monotonic()
        if not self.verbose or (now - self.last < 0.2 and self.done < self.total):
            return
        self.last = now
        width = 24
        filled = int(width * self.done / self.total)
        sys.stderr.write(f"\r{self.desc} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                         f"{now - self.start:.1f}s {note}")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _strings(values) -> np.ndarray:
    return pd.Series(values).astype("string").fillna(_NA).to_numpy(dtype=object)


def _encode(values, vocab: list[str]) -> np.ndarray:
    """Codes 1..len(vocab) for known values, 0 for unknown."""
    return (pd.Index(vocab, dtype=object).get_indexer(_strings(values)) + 1).astype(np.int64)


def _vocab(values, max_size: int = 1000) -> list[str]:
    counts = pd.Series(_strings(values)).value_counts(sort=False)
    counts = counts.iloc[np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))]
    return sorted(str(v) for v in counts.index[:max_size])


@dataclass(frozen=True, eq=False)
class ItemTable:
    """The catalogue (``logs.items``) encoded for the item tower; row i is ``item_ids[i]``."""

    item_ids: np.ndarray
    id_codes: np.ndarray
    categories: np.ndarray
    cities: np.ndarray
    prices: np.ndarray
    dense: np.ndarray

    @property
    def n(self) -> int:
        return int(self.item_ids.shape[0])

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 for ids outside the catalogue (and for -1 padding)."""
        ids = np.asarray(item_ids, dtype=np.int64)
        pos = np.searchsorted(self.item_ids, ids)
        pos = np.clip(pos, 0, max(self.n - 1, 0))
        found = (self.n > 0) & (self.item_ids[pos] == ids) if self.n else np.zeros(ids.shape, bool)
        return np.where(found, pos, -1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"item_ids": self.item_ids, "id_codes": self.id_codes, "categories": self.categories,
                "cities": self.cities, "prices": self.prices, "dense": self.dense}


def item_vocab(logs: Logs, train_item_ids: np.ndarray) -> dict:
    """Vocabularies of the item features, learned from the catalogue and training items."""
    items = logs.items
    if items is None or len(items) == 0:
        raise ValueError("logs must have an items table with at least one item. Got none instead.")
    vocab = {"category": _vocab(items["category"]),
             "city": _vocab(items["city"]) if "city" in items.columns else [],
             "id": np.unique(np.asarray(train_item_ids, dtype=np.int64)).tolist()}
    edges: list[float] = []
    if "price" in items.columns:
        price = np.log1p(np.clip(pd.to_numeric(items["price"], errors="coerce").to_numpy(dtype=np.float64), 0, None))
        price = price[np.isfinite(price)]
        if price.size:
            edges = np.unique(np.quantile(price, np.linspace(0, 1, _PRICE_BINS + 1)[1:-1])).tolist()
    vocab["price_edges"] = edges
    dense_dim = 0
    if "embedding" in items.columns and len(items):
        first = items["embedding"].iloc[0]
        dense_dim = len(first) if first is not None and hasattr(first, "__len__") else 0
    vocab["dense_dim"] = int(dense_dim)
    return vocab


def encode_items(logs: Logs, vocab: dict) -> ItemTable:
    """Encode the catalogue with learned vocabularies (unknown values map to code 0)."""
    items = logs.items.drop_duplicates("item_id").sort_values("item_id", kind="stable")
    ids = items["item_id"].to_numpy(dtype=np.int64)
    id_vocab = np.asarray(vocab["id"], dtype=np.int64)
    pos = np.clip(np.searchsorted(id_vocab, ids), 0, max(id_vocab.size - 1, 0))
    id_codes = np.where((id_vocab.size > 0) & (id_vocab[pos] == ids) if id_vocab.size else False, pos + 1, 0)
    cities = _encode(items["city"], vocab["city"]) if "city" in items.columns else np.zeros(len(ids), np.int64)
    prices = np.zeros(len(ids), dtype=np.int64)
    if "price" in items.columns:
        price = np.log1p(np.clip(pd.to_numeric(items["price"], errors="coerce").to_numpy(dtype=np.float64), 0, None))
        prices = np.where(np.isfinite(price), np.searchsorted(np.asarray(vocab["price_edges"]), price) + 1, 0)
    dim = int(vocab["dense_dim"])
    dense = np.zeros((len(ids), dim), dtype=np.float32)
    if dim:
        column = items["embedding"].to_numpy(dtype=object)
        ok = np.array([v is not None and hasattr(v, "__len__") and len(v) == dim for v in column])
        if ok.any():
            dense[ok] = np.stack([np.asarray(v, dtype=np.float32) for v in column[ok]])
        dense[~np.isfinite(dense)] = 0.0
    return ItemTable(ids, id_codes.astype(np.int64), _encode(items["category"], vocab["category"]),
                     cities.astype(np.int64), prices.astype(np.int64), dense)


def user_vocab(logs: Logs) -> dict[str, list[str]]:
    """Vocabulary of each profile column of the users table (all treated as categorical)."""
    users = logs.users
    if users is None:
        return {}
    return {col: _vocab(users[col]) for col in users.columns if col != "user_id"}


def encode_profiles(logs: Logs, vocab: dict[str, list[str]], user_ids: np.ndarray) -> np.ndarray:
    """Profile codes (n, n_columns) of ``user_ids``; unknown users and values get 0."""
    user_ids = np.asarray(user_ids)
    out = np.zeros((user_ids.shape[0], len(vocab)), dtype=np.int64)
    users = logs.users
    if users is None or not vocab:
        return out
    users = users.drop_duplicates("user_id")
    row = pd.Index(users["user_id"].to_numpy()).get_indexer(user_ids)
    for j, (col, words) in enumerate(vocab.items()):
        if col in users.columns:
            codes = np.r_[_encode(users[col], words), 0]
            out[:, j] = codes[row]
    return out


def histories(logs: Logs, table: ItemTable, user_ids: np.ndarray, ts: np.ndarray, max_len: int) -> np.ndarray:
    """Catalogue rows of each query's last ``max_len`` clicks strictly before ``ts`` (-1 padded)."""
    events, owner = click_history_events(logs)
    frame = pd.DataFrame({"user_id": np.asarray(user_ids), "ts": np.asarray(ts, dtype=np.int64)})
    items, _ = recent_events(events, owner, frame, max_len)
    return table.rows(items)


class ItemTower(nn.Module):
    """Item id (with an "unknown" slot 0), category, city, price bucket, dense embedding -> vector."""

    def __init__(self, n_ids: int, n_categories: int, n_cities: int, n_prices: int, dense_dim: int,
                 dim: int, hidden: int) -> None:
        super().__init__()
        self.id_emb = nn.Embedding(n_ids + 1, dim)
        self.cat_emb = nn.Embedding(n_categories + 1, dim)
        self.city_emb = nn.Embedding(n_cities + 1, _PROFILE_DIM)
        self.price_emb = nn.Embedding(n_prices + 1, _PROFILE_DIM)
        self.dense = nn.Linear(dense_dim, dim) if dense_dim else None
        width = 2 * dim + 2 * _PROFILE_DIM + (dim if dense_dim else 0)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        for emb in (self.id_emb, self.cat_emb, self.city_emb, self.price_emb):
            nn.init.normal_(emb.weight, std=0.1)

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [self.id_emb(feats["id_codes"]), self.cat_emb(feats["categories"]),
                 self.city_emb(feats["cities"]), self.price_emb(feats["prices"])]
        if self.dense is not None:
            parts.append(self.dense(feats["dense"]))
        return self.mlp(torch.cat(parts, dim=-1))


class ProfileEmbedding(nn.Module):
    """Concatenated embeddings of the profile columns (code 0 = unknown)."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.embs = nn.ModuleList(nn.Embedding(s + 1, _PROFILE_DIM) for s in sizes)
        self.dim = _PROFILE_DIM * len(sizes)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        if not len(self.embs):
            return codes.new_zeros((codes.shape[0], 0), dtype=torch.float32)
        return torch.cat([emb(codes[:, j]) for j, emb in enumerate(self.embs)], dim=-1)


def feature_tensors(table: ItemTable, rows: np.ndarray, id_dropout: float = 0.0,
                    rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
    """Tower inputs of catalogue ``rows``; ``id_dropout`` hides ids so unseen items learn a fallback."""
    id_codes = table.id_codes[rows]
    if id_dropout > 0 and rng is not None:
        id_codes = np.where(rng.random(rows.shape[0]) < id_dropout, 0, id_codes)
    return {"id_codes": torch.from_numpy(id_codes), "categories": torch.from_numpy(table.categories[rows]),
            "cities": torch.from_numpy(table.cities[rows]), "prices": torch.from_numpy(table.prices[rows]),
            "dense": torch.from_numpy(np.ascontiguousarray(table.dense[rows]))}


@torch.no_grad()
def all_item_vectors(net: nn.Module, table: ItemTable, batch: int = 65536) -> np.ndarray:
    """Item tower output for the whole catalogue, float32 (n_items, dim)."""
    net.eval()
    out = [net.item_vectors(feature_tensors(table, np.arange(s, min(s + batch, table.n))))
           for s in range(0, table.n, batch)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 0), np.float32)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the torch recall models."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    temperature: float
    n_popular: int
    n_uniform: int
    in_batch: bool
    cascade_weight: float
    id_dropout: float
    flatness: float
    seed: int
    verbose: bool
    desc: str


def _gather_vectors(net, table: ItemTable, rows: np.ndarray, id_dropout: float, rng) -> tuple[torch.Tensor, np.ndarray]:
    """Tower vectors of the distinct valid rows, and an index map (row -> position, -1 pad -> last)."""
    flat = rows.reshape(-1)
    uniq, inverse = np.unique(flat, return_inverse=True)
    valid = uniq >= 0
    vecs = net.item_vectors(feature_tensors(table, uniq[valid], id_dropout, rng))
    vecs = torch.cat([vecs, vecs.new_zeros((1, vecs.shape[1]))])  # padding row
    pos = np.where(valid, np.cumsum(valid) - 1, vecs.shape[0] - 1)
    return vecs, pos[inverse].reshape(rows.shape)


def train_network(net: nn.Module, cfg: TrainConfig, table: ItemTable, data: PairSamples, hist_rows: np.ndarray,
                  profiles: np.ndarray, pop_counts: np.ndarray) -> list[float]:
    """Optimise ``net`` on ``data``; returns the mean loss of each epoch.

    Per positive the softmax candidates are: the positive, the other positives of the batch
    (in-batch negatives, accidental hits of the same item masked), ``n_popular`` + ``n_uniform``
    shared sampled items (accidental hits masked) and the positive's hard negatives. Logits
    are divided by ``temperature``; in-batch logits then lose ``log p`` of the streaming
    frequency estimate and sampled logits ``log`` of their expected count under the sampling
    mixture (logQ correction). Cascade terms add, per hard negative, a softmax of it against
    the lower levels of its chain: exposed-not-clicked against random items, ranker segment
    s against segments > s and random items.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_items = table.n
    pos_rows = table.rows(data.item_id)
    keep = pos_rows >= 0
    pos_rows, hist_rows, profiles = pos_rows[keep], hist_rows[keep], profiles[keep]
    hard_rows = table.rows(data.hard_items[keep])
    hard_levels = np.where(hard_rows >= 0, data.hard_levels[keep], -1).astype(np.int64)
    weights = data.weight[keep]
    n = pos_rows.shape[0]
    if n == 0:
        raise ValueError("training positives must include catalogue items. Got none in the items table instead.")
    pop = np.power(pop_counts.astype(np.float64), 0.75) + 1e-3
    pop /= pop.sum()
    batch = min(cfg.batch_size, n)
    distinct_per_batch = max(1.0, min(batch, np.unique(pos_rows).size))
    estimator = StreamingFrequencyEstimator(
        n_buckets=max(1009, 4 * n_items + 1), n_hashes=2, alpha=0.05, seed=cfg.seed,
        # Start every item at the uniform rate so rarely seen items are not treated as frequent.
        init_gap=max(1.0, np.unique(pos_rows).size / distinct_per_batch))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_batches = int(math.ceil(n / batch))
    progress = Progress(cfg.epochs * n_batches, cfg.desc, cfg.verbose)
    n_sampled = cfg.n_popular + cfg.n_uniform
    losses, step = [], 0
    net.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(n)
        total = 0.0
        for b in range(n_batches):
            idx = order[b * batch:(b + 1) * batch]
            step += 1
            sampled = np.concatenate([rng.choice(n_items, cfg.n_popular, p=pop),
                                      rng.integers(0, n_items, cfg.n_uniform)]).astype(np.int64)
            q_sampled = cfg.n_popular * pop[sampled] + cfg.n_uniform / n_items
            estimator.update(table.item_ids[pos_rows[idx]], step)
            p_batch = estimator.probability(table.item_ids[pos_rows[idx]])
            rows = np.concatenate([hist_rows[idx].reshape(-1), pos_rows[idx], hard_rows[idx].reshape(-1), sampled])
            vecs, where = _gather_vectors(net, table, rows, cfg.id_dropout, rng)
            B, L, H = idx.shape[0], hist_rows.shape[1], hard_rows.shape[1]
            w_hist = where[:B * L].reshape(B, L)
            w_pos = where[B * L:B * L + B]
            w_hard = where[B * L + B:B * L + B + B * H].reshape(B, H)
            w_samp = where[B * L + B + B * H:]
            state = net.query_state(vecs[torch.from_numpy(w_hist)], torch.from_numpy(hist_rows[idx] >= 0),
                                    torch.from_numpy(profiles[idx]))
            loss = _batch_loss(net, cfg, state, vecs, w_pos, w_hard, w_samp, pos_rows[idx], hard_levels[idx],
                               sampled, p_batch, q_sampled, torch.from_numpy(weights[idx]))
            if cfg.flatness > 0:
                loss = loss + cfg.flatness * _flatness_penalty(net, state, vecs[torch.from_numpy(w_pos)])
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = float(loss.detach())
            total += value * B
            progress.update(1, f"loss {value:.3f}")
        losses.append(total / n)
    net.eval()
    return losses


def _batch_loss(net, cfg: TrainConfig, state, vecs, w_pos, w_hard, w_samp, pos_rows, hard_levels, sampled,
                p_batch, q_sampled, weights) -> torch.Tensor:
    B = w_pos.shape[0]
    neg_inf = torch.tensor(-torch.inf)
    pos_vecs = vecs[torch.from_numpy(w_pos)]
    diag = torch.eye(B, dtype=torch.bool)
    if cfg.in_batch:
        inb = net.score(state, pos_vecs[None]) / cfg.temperature - torch.from_numpy(np.log(p_batch)).float()[None]
        hit = torch.from_numpy(pos_rows[:, None] == pos_rows[None, :]) & ~diag
        inb = inb.masked_fill(hit, neg_inf)
        pos_logit = inb.diagonal()
        rand = inb.masked_fill(diag, neg_inf)
    else:
        own = net.score(state, pos_vecs[:, None]) / cfg.temperature
        pos_logit = own[:, 0] - torch.from_numpy(np.log(p_batch)).float()
        rand = pos_logit.new_full((B, 0), -torch.inf)
    if sampled.size:
        samp = net.score(state, vecs[torch.from_numpy(w_samp)][None]) / cfg.temperature
        samp = samp - torch.from_numpy(np.log(q_sampled)).float()[None]
        samp = samp.masked_fill(torch.from_numpy(sampled[None, :] == pos_rows[:, None]), neg_inf)
        rand = torch.cat([rand, samp], dim=1)
    levels = torch.from_numpy(hard_levels)
    valid = levels >= 0
    if hard_levels.shape[1]:
        hard = (net.score(state, vecs[torch.from_numpy(w_hard)]) / cfg.temperature).masked_fill(~valid, neg_inf)
    else:
        hard = pos_logit.new_zeros((B, 0))
    lse_rand = torch.logsumexp(torch.cat([rand, pos_logit.new_full((B, 1), -torch.inf)], dim=1), dim=1)
    lse_all = torch.logsumexp(torch.cat([pos_logit[:, None], rand, hard], dim=1), dim=1)
    loss = (weights * (lse_all - pos_logit)).sum() / weights.sum()
    if hard_levels.shape[1] and cfg.cascade_weight > 0 and bool(valid.any()):
        chain_b = levels > EXPOSED_LEVEL
        # lower[b, j, k]: hard item k sits below hard item j in j's chain.
        lower = (chain_b[:, :, None] & chain_b[:, None, :] & (levels[:, None, :] > levels[:, :, None])
                 & valid[:, None, :])
        below = hard[:, None, :].expand(-1, hard.shape[1], -1).masked_fill(~lower, neg_inf)
        lse = torch.logsumexp(torch.cat([hard[:, :, None], lse_rand[:, None, None].expand(-1, hard.shape[1], 1),
                                         below], dim=2), dim=2)
        terms = torch.where(valid, lse - hard, torch.zeros_like(hard))
        loss = loss + cfg.cascade_weight * terms.sum() / valid.sum()
    return loss


def _flatness_penalty(net, state, pos_vecs: torch.Tensor, eps: float = 0.05) -> torch.Tensor:
    """NANN-style adversarial flatness: the score should barely move under a small worst-case
    perturbation of the item vector, so neighbours in the L2 graph score alike."""
    leaf = pos_vecs.detach().requires_grad_(True)
    base = net.score(state, leaf[:, None])[:, 0]
    grad, = torch.autograd.grad(base.sum(), leaf, retain_graph=False)
    delta = eps * grad.sign() * pos_vecs.detach().norm(dim=1, keepdim=True) / math.sqrt(pos_vecs.shape[1])
    moved = net.score(state, (pos_vecs + delta)[:, None])[:, 0]
    clean = net.score(state, pos_vecs[:, None])[:, 0]
    return ((moved - clean) ** 2).mean()


# ----------------------------------------------------------------------------------------
# The recall-source plumbing shared by NIPRecall and TwoTowerRecall.

FORMAT_VERSION = 1
_FILES = {"model": "model.pt", "index": "index.bin", "items": "items.npz", "params": "params.json"}


class TorchRecallBase:
    """Fit / save / load shared by the torch recall sources (mixed into ``RecallSource``).

    Subclasses set ``kind`` and ``_param_names`` and implement ``_make_net(sizes)`` and
    ``_after_fit()`` (index building / graph parsing for retrieval).
    """

    _param_names: tuple[str, ...] = ()

    def get_params(self) -> dict:
        """Constructor parameters (scikit-learn style)."""
        return {name: getattr(self, name) for name in self._param_names}

    def _validate_params(self) -> None:
        for name in ("dim", "history_len", "epochs", "batch_size", "M", "ef_construction", "ef_search"):
            _check_int(getattr(self, name), name, 1)
        for name in ("n_popular", "n_uniform", "n_exposed", "n_per_segment", "max_per_category", "threads", "seed"):
            _check_int(getattr(self, name), name, 0)
        for name in ("lr", "temperature", "order_weight"):
            _check_float(getattr(self, name), name, 0.0)
        for name in ("weight_decay", "cascade_weight", "flatness"):
            _check_float(getattr(self, name), name, 0.0, low_open=False)
        if not 0.0 <= float(self.id_dropout) < 1.0:
            raise ValueError(f"id_dropout must be a float in [0, 1). Got {self.id_dropout!r} instead.")
        hidden = tuple(self.hidden)
        if not hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty tuple of ints >= 1. Got {self.hidden!r} instead.")
        if not self.in_batch and self.n_popular + self.n_uniform == 0:
            raise ValueError("n_popular + n_uniform must be >= 1 when in_batch is False (no negatives left). "
                             f"Got {self.n_popular} + {self.n_uniform} instead.")

    def _sizes(self) -> dict:
        iv, uv = self.item_vocab_, self.user_vocab_
        return {"n_ids": len(iv["id"]), "n_categories": len(iv["category"]), "n_cities": len(iv["city"]),
                "n_prices": len(iv["price_edges"]) + 1, "dense_dim": int(iv["dense_dim"]),
                "profile_sizes": [len(v) for v in uv.values()]}

    def fit(self, logs: Logs, train_end_day: int):
        """Train on days <= ``train_end_day`` and index every catalogue item's vector.

        Returns
        -------
        self
        """
        from recall.neural._training_data import build_training_samples

        self._validate_params()
        data = build_training_samples(logs, train_end_day, order_weight=self.order_weight,
                                      n_exposed=self.n_exposed, n_per_segment=self.n_per_segment,
                                      cascade=self.cascade, seed=self.seed)
        self.item_vocab_ = item_vocab(logs, data.item_id)
        self.user_vocab_ = user_vocab(logs)
        table = encode_items(logs, self.item_vocab_)
        hist = histories(logs, table, data.user_id, data.ts, self.history_len)
        profiles = encode_profiles(logs, self.user_vocab_, data.user_id)
        rows = table.rows(data.item_id)
        pop_counts = np.bincount(rows[rows >= 0], minlength=table.n).astype(np.float64)
        cfg = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                          weight_decay=self.weight_decay, temperature=self.temperature,
                          n_popular=self.n_popular, n_uniform=self.n_uniform, in_batch=self.in_batch,
                          cascade_weight=self.cascade_weight, id_dropout=self.id_dropout,
                          flatness=self.flatness, seed=self.seed, verbose=self.verbose, desc=self.kind)
        with torch_threads(self.threads):
            torch.manual_seed(self.seed)
            net = self._make_net(self._sizes())
            self.losses_ = train_network(net, cfg, table, data, hist, profiles, pop_counts)
            self.item_vectors_ = all_item_vectors(net, table)
        self.net_ = net
        self.item_table_ = table
        self.train_end_day_ = int(train_end_day)
        self.n_train_positives_ = len(data)
        self._build_index()
        return self

    def _build_index(self) -> None:
        from recall.hnsw._graph import build_index

        self.index_ = build_index(self.item_vectors_, np.arange(self.item_table_.n), M=self.M,
                                  ef_construction=self.ef_construction, seed=self.seed)

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError(f"{type(self).__name__} must be fitted (fit or load) before use.")

    @torch.no_grad()
    def _query_states(self, requests, logs: Logs) -> tuple:
        """Per-request query state tensors (history strictly before each request's ts)."""
        missing = [c for c in ("request_id", "user_id", "ts") if c not in requests.columns]
        if missing:
            raise ValueError(f"requests must have columns request_id, user_id, ts. Missing {missing}.")
        table = self.item_table_
        hist = histories(logs, table, requests["user_id"].to_numpy(), requests["ts"].to_numpy(dtype=np.int64),
                         self.history_len)
        profiles = encode_profiles(logs, self.user_vocab_, requests["user_id"].to_numpy())
        vecs = torch.from_numpy(np.vstack([self.item_vectors_, np.zeros((1, self.item_vectors_.shape[1]), np.float32)]))
        where = np.where(hist >= 0, hist, table.n)
        return self.net_.query_state(vecs[torch.from_numpy(where)], torch.from_numpy(hist >= 0),
                                     torch.from_numpy(profiles))

    def _score_fn(self, state: tuple, chunk: int = 16384):
        """``score_fn(query_index, item_rows)`` over pairs, in chunks, for graph/exact search."""
        vecs = torch.from_numpy(self.item_vectors_)
        net = self.net_

        @torch.no_grad()
        def score(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
            out = np.empty(queries.shape[0], dtype=np.float32)
            for s in range(0, queries.shape[0], chunk):
                q = torch.from_numpy(queries[s:s + chunk])
                part = tuple(t[q] for t in state)
                out[s:s + chunk] = net.score(part, vecs[torch.from_numpy(items[s:s + chunk])][:, None])[:, 0].numpy()
            return out

        return score

    def _check_k(self, k) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an int >= 1. Got {k!r} instead.")
        return int(k)

    def save(self, directory) -> None:
        """Write ``model.pt`` (state_dict), ``index.bin`` (hnswlib), ``items.npz``, ``params.json``
        and the manifest (kind ``recall.<kind>``)."""
        import json
        from pathlib import Path

        from ltr.artifacts import write_manifest
        from recall.hnsw._graph import save as save_index

        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        for name in _FILES.values():
            (root / name).unlink(missing_ok=True)
        torch.save(self.net_.state_dict(), root / _FILES["model"])
        save_index(self.index_, root / _FILES["index"])
        arrays = self.item_table_.arrays()
        arrays["vectors"] = self.item_vectors_
        arrays["id_vocab"] = np.asarray(self.item_vocab_["id"], dtype=np.int64)
        np.savez(root / _FILES["items"], **arrays)
        item_vocab_json = {k: v for k, v in self.item_vocab_.items() if k != "id"}
        params = {"params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()},
                  "item_vocab": item_vocab_json, "user_vocab": [[k, v] for k, v in self.user_vocab_.items()],
                  "losses": self.losses_, "train_end_day": self.train_end_day_,
                  "n_train_positives": self.n_train_positives_}
        (root / _FILES["params"]).write_text(json.dumps(params, indent=1, sort_keys=True) + "\n")
        write_manifest(root, f"recall.{self.kind}", FORMAT_VERSION,
                       {"train_end_day": self.train_end_day_, "n_items": self.item_table_.n,
                        "dim": int(self.item_vectors_.shape[1]), "space": "l2", "M": self.M,
                        "ef_construction": self.ef_construction, "files": _FILES})

    @classmethod
    def load(cls, directory):
        """Load a directory written by :meth:`save`, verifying every file's checksum.

        Raises
        ------
        ltr.artifacts.ArtifactError
            Wrong kind, newer format, missing or tampered files.
        """
        import json
        from pathlib import Path

        import hnswlib

        from ltr.artifacts import ArtifactError, read_manifest

        root = Path(directory)
        read_manifest(root, f"recall.{cls.kind}", FORMAT_VERSION)
        try:
            meta = json.loads((root / _FILES["params"]).read_text())
            params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["params"].items()}
            obj = cls(**params)
            with np.load(root / _FILES["items"], allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            obj.item_vocab_ = dict(meta["item_vocab"], id=arrays["id_vocab"].tolist())
            obj.user_vocab_ = {str(k): list(v) for k, v in meta["user_vocab"]}
            obj.item_table_ = ItemTable(arrays["item_ids"], arrays["id_codes"], arrays["categories"],
                                        arrays["cities"], arrays["prices"], arrays["dense"])
            obj.item_vectors_ = arrays["vectors"]
            obj.losses_ = list(meta["losses"])
            obj.train_end_day_ = int(meta["train_end_day"])
            obj.n_train_positives_ = int(meta["n_train_positives"])
            net = obj._make_net(obj._sizes())
            net.load_state_dict(torch.load(root / _FILES["model"], weights_only=True))
            net.eval()
            obj.net_ = net
            index = hnswlib.Index(space="l2", dim=int(obj.item_vectors_.shape[1]))
            index.load_index(str(root / _FILES["index"]), max_elements=obj.item_table_.n)
            obj.index_ = index
        except (KeyError, ValueError, RuntimeError, TypeError, OSError) as exc:
            raise ArtifactError(f"{root} could not be loaded as recall.{cls.kind}: {exc}") from None
        obj._after_load(root / _FILES["index"])
        return obj

    def _after_load(self, index_path) -> None:
        """Hook for subclasses that need more than the hnswlib index (e.g. the parsed graph)."""
