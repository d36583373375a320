"""The trainer shared by the torch recall models: sampled softmax with logQ correction (seed 001)
plus the cascade levels of seed 000.

It optimises any network exposing

* ``item_vectors(features) -> (n, dim)`` (the item tower; its output is what gets indexed),
* ``query_state(hist_vecs, hist_mask, profile) -> state`` (a tuple of per-query tensors),
* ``score(state, items) -> (B, C)`` where ``items`` is ``(B, C, dim)`` or ``(1, C, dim)``.
"""
from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from recall.neural._freq_estimator import StreamingFrequencyEstimator
from recall.neural._popularity import RecentClicks, score_inputs
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
    lr_schedule: str = "cosine"
    patience: int = 2


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
                  profiles: np.ndarray, pop_counts: np.ndarray, validate: Callable[[], float] | None = None,
                  popularity: RecentClicks | None = None) -> list[dict[str, float]]:
    """Optimise ``net`` on ``data``; returns the training curve, one dict per epoch
    (``epoch``, mean ``loss``, ``lr`` at its end and, with ``validate``, ``val_hitrate``).

    The learning rate follows ``cfg.lr_schedule`` step by step. With ``validate`` (a callable
    returning a validation hitrate, computed with the network in eval mode) training stops
    once ``cfg.patience`` epochs bring no better value, and the best epoch's weights are kept.

    Per positive the softmax candidates are: the positive, the other positives of the batch
    (in-batch negatives, accidental hits of the same item masked), ``n_popular`` + ``n_uniform``
    shared sampled items (accidental hits masked) and the positive's hard negatives. Logits
    are divided by ``temperature``; in-batch logits then lose ``log p`` of the streaming
    frequency estimate and sampled logits ``log`` of their expected count under the sampling
    mixture (logQ correction); the positive's logit is corrected the same way (its own
    ``p`` in the in-batch softmax, its expected sampled count without in-batch negatives), so
    every logit of that softmax carries a consistent correction. The hard negatives are not
    in it: the cascade compares *raw* scores only, a softmax of the positive against its hard
    negatives, and per hard negative a softmax of it against the lower levels of its chain
    (exposed-not-clicked against random items, ranker segment s against segments > s and
    random items), where the random items are the uniformly sampled ones.

    With ``popularity``, every scored (positive's request, item) pair also gets the item's
    point-in-time popularity at the request's time (``net.score(..., popularity=...)``).
    """
    # one piece: every step shares the sampler, the frequency estimator and the optimiser state.
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_items = table.n
    pos_rows = table.rows(data.item_id)
    keep = pos_rows >= 0
    pos_rows, hist_rows, profiles = pos_rows[keep], hist_rows[keep], profiles[keep]
    hard_rows = table.rows(data.hard_items[keep])
    hard_levels = np.where(hard_rows >= 0, data.hard_levels[keep], -1).astype(np.int64)
    weights, req_ts = data.weight[keep], data.ts[keep]
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
    total_steps = cfg.epochs * n_batches
    progress = Progress(total_steps, cfg.desc, cfg.verbose)
    keys = table.frequency_keys()
    curve: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        order = rng.permutation(n)
        total = 0.0
        for b in range(n_batches):
            idx = order[b * batch:(b + 1) * batch]
            step += 1
            for group in opt.param_groups:
                group["lr"] = _learning_rate(cfg, step, total_steps)
            estimator.update(keys[pos_rows[idx]], step)
            sampled = np.concatenate([rng.choice(n_items, cfg.n_popular, p=pop),
                                      rng.integers(0, n_items, cfg.n_uniform)]).astype(np.int64)
            rows = np.concatenate([hist_rows[idx].reshape(-1), pos_rows[idx], hard_rows[idx].reshape(-1), sampled])
            vecs, where = _gather_vectors(net, table, rows, cfg.id_dropout, rng)
            B, L, H = idx.shape[0], hist_rows.shape[1], hard_rows.shape[1]
            w_hist = where[:B * L].reshape(B, L)
            w_pos = where[B * L:B * L + B]
            state = net.query_state(vecs[torch.from_numpy(w_hist)], torch.from_numpy(hist_rows[idx] >= 0),
                                    torch.from_numpy(profiles[idx]))
            extra = score_inputs(popularity, req_ts[idx])
            loss = _batch_loss(net, cfg, state, vecs, w_pos, where[B * L + B:B * L + B + B * H].reshape(B, H),
                               where[B * L + B + B * H:], pos_rows[idx], hard_levels[idx], sampled,
                               estimator.probability(keys[pos_rows[idx]]),
                               cfg.n_popular * pop[sampled] + cfg.n_uniform / n_items,
                               cfg.n_popular * pop[pos_rows[idx]] + cfg.n_uniform / n_items,
                               torch.from_numpy(weights[idx]), extra, hard_rows[idx])
            if cfg.flatness > 0:
                loss = loss + cfg.flatness * _flatness_penalty(net, state, vecs[torch.from_numpy(w_pos)],
                                                               extra(pos_rows[idx][:, None]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * B
            progress.update(1, f"epoch {epoch} loss {float(loss.detach()):.3f}")
        net.eval()
        point = {"epoch": float(epoch), "loss": total / n, "lr": _learning_rate(cfg, step, total_steps)}
        if validate is not None:
            point["val_hitrate"] = float(validate())
            if best is None or point["val_hitrate"] > best[0]:
                best = (point["val_hitrate"], epoch, copy.deepcopy(net.state_dict()))
        curve.append(point)
        if cfg.verbose:
            print(f"{cfg.desc} epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in point.items() if k != "epoch"),
                  file=sys.stderr)
        if best is not None and epoch - best[1] >= cfg.patience:
            break  # no better validation hitrate for `patience` epochs
    if best is not None:
        net.load_state_dict(best[2])  # the epoch with the best validation hitrate
    net.eval()
    return curve


def _learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Cosine decay from ``lr`` to ``lr / 20`` over all planned steps (or constant)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    progress = min(step / max(total_steps, 1), 1.0)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _batch_loss(net: RecallNet, cfg: TrainConfig, state, vecs, w_pos, w_hard, w_samp, pos_rows, hard_levels, sampled,
                p_batch, q_sampled, q_pos, weights, extra=None, hard_rows=None) -> torch.Tensor:
    """Sampled softmax of each positive against the random negatives (logQ-corrected), plus
    the cascade on raw scores (see :func:`train_network`); ``extra(rows)`` gives the scorer's
    other inputs for the catalogue ``rows`` scored (``hard_rows``: the hard negatives' rows)."""
    extra = score_inputs(None, pos_rows) if extra is None else extra
    B = w_pos.shape[0]
    neg_inf = torch.tensor(-torch.inf)
    pos_vecs = vecs[torch.from_numpy(w_pos)]
    diag = torch.eye(B, dtype=torch.bool)
    if cfg.in_batch:
        inb_raw = net.score(state, pos_vecs[None], **extra(pos_rows[None])) / cfg.temperature
        hit = torch.from_numpy(pos_rows[:, None] == pos_rows[None, :]) & ~diag
        inb_raw = inb_raw.masked_fill(hit, neg_inf)
        pos_raw = inb_raw.diagonal()
        # In-batch softmax: every logit, the positive's included, loses log p of its item.
        inb = inb_raw - torch.from_numpy(np.log(p_batch)).float()[None]
        pos_logit = inb.diagonal()
        rand = inb.masked_fill(diag, neg_inf)
    else:
        pos_raw = net.score(state, pos_vecs[:, None], **extra(pos_rows[:, None]))[:, 0] / cfg.temperature
        # Only sampled negatives: the positive is corrected by its own expected count under
        # the same sampling mixture as theirs.
        pos_logit = pos_raw - torch.from_numpy(np.log(q_pos)).float()
        rand = pos_logit.new_full((B, 0), -torch.inf)
    # The cascade's "random" level: the uniformly sampled items only (in-batch and popularity
    # samples are popular items, which an exposed item need not beat).
    uniform_raw = pos_raw.new_full((B, 0), -torch.inf)
    if sampled.size:
        samp_raw = net.score(state, vecs[torch.from_numpy(w_samp)][None], **extra(sampled[None])) / cfg.temperature
        hit = torch.from_numpy(sampled[None, :] == pos_rows[:, None])
        samp_raw = samp_raw.expand(B, -1).masked_fill(hit, neg_inf)
        rand = torch.cat([rand, samp_raw - torch.from_numpy(np.log(q_sampled)).float()[None]], dim=1)
        uniform_raw = samp_raw[:, cfg.n_popular:]
    lse = torch.logsumexp(torch.cat([pos_logit[:, None], rand], dim=1), dim=1)
    loss = (weights * (lse - pos_logit)).sum() / weights.sum()
    levels = torch.from_numpy(hard_levels)
    valid = levels >= 0
    if not hard_levels.shape[1] or cfg.cascade_weight <= 0 or not bool(valid.any()):
        return loss
    hard = (net.score(state, vecs[torch.from_numpy(w_hard)], **extra(hard_rows)) / cfg.temperature
            ).masked_fill(~valid, neg_inf)
    # The cascade compares raw scores only (no logQ on any side): click > every hard negative,
    # and each hard negative > the levels below it in its chain and the random items.
    top = torch.logsumexp(torch.cat([pos_raw[:, None], hard], dim=1), dim=1) - pos_raw
    loss = loss + cfg.cascade_weight * (weights * top).sum() / weights.sum()
    lse_rand = torch.logsumexp(torch.cat([uniform_raw, pos_raw.new_full((B, 1), -torch.inf)], dim=1), dim=1)
    chain_b = levels > EXPOSED_LEVEL
    # lower[b, j, k]: hard item k sits below hard item j in j's chain.
    lower = chain_b[:, :, None] & chain_b[:, None, :] & (levels[:, None, :] > levels[:, :, None]) & valid[:, None, :]
    below = hard[:, None, :].expand(-1, hard.shape[1], -1).masked_fill(~lower, neg_inf)
    lse_j = torch.logsumexp(torch.cat([hard[:, :, None], lse_rand[:, None, None].expand(-1, hard.shape[1], 1),
                                       below], dim=2), dim=2)
    terms = torch.where(valid, lse_j - hard, torch.zeros_like(hard))
    return loss + cfg.cascade_weight * terms.sum() / valid.sum()


def _flatness_penalty(net: RecallNet, state: tuple[torch.Tensor, ...], pos_vecs: torch.Tensor,
                      extra: dict[str, torch.Tensor], eps: float = 0.05) -> torch.Tensor:
    """NANN-style adversarial flatness: the score should barely move under a small worst-case
    perturbation of the item vector, so neighbours in the L2 graph score alike."""
    leaf = pos_vecs.detach().requires_grad_(True)
    base = net.score(state, leaf[:, None], **extra)[:, 0]
    grad, = torch.autograd.grad(base.sum(), leaf, retain_graph=False)
    delta = eps * grad.sign() * pos_vecs.detach().norm(dim=1, keepdim=True) / math.sqrt(pos_vecs.shape[1])
    moved = net.score(state, (pos_vecs + delta)[:, None], **extra)[:, 0]
    clean = net.score(state, pos_vecs[:, None], **extra)[:, 0]
    return ((moved - clean) ** 2).mean()
