"""The beam of :class:`~recall.hnsw._search.LayeredBeamSearch`: sort keys, per-query beams,
per-chunk bookkeeping and the checked call of the scorer.

A beam entry is one unsigned 64-bit key per (query, node): the float32 score's
order-preserving bit pattern, inverted, above the rank of the node's label, so
ascending keys are score descending then item id ascending, and a beam update is a
row-wise ``argpartition`` of distinct keys rather than a sort.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recall.hnsw._graph import HNSWGraph

__all__ = [
    "EMPTY",
    "Beam",
    "ChunkState",
    "ScoreFn",
    "Selection",
    "call_score_fn",
    "key_ranks",
    "key_scores",
    "order_keys",
    "run_ranks",
    "select_top",
]

ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

EMPTY = np.uint64(np.iinfo(np.uint64).max)  # above every real key, even -inf
SIGN = np.uint32(1 << 31)


class ChunkState:
    """Per-chunk bookkeeping: the visited bitmap, scored pairs, the scorer call."""

    def __init__(
        self,
        score_fn: ScoreFn,
        queries: np.ndarray,
        graph: HNSWGraph,
        label_rank: np.ndarray,
        visited: np.ndarray,
    ) -> None:
        self.score_fn = score_fn
        self.queries = queries
        self.labels = graph.labels
        self.label_rank = label_rank
        self.n_nodes = graph.n_nodes
        self.flat_visited = visited[: queries.shape[0]].reshape(-1)
        self.pairs: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []
        self.n_scored = np.zeros(queries.shape[0], dtype=np.int64)

    def fresh(self, rows: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (row, node) pairs not scored yet, ordered by row then node."""
        pairs = rows * self.n_nodes + nodes
        pairs = np.sort(pairs[~self.flat_visited[pairs]])
        # Sorted, then the first of each run: what np.unique returns, several times faster on
        # a round's few hundred pairs (numpy 2's unique hashes first).
        return np.divmod(pairs[_run_starts(pairs)], self.n_nodes)

    def score(self, rows: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Score (row, node) pairs; return their beam keys."""
        pairs = rows * self.n_nodes + nodes
        self.flat_visited[pairs] = True
        self.n_scored += np.bincount(rows, minlength=self.n_scored.shape[0])
        scores = call_score_fn(self.score_fn, self.queries[rows], self.labels[nodes])
        keys = order_keys(scores, self.label_rank[nodes])
        self.pairs.append(pairs)
        self.keys.append(keys)
        return keys

    def start_beam(self, width: int, groups: np.ndarray | None, cap: int | None) -> Beam:
        """Beam for a new level: the best of everything scored so far, unexpanded.

        Levels nest, so every node scored higher up is present on this level; a
        node that fell out of a narrower beam above is reconsidered for free.
        """
        rows = np.concatenate(self.pairs) // self.n_nodes
        order = np.argsort(rows, kind="stable")  # merge wants entrants by row
        beam = Beam.empty(self.n_scored.shape[0], width)
        beam.merge(rows[order], np.concatenate(self.keys)[order], groups, cap)
        return beam

    def release(self) -> None:
        # Clear only what this chunk set; far cheaper than re-zeroing the bitmap.
        self.flat_visited[np.concatenate(self.pairs)] = False


@dataclass
class Beam:
    """Per-query beam in fixed-width rows of keys, in no particular order.

    A key identifies its node (label rank) and score; free slots hold
    ``EMPTY`` and count as expanded.
    """

    keys: np.ndarray
    expanded: np.ndarray

    @classmethod
    def empty(cls, n_rows: int, width: int) -> Beam:
        return cls(
            np.full((n_rows, width), EMPTY, dtype=np.uint64),
            np.ones((n_rows, width), dtype=bool),
        )

    def pending(self, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Slots to expand: each row's best ``limit`` unexpanded nodes."""
        if limit is None or limit >= self.keys.shape[1]:
            rows, cols = np.nonzero(~self.expanded)
            return rows, cols
        if self.keys.shape[0] == 1:  # one request: the same slots in fewer calls
            masked_row = np.where(self.expanded[0], EMPTY, self.keys[0])
            picked = np.argpartition(masked_row, limit - 1)[:limit]
            picked = picked[masked_row[picked] != EMPTY]
            return np.zeros(picked.shape[0], dtype=np.int64), picked
        masked = np.where(self.expanded, EMPTY, self.keys)
        cols = np.argpartition(masked, limit - 1, axis=1)[:, :limit]
        rows, slot = np.nonzero(masked[np.arange(cols.shape[0])[:, None], cols] != EMPTY)
        return rows, cols[rows, slot]

    def merge(
        self,
        rows: np.ndarray,
        keys: np.ndarray,
        category_of_rank: np.ndarray | None,
        cap: int | None,
    ) -> None:
        """Keep each row's best ``width`` (capped per category) of beam and entrants.

        ``rows`` must be non-decreasing; entrants are new, unexpanded nodes. An
        entrant whose key is above a full row's worst cannot enter (the row
        already holds ``width`` better nodes that satisfy the cap), so it is
        dropped before any work.
        """
        width = self.keys.shape[1]
        if cap is None and self.keys.shape[0] == 1:
            self._merge_one(keys)
            return
        enter = keys < self.keys.max(axis=1)[rows]
        if not enter.any():
            return
        rows, keys = rows[enter], keys[enter]
        # Rows are sorted: runs of equal rows are the active beams, in order.
        starts = _run_starts(rows)
        active = rows[starts]
        local = np.cumsum(starts) - 1
        if cap is None:
            # Entrants in a padded matrix beside the beam; keys are distinct, so
            # the best `width` of each row is an argpartition, no tie to break.
            rank = _ranks_in_runs(starts)
            new_keys = np.full((active.shape[0], int(rank.max()) + 1), EMPTY,
                               dtype=np.uint64)
            new_keys[local, rank] = keys
            all_keys = np.concatenate((self.keys[active], new_keys), axis=1)
            all_expanded = np.concatenate(
                (self.expanded[active], new_keys == EMPTY), axis=1
            )
            cols = np.argpartition(all_keys, width - 1, axis=1)[:, :width]
            at = np.arange(active.shape[0])[:, None]
            self.keys[active] = all_keys[at, cols]
            self.expanded[active] = all_expanded[at, cols]
            return
        old_local, old_cols = np.nonzero(self.keys[active] != EMPTY)
        old_rows = active[old_local]
        all_local = np.concatenate((old_local, local))
        all_keys = np.concatenate((self.keys[old_rows, old_cols], keys))
        all_expanded = np.concatenate(
            (self.expanded[old_rows, old_cols], np.zeros(keys.shape[0], dtype=bool))
        )
        groups = None if category_of_rank is None else category_of_rank[key_ranks(all_keys)]
        best = select_top(all_local, all_keys, width, groups, cap)
        part = Beam.empty(active.shape[0], width)
        part.keys[best.rows, best.ranks] = all_keys[best.index]
        part.expanded[best.rows, best.ranks] = all_expanded[best.index]
        self.keys[active] = part.keys
        self.expanded[active] = part.expanded


    def _merge_one(self, keys: np.ndarray) -> None:
        """Uncapped :meth:`merge` into a beam of one row (one request): the same best
        ``width`` keys, in fewer calls (slot order within a row never matters)."""
        row, expanded = self.keys[0], self.expanded[0]
        keys = keys[keys < row.max()]
        if not keys.size:
            return
        all_keys = np.concatenate((row, keys))
        all_expanded = np.concatenate((expanded, np.zeros(keys.shape[0], dtype=bool)))
        cols = np.argpartition(all_keys, row.shape[0] - 1)[: row.shape[0]]
        row[:] = all_keys[cols]
        expanded[:] = all_expanded[cols]


@dataclass(frozen=True)
class Selection:
    index: np.ndarray
    rows: np.ndarray
    ranks: np.ndarray


def select_top(
    rows: np.ndarray,
    keys: np.ndarray,
    width: int,
    groups: np.ndarray | None = None,
    cap: int | None = None,
) -> Selection:
    """Each row's best ``width`` entries of flat (row, key) lists, best first.

    With ``groups`` and ``cap``, an entry is dropped when ``cap`` better entries
    of its row share its group. Returns positions into the inputs with their row
    and 0-based rank.
    """
    order = np.lexsort((keys, rows))
    sorted_rows = rows[order]
    if groups is not None and cap is not None and order.size:
        sorted_groups = groups[order]
        n_groups = int(sorted_groups.max()) + 1
        group_key = sorted_rows * n_groups + sorted_groups
        by_group = np.argsort(group_key, kind="stable")
        rank_in_group = np.empty(order.size, dtype=np.int64)
        rank_in_group[by_group] = run_ranks(group_key[by_group])
        kept = rank_in_group < cap
        order = order[kept]
        sorted_rows = sorted_rows[kept]
    ranks = run_ranks(sorted_rows)
    kept = ranks < width
    return Selection(order[kept], sorted_rows[kept], ranks[kept])


def run_ranks(sorted_keys: np.ndarray) -> np.ndarray:
    """Position of each entry within its run of equal consecutive keys."""
    return _ranks_in_runs(_run_starts(sorted_keys))


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """True where a run of equal consecutive keys starts."""
    starts = np.empty(sorted_keys.shape[0], dtype=bool)
    if starts.size:
        starts[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    return starts


def _ranks_in_runs(starts: np.ndarray) -> np.ndarray:
    """Position of each entry within its run, given the runs' start flags."""
    position = np.arange(starts.shape[0])
    return position - np.maximum.accumulate(np.where(starts, position, 0))


def order_keys(scores: np.ndarray, item_rank: np.ndarray) -> np.ndarray:
    """uint64 keys, ascending = score descending then item rank ascending.

    Flipping the sign bit of a non-negative float32 (all bits of a negative one)
    gives a uint32 that orders like the float; inverting it reverses the order.
    Scores must be NaN-free with -0.0 folded into +0.0.
    """
    bits = scores.astype(np.float32).view(np.uint32)
    ascending = np.where(bits & SIGN, ~bits, bits | SIGN)
    return ((~ascending).astype(np.uint64) << np.uint64(32)) | item_rank.astype(np.uint64)


def key_ranks(keys: np.ndarray) -> np.ndarray:
    """Item ranks (low 32 bits) of real keys."""
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)


def key_scores(keys: np.ndarray) -> np.ndarray:
    """float32 scores of real keys; the inverse of :func:`order_keys`."""
    ascending = ~(keys >> np.uint64(32)).astype(np.uint32)
    bits = np.where(ascending & SIGN, ascending ^ SIGN, ~ascending)
    return bits.astype(np.uint32).view(np.float32)



def call_score_fn(score_fn: ScoreFn, queries: np.ndarray, items: np.ndarray) -> np.ndarray:
    result = np.asarray(score_fn(queries, items))
    if result.shape != items.shape:
        raise ValueError(
            f"score_fn must return one score per pair, shape {items.shape}. Got shape "
            f"{result.shape} instead."
        )
    if result.dtype.kind not in "biuf":  # bool, signed or unsigned integer, floating
        raise TypeError(f"score_fn must return real scores. Got dtype {result.dtype} instead.")
    # Adding +0.0 folds -0.0 into +0.0, which the sort keys would tell apart.
    result = result.astype(np.float32, copy=False) + np.float32(0.0)
    if np.isnan(result).any():
        position = int(np.flatnonzero(np.isnan(result))[0])
        raise ValueError(
            "score_fn must return scores that are not NaN. Got NaN for query "
            f"{int(queries[position])}, item {int(items[position])} instead."
        )
    return result
