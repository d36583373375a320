"""The NIP scoring network in numpy, with its item side computed once per catalogue item.

A search round scores a few hundred (query, item) pairs; through torch that is a dozen small
operator calls whose fixed cost dominates one request's latency. :class:`PreparedNIPScorer`
copies the trained weights (a read-only snapshot of :class:`recall.neural._nip.NIPNet`) and
precomputes what depends on the item alone:

* the attention query of every item, ``wq(v) / sqrt(dim)``;
* the item block of the first MLP layer, ``w_item(v)`` (the first ``Linear`` over
  ``[interest, profile, v, interest * v]`` splits into one product per input block);

kept beside ``v`` in one row per item, so a round gathers those rows once and runs only the
attention over the request's history, the interest and cross blocks and the rest of the MLP,
in float32 like the network. Scores agree
with ``NIPNet.score`` to float32 rounding (the summation order of a matrix product may differ).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from recall.neural._popularity import RecentClicks
from recall.neural._query_grid import query_grid

__all__ = ["NIPQueryState", "PreparedNIPScorer"]

#: ``popularity(item_rows) -> (C, n_windows)``: one query's popularity features of item rows.
Popularity = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class NIPQueryState:
    """Per-query attention keys, values, key mask bias and profile block of the first layer.

    ``keys``, ``values`` are ``(B, L + 1, dim)`` (the empty-history slot first), ``mask_bias``
    is ``(B, L + 1)`` with 0 on real slots and -inf on padding, ``qpart`` ``(B, h1)`` holds
    ``w_profile(profile) + w_interest.bias``. With a popularity input, ``ts`` ``(B,)`` holds the
    request times and ``recent`` the click counts the pairs' features are read from (only for
    the items a search scores); both None without one.
    """

    keys: np.ndarray
    values: np.ndarray
    mask_bias: np.ndarray
    qpart: np.ndarray
    ts: np.ndarray | None = None
    recent: RecentClicks | None = None


class PreparedNIPScorer:
    """NIP scores of (query, item) pairs in numpy, item side precomputed.

    Parameters
    ----------
    net : torch.nn.Module
        A trained ``NIPNet`` (its state dict is read; the module is not kept).
    item_vectors : ndarray of float32, shape (n_items, dim)
        The item tower's output for the catalogue (the indexed vectors).
    """

    def __init__(self, net: nn.Module, item_vectors: np.ndarray) -> None:
        sd = {name: t.detach().cpu().numpy().astype(np.float32) for name, t in net.state_dict().items()}
        vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        dim = vectors.shape[1]
        self.vectors = vectors
        self.dim = dim
        # One row per item, [attention query | vector | w_item(vector)]: one gather per round.
        self.item_rows = np.concatenate([(vectors @ sd["wq.weight"].T) / np.float32(math.sqrt(dim)), vectors,
                                         vectors @ sd["w_item.weight"].T], axis=1)
        self.wk_t = np.ascontiguousarray(sd["wk.weight"].T)
        self.wv_t = np.ascontiguousarray(sd["wv.weight"].T)
        self.wv_b = sd["wv.bias"]
        self.null_key = sd["null_key"]
        self.null_value = sd["null_value"]
        self.w_interest_t = np.ascontiguousarray(sd["w_interest.weight"].T)
        self.b_interest = sd["w_interest.bias"]
        self.w_cross_t = np.ascontiguousarray(sd["w_cross.weight"].T)
        self.w_popularity_t = (np.ascontiguousarray(sd["w_popularity.weight"].T)
                               if "w_popularity.weight" in sd else None)
        n_profiles = sum(1 for name in sd if name.startswith("profile.embs."))
        self.profile_tables = [sd[f"profile.embs.{j}.weight"] for j in range(n_profiles)]
        self.w_profile_t = np.ascontiguousarray(sd["w_profile.weight"].T) if "w_profile.weight" in sd else None
        # The head is ReLU, Linear, ReLU, Linear, ...: its Linear layers in order.
        layers = sorted(int(name.split(".")[1]) for name in sd if name.startswith("head.") and name.endswith(".weight"))
        self.head = [(np.ascontiguousarray(sd[f"head.{i}.weight"].T), sd[f"head.{i}.bias"]) for i in layers]

    def query_state(self, hist: np.ndarray, profiles: np.ndarray,
                    popularity: tuple[np.ndarray, RecentClicks] | None = None) -> NIPQueryState:
        """State of B queries from their history rows ``(B, L)`` (-1 = padding) and profile codes
        (and, for a network with a popularity input, the request times ``(B,)`` and the click
        counts, :class:`recall.neural._popularity.RecentClicks`).

        Mirrors ``NIPNet.query_state``: padding slots are masked out of the attention.
        """
        if (popularity is None) != (self.w_popularity_t is None):
            raise ValueError("popularity must be given exactly when the network has a popularity input. "
                             f"Got {'None' if popularity is None else 'features'} instead.")
        hist = np.asarray(hist, dtype=np.int64)
        n = hist.shape[0]
        hv = self.vectors[np.maximum(hist, 0)]
        keys = np.empty((n, hist.shape[1] + 1, self.wk_t.shape[1]), dtype=np.float32)
        values = np.empty((n, hist.shape[1] + 1, self.wv_t.shape[1]), dtype=np.float32)
        keys[:, 0] = self.null_key
        values[:, 0] = self.null_value
        keys[:, 1:] = hv @ self.wk_t
        values[:, 1:] = hv @ self.wv_t + self.wv_b
        mask_bias = np.zeros((n, hist.shape[1] + 1), dtype=np.float32)
        mask_bias[:, 1:][hist < 0] = -np.inf
        if self.w_profile_t is not None:
            codes = np.asarray(profiles, dtype=np.int64)
            emb = np.concatenate([table[codes[:, j]] for j, table in enumerate(self.profile_tables)], axis=1)
            qpart = emb @ self.w_profile_t
        else:
            qpart = np.zeros((n, self.b_interest.shape[0]), dtype=np.float32)
        ts, recent = (None, None) if popularity is None else popularity
        return NIPQueryState(keys, values, mask_bias, qpart + self.b_interest,
                             None if ts is None else np.asarray(ts, dtype=np.int64), recent)

    def score_grid(self, state: NIPQueryState, queries: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """Scores ``(Q, C)`` of item rows ``grid`` ``(Q, C)`` for the state rows ``queries`` ``(Q,)``."""
        keys, values = state.keys[queries], state.values[queries]
        rows, d = self.item_rows[grid], self.dim
        logits = np.matmul(rows[..., :d], keys.transpose(0, 2, 1))
        logits += state.mask_bias[queries][:, None, :]
        logits -= logits.max(axis=2, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=2, keepdims=True)
        interest = np.matmul(logits, values)
        h = interest @ self.w_interest_t
        h += (interest * rows[..., d:2 * d]) @ self.w_cross_t
        h += rows[..., 2 * d:]
        h += state.qpart[queries][:, None, :]
        if state.recent is not None and state.ts is not None and self.w_popularity_t is not None:
            h += state.recent.features(state.ts[queries][:, None], grid) @ self.w_popularity_t
        for weight_t, bias in self.head:
            np.maximum(h, 0, out=h)
            h = h @ weight_t
            h += bias
        return h[..., 0]

    def one_query(self, state: NIPQueryState, query: int) -> tuple[np.ndarray, np.ndarray, Popularity | None]:
        """What :meth:`score_one` needs of state row ``query``, computed once per search.

        ``keys_t`` ``(dim, L')``: the keys of the real history slots only (padding dropped rather
        than masked). ``table`` ``(L', dim + h1)``: each slot's value beside its share of the
        first layer, ``w_interest(value) + qpart``; attention weights sum to 1, so one product
        ``weights @ table`` gives the interest and its first-layer block with the profile. The
        third part gives the popularity features ``(C, n_windows)`` of item rows at the query's
        time (None without a popularity input).
        """
        real = state.mask_bias[query] == 0
        values = state.values[query][real]
        table = np.concatenate([values, values @ self.w_interest_t + state.qpart[query]], axis=1)
        popularity = None
        if state.recent is not None and state.ts is not None:
            popularity = functools.partial(state.recent.features, state.ts[query])
        return np.ascontiguousarray(state.keys[query][real].T), table, popularity

    def score_one(self, prepared: tuple[np.ndarray, np.ndarray, Popularity | None], items: np.ndarray) -> np.ndarray:
        """Scores ``(C,)`` of item rows ``items`` for one query prepared by :meth:`one_query`."""
        keys_t, table, popularity = prepared
        rows, d = self.item_rows[items], self.dim
        weights = rows[:, :d] @ keys_t
        weights -= weights.max(axis=1, keepdims=True)
        np.exp(weights, out=weights)
        weights /= weights.sum(axis=1, keepdims=True)
        mixed = weights @ table
        h = mixed[:, d:]
        h += (mixed[:, :d] * rows[:, d:2 * d]) @ self.w_cross_t
        h += rows[:, 2 * d:]
        if popularity is not None and self.w_popularity_t is not None:
            h += popularity(items) @ self.w_popularity_t
        for weight_t, bias in self.head:
            np.maximum(h, 0, out=h)
            h = h @ weight_t
            h += bias
        return h[:, 0]

    def score_fn(self, state: NIPQueryState, chunk: int = 16384) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``score_fn(query_index, item_rows)`` over pairs for graph/exact search (the search seam).

        Pairs of one query (every round of a one-request search) go through :meth:`score_one`;
        pairs of several queries are laid out as a (queries x items) grid padded with item 0, so
        each query's keys are used once for all its items (:meth:`score_grid`).
        """

        prepared: dict[int, tuple[np.ndarray, np.ndarray, Popularity | None]] = {}

        def score(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
            if queries.shape[0] and (queries == queries[0]).all():
                query = int(queries[0])
                if query not in prepared:
                    prepared[query] = self.one_query(state, query)
                return np.concatenate([self.score_one(prepared[query], items[s:s + chunk])
                                       for s in range(0, items.shape[0], chunk)])
            out = np.empty(queries.shape[0], dtype=np.float32)
            for s in range(0, queries.shape[0], chunk):
                q, rows = queries[s:s + chunk], items[s:s + chunk]
                uniq, inverse, slot, grid = query_grid(q, rows)
                out[s:s + chunk] = self.score_grid(state, uniq, grid)[inverse, slot]
            return out

        return score
