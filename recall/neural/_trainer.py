"""The trainer shared by the torch recall models: sampled softmax with logQ correction (seed 001)
plus the cascade levels of seed 000.

It optimises any network exposing

* ``item_vectors(features) -> (n, dim)`` (the item tower; its output is what gets indexed),
* ``query_state(hist_vecs, hist_mask, profile) -> state`` (a tuple of per-query tensors),
* ``score(state, items) -> (B, C)`` where ``items`` is ``(B, C, dim)`` or ``(1, C, dim)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from recall.neural._freq_estimator import StreamingFrequencyEstimator
from recall.neural._progress import Progress
from recall.neural._towers import RecallNet, feature_tensors
from recall.neural._training_data import EXPOSED_LEVEL, PairSamples
from recall.neural._vocab import ItemTable

__all__ = ["TrainConfig", "train_network"]


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


def _gather_vectors(net: RecallNet, table: ItemTable, rows: np.ndarray, id_dropout: float,
                    rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
    """Tower vectors of the distinct valid rows, and an index map (row -> position, -1 pad -> last)."""
    flat = rows.reshape(-1)
    uniq, inverse = np.unique(flat, return_inverse=True)
    valid = uniq >= 0
    vecs = net.item_vectors(feature_tensors(table, uniq[valid], id_dropout, rng))
    vecs = torch.cat([vecs, vecs.new_zeros((1, vecs.shape[1]))])  # padding row
    pos = np.where(valid, np.cumsum(valid) - 1, vecs.shape[0] - 1)
    return vecs, pos[inverse].reshape(rows.shape)


def train_network(net: RecallNet, cfg: TrainConfig, table: ItemTable, data: PairSamples, hist_rows: np.ndarray,
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
    n_batches = math.ceil(n / batch)
    progress = Progress(cfg.epochs * n_batches, cfg.desc, cfg.verbose)
    keys = table.frequency_keys()
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
            estimator.update(keys[pos_rows[idx]], step)
            p_batch = estimator.probability(keys[pos_rows[idx]])
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


def _batch_loss(net: RecallNet, cfg: TrainConfig, state, vecs, w_pos, w_hard, w_samp, pos_rows, hard_levels, sampled,
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


def _flatness_penalty(net: RecallNet, state: tuple[torch.Tensor, ...], pos_vecs: torch.Tensor,
                      eps: float = 0.05) -> torch.Tensor:
    """NANN-style adversarial flatness: the score should barely move under a small worst-case
    perturbation of the item vector, so neighbours in the L2 graph score alike."""
    leaf = pos_vecs.detach().requires_grad_(True)
    base = net.score(state, leaf[:, None])[:, 0]
    grad, = torch.autograd.grad(base.sum(), leaf, retain_graph=False)
    delta = eps * grad.sign() * pos_vecs.detach().norm(dim=1, keepdim=True) / math.sqrt(pos_vecs.shape[1])
    moved = net.score(state, (pos_vecs + delta)[:, None])[:, 0]
    clean = net.score(state, pos_vecs[:, None])[:, 0]
    return ((moved - clean) ** 2).mean()
