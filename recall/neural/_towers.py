"""The item tower and profile embeddings shared by the NIP and two-tower networks, and the
interface such a network offers the trainer and the sources (:class:`RecallNet`)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recall.neural._vocab import ItemTable

__all__ = ["ItemTower", "ProfileEmbedding", "RecallNet", "all_item_vectors", "feature_tensors"]

_PROFILE_DIM = 8


class RecallNet(nn.Module):
    """A recall network: an item tower whose output is indexed, a per-query state, and a scorer.

    The trainer (:func:`recall.neural._trainer.train_network`) and the sources only use these
    three methods; the networks implement them.
    """

    def item_vectors(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """Item vectors ``(n, dim)`` of the tower inputs ``feats`` (see :func:`feature_tensors`)."""
        raise NotImplementedError

    def query_state(self, hist: torch.Tensor, mask: torch.Tensor, profile: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-query tensors from history vectors ``(B, L, dim)``, their mask and profile codes."""
        raise NotImplementedError

    def score(self, state: tuple[torch.Tensor, ...], items: torch.Tensor,
              popularity: torch.Tensor | None = None) -> torch.Tensor:
        """Scores ``(B, C)`` of items ``(B or 1, C, dim)`` for the B queries of ``state``
        (``popularity``: the pairs' point-in-time item popularity, for networks that take it)."""
        raise NotImplementedError


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
def all_item_vectors(net: RecallNet, table: ItemTable, batch: int = 65536) -> np.ndarray:
    """Item tower output for the whole catalogue, float32 (n_items, dim)."""
    net.eval()
    out = [net.item_vectors(feature_tensors(table, np.arange(s, min(s + batch, table.n))))
           for s in range(0, table.n, batch)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 0), np.float32)
