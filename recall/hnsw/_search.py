"""Layered beam search over an HNSW graph, scored by an arbitrary model (NANN).

A non-inner-product (NIP) recall model scores a (user, item) pair with a network
and has no user vector, so hnswlib's own L2 search cannot serve it. Following
NANN (alibaba/nann) and seed 000, the graph built on item embeddings is walked
layer by layer with a beam whose nodes are ranked by the model's scores:

* start at the entry point on the top level (with ``exhaustive_upper``, the
  upper levels of at most that many nodes are instead scored whole in one
  round, and the walk starts below them);
* on each upper level, for up to ``rounds_upper`` rounds, expand the best
  unexpanded beam nodes, drop the neighbours this query has already scored,
  score the rest and keep the best ``ef_upper``; go down a level;
* on level 0 do the same with a beam of ``ef0`` (at least ``k``: a smaller ``ef0`` is an
  error, never silently widened) for up to
  ``max_rounds0`` rounds, stopping early once every beam node has been expanded,
  with an optional cap of ``max_per_category`` items per category (diversity
  pruning);
* return the best ``k`` of the final beam.

Many queries advance together: every round gathers the frontier of all queries
of a chunk and scores it with one ``score_fn`` call, which is what keeps a torch
scorer busy. Each query's state evolves only from its own scores, so a batched
search returns exactly what one-query-at-a-time searches return (as long as
``score_fn`` scores a pair the same way whatever else is in the batch).

The scorer seam is ``score_fn(query_index, item_ids) -> scores``: two int64
arrays of equal length (one entry per pair to score), returning one score per
pair, higher is better, never NaN. Item ids are the graph's labels, so the same
function serves :func:`exact_search`, the brute-force reference.

Order: score descending, ties broken by the smaller item id, everywhere. The
search packs both into one unsigned 64-bit key per node (the float32 score's
order-preserving bit pattern, inverted, above the rank of the item id), so a
beam update is a row-wise ``argpartition`` of distinct keys rather than a sort.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ltr._validation import check_int
from recall.hnsw._beam import (
    EMPTY,
    Beam,
    ChunkState,
    ScoreFn,
    call_score_fn,
    key_ranks,
    key_scores,
    order_keys,
    select_top,
)
from recall.hnsw._graph import HNSWGraph

__all__ = ["LayeredBeamSearch", "ScoreFn", "SearchResult", "exact_search"]

_MAX_ITEMS = 1 << 32  # item ranks fill the low 32 bits of a key


@dataclass(frozen=True, eq=False)
class SearchResult:
    """Top-k items per query.

    Parameters
    ----------
    labels : ndarray of int64, shape (n_queries, k)
        Item ids, best first; -1 where fewer than ``k`` items were found.
    scores : ndarray of float32, shape (n_queries, k)
        Their scores, non-increasing along a row; -inf where ``labels`` is -1.
        Ties are broken by the smaller item id.
    n_scored : ndarray of int64, shape (n_queries,)
        Number of distinct items scored for each query (``n_items`` for
        :func:`exact_search`); divide by the catalogue size for the share scored.
    """

    labels: np.ndarray
    scores: np.ndarray
    n_scored: np.ndarray


class LayeredBeamSearch:
    """Beam search down the levels of an :class:`~recall.hnsw.HNSWGraph`.

    Parameters
    ----------
    ef0 : int, default=64
        Beam width on level 0; it holds the results, so ``search`` refuses ``k > ef0``.
    ef_upper : int, default=32
        Beam width on levels >= 1. A wide upper beam seeds level 0 in several
        regions of the catalogue, which matters when a query's best items lie
        in several clusters; upper levels are small, so it costs little.
    rounds_upper : int, default=4
        Maximum expansion rounds per upper level (a level ends earlier once all
        of its beam has been expanded).
    max_rounds0 : int, default=256
        Maximum expansion rounds on level 0.
    expand_per_round : int or None, default=8
        Expand at most this many of the best unexpanded beam nodes per query and
        round; None expands all of them. Small values approach hnswlib's
        best-first order (fewer items scored for the same recall) at the price
        of more rounds, hence more ``score_fn`` calls.
    exhaustive_upper : int, default=0
        Upper levels with at most this many nodes are not walked: the largest
        of them (levels nest, so it holds every node above it) is scored whole
        in one round and the walk starts on the level below from its best
        nodes. Fewer rounds (each a ``score_fn`` call) for the same or better
        seeds; 0 walks every level from the entry point.
    max_per_category : int or None, default=None
        At most this many items of one category in the level-0 beam and in the
        results; needs ``categories`` in :meth:`fit`. Upper levels are not capped
        (they only route).
    query_batch_size : int, default=256
        Queries advanced together. Memory is about ``query_batch_size * n_nodes``
        bytes for the visited bitmap plus 25 bytes per beam slot.

    Attributes
    ----------
    graph_ : HNSWGraph
        The graph searched.
    node_categories_ : ndarray of int64 or None
        Category code of each internal id (codes of the sorted distinct
        categories), None without categories.

    Notes
    -----
    A node keeps its score across levels, so each (query, node) pair is scored
    at most once, and each level's beam starts as the best of everything scored
    so far: the beam is always the best ``width`` (capped per category on
    level 0) of all scored nodes.

    The category cap applies inside the level-0 beam (pruning, as in seed 000),
    so the beam never holds more than ``max_per_category * n_categories`` nodes:
    with few categories and a small cap the search narrows and recall against
    the capped exact top-k drops.

    Deleted nodes (hnswlib's delete mark) are scored and route the search but are
    never returned.
    """

    def __init__(
        self,
        *,
        ef0: int = 64,
        ef_upper: int = 32,
        rounds_upper: int = 4,
        max_rounds0: int = 256,
        expand_per_round: int | None = 8,
        exhaustive_upper: int = 0,
        max_per_category: int | None = None,
        query_batch_size: int = 256,
    ) -> None:
        self.ef0 = ef0
        self.ef_upper = ef_upper
        self.rounds_upper = rounds_upper
        self.max_rounds0 = max_rounds0
        self.expand_per_round = expand_per_round
        self.exhaustive_upper = exhaustive_upper
        self.max_per_category = max_per_category
        self.query_batch_size = query_batch_size

    def fit(
        self, graph: HNSWGraph, categories: np.ndarray | None = None
    ) -> LayeredBeamSearch:
        """Validate the parameters and prepare padded neighbour tables.

        Parameters
        ----------
        graph : HNSWGraph
            Graph from :func:`recall.hnsw.read_graph`.
        categories : array-like of int, optional
            Category of every item id, indexed by item id (graph label), so
            ``len(categories) > graph.labels.max()``. Needed when
            ``max_per_category`` is set.

        Returns
        -------
        self

        Raises
        ------
        ValueError, TypeError
            On bad parameters, labels or categories.
        """
        if not isinstance(graph, HNSWGraph):
            raise TypeError(f"graph must be an HNSWGraph. Got {type(graph).__name__} instead.")
        check_int(self.ef0, "ef0", minimum=1)
        check_int(self.ef_upper, "ef_upper", minimum=1)
        check_int(self.rounds_upper, "rounds_upper", minimum=1)
        check_int(self.max_rounds0, "max_rounds0", minimum=1)
        check_int(self.query_batch_size, "query_batch_size", minimum=1)
        check_int(self.exhaustive_upper, "exhaustive_upper", minimum=0)
        if self.expand_per_round is not None:
            check_int(self.expand_per_round, "expand_per_round", minimum=1)
        if self.max_per_category is not None:
            check_int(self.max_per_category, "max_per_category", minimum=1)
            if categories is None:
                raise ValueError(
                    "categories must be given when max_per_category is set. Got None "
                    "instead."
                )
        if graph.n_nodes and graph.labels.min() < 0:
            raise ValueError(
                "graph labels must be non-negative item ids. Got "
                f"{int(graph.labels.min())} instead."
            )
        if graph.n_nodes >= _MAX_ITEMS:
            raise ValueError(
                f"graph must have fewer than {_MAX_ITEMS} nodes. Got {graph.n_nodes} "
                "instead."
            )
        if categories is None:
            node_categories = None
        else:
            codes = _category_codes(categories, "categories")
            if graph.n_nodes and codes.shape[0] <= graph.labels.max():
                raise ValueError(
                    "categories must cover every item id (length > max label "
                    f"{int(graph.labels.max())}). Got length {codes.shape[0]} instead."
                )
            node_categories = codes[graph.labels]
        # Padded (n_level_nodes + 1, degree) tables with an all -1 last row, and
        # a node -> row map per level, so one gather expands a whole frontier.
        tables = []
        for layer in graph.links:
            counts = layer.degrees()
            degree = max(1, int(counts.max(initial=0)))
            n_rows = layer.nodes.shape[0]
            table = np.full((n_rows + 1, degree), -1, dtype=np.int64)
            row_of_link = np.repeat(np.arange(n_rows), counts)
            slot = np.arange(layer.indices.shape[0]) - np.repeat(layer.indptr[:-1], counts)
            table[row_of_link, slot] = layer.indices
            row_map = np.full(graph.n_nodes + 1, n_rows, dtype=np.int64)
            row_map[layer.nodes] = np.arange(n_rows)
            tables.append((row_map, table))
        # A beam key's low 32 bits are the rank of the node's label; these map
        # ranks back to nodes and categories.
        node_of_rank = np.argsort(graph.labels, kind="stable")
        label_rank = np.empty(graph.n_nodes, dtype=np.uint64)
        label_rank[node_of_rank] = np.arange(graph.n_nodes, dtype=np.uint64)
        # The walk starts on `start_level_`, below the upper levels small enough to
        # be scored whole (`seed_nodes_`: the nodes of the largest of them).
        start, seeds = graph.max_level, np.zeros(0, dtype=np.int64)
        while start >= 1:
            on_level = np.flatnonzero(graph.levels >= start)
            if on_level.shape[0] > self.exhaustive_upper:
                break
            start, seeds = start - 1, on_level
        self.graph_ = graph
        self.start_level_ = start
        self.seed_nodes_ = seeds
        self.node_categories_ = node_categories
        self._tables_ = tables
        self._label_rank_ = label_rank
        self._node_of_rank_ = node_of_rank
        self._category_of_rank_ = (
            None if node_categories is None else node_categories[node_of_rank]
        )
        return self

    def search(
        self, score_fn: ScoreFn, query_index: np.ndarray, k: int
    ) -> SearchResult:
        """Search the graph for each query's best ``k`` items under ``score_fn``.

        Parameters
        ----------
        score_fn : callable
            ``score_fn(query_index, item_ids) -> scores`` over equal-length int64
            arrays; returns real scores (higher is better, never NaN), which are
            compared as float32.
        query_index : array-like of int, shape (n_queries,)
            Query ids handed to ``score_fn`` (for example user row numbers).
        k : int
            Number of items to return per query.

        Returns
        -------
        SearchResult

        Raises
        ------
        ValueError, TypeError
            If not fitted, on bad arguments, or when ``score_fn`` returns the
            wrong shape, a non-real dtype or NaN.
        """
        if not hasattr(self, "graph_"):
            raise ValueError("LayeredBeamSearch must be fitted with fit(graph) before search.")
        if not callable(score_fn):
            raise TypeError(f"score_fn must be callable. Got {type(score_fn).__name__} instead.")
        queries = _check_queries(query_index)
        k = check_int(k, "k", minimum=1)
        if k > self.ef0:
            raise ValueError(f"k must be <= ef0 ({self.ef0}), the level-0 beam that holds the results. Got "
                             f"k={k} instead: raise ef0 (ef_search of the source) or ask for fewer items.")
        n_queries = queries.shape[0]
        labels = np.full((n_queries, k), -1, dtype=np.int64)
        scores = np.full((n_queries, k), -np.inf, dtype=np.float32)
        n_scored = np.zeros(n_queries, dtype=np.int64)
        graph = self.graph_
        if n_queries == 0 or graph.n_nodes == 0:
            return SearchResult(labels, scores, n_scored)
        chunk = min(self.query_batch_size, n_queries)
        visited = np.zeros((chunk, graph.n_nodes), dtype=bool)
        for start in range(0, n_queries, chunk):
            stop = min(start + chunk, n_queries)
            part = self._search_chunk(score_fn, queries[start:stop], k, visited)
            labels[start:stop], scores[start:stop], n_scored[start:stop] = part
        return SearchResult(labels, scores, n_scored)

    def _search_chunk(
        self, score_fn: ScoreFn, queries: np.ndarray, k: int, visited: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        graph = self.graph_
        state = ChunkState(score_fn, queries, graph, self._label_rank_, visited)
        rows = np.arange(queries.shape[0])
        entry = np.full(rows.shape[0], graph.entry_point, dtype=np.int64)
        state.score(rows, entry)
        if self.seed_nodes_.shape[0]:
            seeds = self.seed_nodes_
            new_rows, new_nodes = state.fresh(np.repeat(rows, seeds.shape[0]), np.tile(seeds, rows.shape[0]))
            if new_rows.size:
                state.score(new_rows, new_nodes)
        for level in range(self.start_level_, 0, -1):
            beam = state.start_beam(self.ef_upper, None, None)
            beam = self._walk(beam, level, self.rounds_upper, state, None, None)
        cap = self.max_per_category
        groups = self._category_of_rank_ if cap is not None else None
        beam = state.start_beam(self.ef0, groups, cap)
        beam = self._walk(beam, 0, self.max_rounds0, state, groups, cap)
        state.release()

        # Deleted nodes routed the search but are never returned.
        sel_rows, sel_cols = np.nonzero(beam.keys != EMPTY)
        keys = beam.keys[sel_rows, sel_cols]
        nodes = self._node_of_rank_[key_ranks(keys)]
        keep = ~graph.deleted[nodes]
        sel_rows, keys, nodes = sel_rows[keep], keys[keep], nodes[keep]
        best = select_top(
            sel_rows, keys, k, None if groups is None else groups[key_ranks(keys)], cap
        )
        out_labels = np.full((rows.shape[0], k), -1, dtype=np.int64)
        out_scores = np.full((rows.shape[0], k), -np.inf, dtype=np.float32)
        out_labels[best.rows, best.ranks] = graph.labels[nodes[best.index]]
        out_scores[best.rows, best.ranks] = key_scores(keys[best.index])
        return out_labels, out_scores, state.n_scored

    def _walk(
        self,
        beam: Beam,
        level: int,
        max_rounds: int,
        state: ChunkState,
        groups: np.ndarray | None,
        cap: int | None,
    ) -> Beam:
        """Run expansion rounds on one level until the beam is fully expanded."""
        row_map, table = self._tables_[level]
        for _ in range(max_rounds):
            exp_rows, exp_cols = beam.pending(self.expand_per_round)
            if exp_rows.size == 0:
                break
            beam.expanded[exp_rows, exp_cols] = True
            sources = self._node_of_rank_[key_ranks(beam.keys[exp_rows, exp_cols])]
            neighbours = table[row_map[sources]]
            cand_rows = np.repeat(exp_rows, neighbours.shape[1])
            cand_nodes = neighbours.reshape(-1)
            valid = cand_nodes >= 0
            new_rows, new_nodes = state.fresh(cand_rows[valid], cand_nodes[valid])
            if new_rows.size == 0:
                continue
            beam.merge(new_rows, state.score(new_rows, new_nodes), groups, cap)
        return beam



def exact_search(
    score_fn: ScoreFn,
    queries: int | np.ndarray,
    n_items: int,
    k: int,
    batch_size: int = 1 << 20,
    *,
    categories: np.ndarray | None = None,
    max_per_category: int | None = None,
) -> SearchResult:
    """Brute-force top-k: score every item id ``0 .. n_items - 1`` for every query.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(query_index, item_ids) -> scores`` as in
        :meth:`LayeredBeamSearch.search`.
    queries : int or array-like of int
        An int ``n`` means query ids ``0 .. n - 1``; otherwise the query ids.
    n_items : int
        Catalogue size; item ids are ``0 .. n_items - 1``.
    k : int
        Number of items per query; rows are padded with -1 / -inf beyond
        ``n_items`` (or beyond what the category cap allows).
    batch_size : int, default=2**20
        Maximum number of (query, item) pairs per ``score_fn`` call.
    categories : array-like of int, shape (n_items,), optional
        Category of each item id; needed with ``max_per_category``.
    max_per_category : int, optional
        At most this many items of one category per query.

    Returns
    -------
    SearchResult
        Same ordering and tie-breaking as the graph search; ``n_scored`` is
        ``n_items`` per query.

    Raises
    ------
    ValueError, TypeError
        On bad arguments or a bad ``score_fn`` output (see
        :meth:`LayeredBeamSearch.search`).
    """
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable. Got {type(score_fn).__name__} instead.")
    if isinstance(queries, numbers.Integral) and not isinstance(queries, (bool, np.bool_)):
        query_ids = np.arange(check_int(queries, "queries", minimum=0), dtype=np.int64)
    else:
        query_ids = _check_queries(queries, "queries")
    n_items = check_int(n_items, "n_items", minimum=0)
    if n_items > _MAX_ITEMS:
        raise ValueError(f"n_items must be at most {_MAX_ITEMS}. Got {n_items} instead.")
    k = check_int(k, "k", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    codes = None
    if max_per_category is not None:
        max_per_category = check_int(max_per_category, "max_per_category", minimum=1)
        if categories is None:
            raise ValueError(
                "categories must be given when max_per_category is set. Got None instead."
            )
        codes = _category_codes(categories, "categories")
        if codes.shape[0] != n_items:
            raise ValueError(
                f"categories must have length n_items={n_items}. Got {codes.shape[0]} "
                "instead."
            )
    n_queries = query_ids.shape[0]
    labels = np.full((n_queries, k), -1, dtype=np.int64)
    scores = np.full((n_queries, k), -np.inf, dtype=np.float32)
    n_scored = np.full(n_queries, n_items, dtype=np.int64)
    if n_queries == 0 or n_items == 0:
        return SearchResult(labels, scores, n_scored)
    items = np.arange(n_items, dtype=np.int64)
    item_step = min(n_items, batch_size)
    query_step = max(1, batch_size // n_items)
    for start in range(0, n_queries, query_step):
        chunk = query_ids[start : start + query_step]
        block = np.empty((chunk.shape[0], n_items), dtype=np.float32)
        for item_start in range(0, n_items, item_step):
            part = items[item_start : item_start + item_step]
            block[:, item_start : item_start + part.shape[0]] = call_score_fn(
                score_fn, np.repeat(chunk, part.shape[0]), np.tile(part, chunk.shape[0])
            ).reshape(chunk.shape[0], part.shape[0])
        keys = order_keys(block, items)
        if codes is None:
            take = min(k, n_items)
            cols = np.argpartition(keys, take - 1, axis=1)[:, :take]
            rows = np.repeat(np.arange(chunk.shape[0]), take)
            cols = cols.reshape(-1)
        else:
            rows, cols = np.divmod(np.arange(block.size), n_items)
        best = select_top(
            rows, keys[rows, cols], k, None if codes is None else codes[cols],
            max_per_category,
        )
        labels[start + best.rows, best.ranks] = cols[best.index]
        scores[start + best.rows, best.ranks] = block[rows, cols][best.index]
    return SearchResult(labels, scores, n_scored)



def _check_queries(values, name: str = "query_index") -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D. Got shape {array.shape} instead.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype. Got {array.dtype} instead.")
    return array.astype(np.int64)


def _category_codes(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D. Got shape {array.shape} instead.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype. Got {array.dtype} instead.")
    return np.unique(array, return_inverse=True)[1].astype(np.int64)
