"""Reciprocal-rank fusion of several recall sources' lists, and its weights learned on a
validation day (see :mod:`recall.merge` for the rule)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from ltr._validation import check_float, check_frame, check_int
from recall.base import CANDIDATE_COLUMNS, finalize_candidates, validate_candidates

__all__ = ["FUSION_KS", "MARGIN_Z", "FusedAt", "MarginTest", "fuse", "learn_weight_sets", "learn_weights",
           "learn_weights_by_k", "mask_labels", "named_frames"]

_RRF_C = 60.0
#: The list lengths weights are learned for (the funnel's hitrate@K range).
FUSION_KS = (50, 100, 200, 400, 800, 1200)
_WEIGHT_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.5, 2.0, 4.0, 10.0)
#: The default noise margin of the per-K learner (:func:`learn_weights_by_k`), in standard
#: deviations of the discordant targets' difference.
MARGIN_Z = 1.0


class MarginTest(NamedTuple):
    """The noise margin at one K on the learning day: the best fused setting against the best
    single source there, target by target. ``b`` targets the fused list finds and the single
    source misses, ``c`` the reverse; ``kept`` is ``"fused"`` when ``b - c > margin_z *
    sqrt(b + c)`` (or ``margin_z`` is 0), else ``"single"``."""

    kept: str
    single: str
    b: int
    c: int


class FusedAt(NamedTuple):
    """How the fused list at one K is made: the RRF ``weights`` of each source, and the
    ``depth`` of the sources' lists that are fused (each source's top ``depth``, the fused
    list cut at K; ``depth`` is K itself or the largest learned K); ``margin`` is the noise
    margin's record at that K (:func:`learn_weights_by_k`), None when not tested."""

    weights: dict[str, float]
    depth: int
    margin: MarginTest | None = None


def named_frames(candidate_frames) -> dict[str, pd.DataFrame]:
    if isinstance(candidate_frames, Mapping):
        items = list(candidate_frames.items())
    elif isinstance(candidate_frames, Sequence) and not isinstance(candidate_frames, (str, bytes)):
        items = []
        for pos, frame in enumerate(candidate_frames):
            if not isinstance(frame, pd.DataFrame) or "source" not in frame.columns:
                raise ValueError(f"candidate_frames[{pos}] must be a DataFrame with a 'source' column when a list "
                                 f"is given. Got {type(frame).__name__} instead.")
            names = pd.unique(frame["source"].astype(str))
            if len(names) != 1:
                raise ValueError(f"candidate_frames[{pos}] must hold one source (its 'source' column names it). "
                                 f"Got {list(names)[:5]} instead.")
            items.append((str(names[0]), frame))
    else:
        raise TypeError(f"candidate_frames must be a dict of name -> DataFrame or a list of DataFrames. "
                        f"Got {type(candidate_frames).__name__} instead.")
    out: dict[str, pd.DataFrame] = {}
    for name, frame in items:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"candidates of source {name!r} must be a DataFrame. Got {type(frame).__name__} instead.")
        if name in out:
            raise ValueError(f"candidate_frames must name each source once. Got {name!r} twice.")
        validate_candidates(frame, name=f"candidates of source {name!r}")
        out[name] = frame
    return out


def mask_labels(order: list[str]) -> np.ndarray:
    """Label of every bit mask of sources, e.g. 0b11 -> 'itemcf+hot'."""
    n = len(order)
    labels = np.empty(1 << n, dtype=object)
    for m in range(1 << n):  # 2**n_sources labels, n is a handful
        labels[m] = "+".join(name for i, name in enumerate(order) if m >> i & 1)
    return labels


def fuse(candidate_frames: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame], k: int,
         weights: Mapping[str, float] | None = None, c: float = _RRF_C) -> pd.DataFrame:
    """Reciprocal-rank fusion of several sources' candidates (see module docstring).

    Parameters
    ----------
    candidate_frames : dict of str -> DataFrame, or list of DataFrame
        Each source's candidates (``request_id, item_id, rank`` at least).
    k : int
        Fused list length per request.
    weights : dict of str -> float, optional
        Weight of each source (default 1 each; a missing source weighs 1, 0 drops it).
    c : float, default 60
        The rank offset: larger flattens the weight of the first ranks.

    Returns
    -------
    DataFrame
        :data:`recall.base.CANDIDATE_COLUMNS`; ``score`` is the fused score, ties broken by
        item id; ``source`` names every source whose list holds the item (``"itemcf+hot"``).
    """
    frames = named_frames(candidate_frames)
    k = check_int(k, "k", minimum=1)
    c = check_float(c, "c", low=0.0)
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(frames))
    if unknown:
        raise ValueError(f"weights name an unknown source {unknown[0]!r}; the candidates hold {list(frames)}.")
    order = list(frames)
    w = np.array([check_float(weights.get(n, 1.0), f"weight of {n!r}", low=0.0) for n in order])
    rows = pd.concat([frames[n][["request_id", "item_id", "rank"]].assign(src=i) for i, n in enumerate(order)],
                     ignore_index=True)
    if not len(rows):
        return pd.DataFrame({col: pd.Series(dtype=t) for col, t in zip(
            CANDIDATE_COLUMNS, ["int64", "int64", "float64", "int64", "str"], strict=True)})
    src = rows["src"].to_numpy()
    req_code, req_ids = pd.factorize(rows["request_id"], sort=True)
    item_code, item_ids = pd.factorize(rows["item_id"], sort=True)
    key = req_code.astype(np.int64) * len(item_ids) + item_code
    uniq, inv = np.unique(key, return_inverse=True)
    score = np.bincount(inv, weights=w[src] / (c + rows["rank"].to_numpy(dtype=np.float64)), minlength=len(uniq))
    # A source of weight 0 is dropped: it neither scores nor names an item.
    masks = np.bincount(inv, weights=(np.left_shift(1, src) * (w[src] > 0)).astype(np.float64), minlength=len(uniq))
    listed = masks > 0
    uniq, score, masks = uniq[listed], score[listed], masks[listed].astype(np.int64)
    frame = finalize_candidates(req_ids.to_numpy()[uniq // len(item_ids)], item_ids.to_numpy()[uniq % len(item_ids)],
                                score, "", k)
    label = pd.Series(mask_labels(order)[masks], index=pd.MultiIndex.from_arrays(
        [req_ids.to_numpy()[uniq // len(item_ids)], item_ids.to_numpy()[uniq % len(item_ids)]]))
    frame["source"] = label.reindex(pd.MultiIndex.from_frame(frame[["request_id", "item_id"]])).to_numpy()
    return frame


class _FusionTable:
    """The (request, item) pairs of several lists with each source's rank, prepared once so
    that many weightings are scored fast (:func:`learn_weights`).

    :meth:`hits` counts, for each K of ``ks``, the targets in the top K of :func:`fuse` of the
    sources' top-K lists, and of their top-max(ks) lists. A target's rank
    is one plus the items of its request that beat it (higher score, or equal score and lower
    item id): one pass over the (request item, target) pairs per K, no sort.
    """

    def __init__(self, frames: dict[str, pd.DataFrame], targets: pd.DataFrame, ks: Sequence[int]) -> None:
        self.ks = [check_int(k, "K", minimum=1) for k in ks]
        if not self.ks:
            raise ValueError("ks must hold at least one list length. Got none instead.")
        rows = pd.concat([f[["request_id", "item_id", "rank"]].assign(src=i) for i, f in enumerate(frames.values())],
                         ignore_index=True)
        rows = rows.loc[rows["rank"] <= max(self.ks)]
        req_code, req_ids = pd.factorize(rows["request_id"], sort=True)
        item_code, item_ids = pd.factorize(rows["item_id"], sort=True)
        n_items = max(len(item_ids), 1)
        uniq, self.inv = np.unique(req_code.astype(np.int64) * n_items + item_code, return_inverse=True)
        self.n_pairs = len(uniq)
        self.src = rows["src"].to_numpy()
        self.rank = rows["rank"].to_numpy(dtype=np.int64)
        # Rows in the concatenation order of fuse(), so the float sums are the same bits.
        self.inverse_rank = 1.0 / (_RRF_C + self.rank.astype(np.float64))
        t_req = pd.Index(req_ids).get_indexer(targets["request_id"].to_numpy())
        t_item = pd.Index(item_ids).get_indexer(targets["item_id"].to_numpy())
        found = (t_req >= 0) & (t_item >= 0)
        t_key = t_req[found].astype(np.int64) * n_items + t_item[found]
        pos = np.minimum(np.searchsorted(uniq, t_key), max(len(uniq) - 1, 0))
        self.target_row = pos[uniq[pos] == t_key] if len(uniq) else pos[:0]
        # Every (row of a target's request, target) pair; rows of a request are contiguous in
        # key order, item ids ascending within it.
        req_of = uniq // n_items
        t_req_code = req_of[self.target_row]
        start = np.searchsorted(req_of, t_req_code, side="left")
        size = np.searchsorted(req_of, t_req_code, side="right") - start
        self.pair_target = np.repeat(np.arange(len(size)), size)
        self.pair_row = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size - start, size)
        self.n_targets = len(targets)
        self.n_sources = len(frames)

    def _ahead(self, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each target's score and the number of items of its request ranked above it."""
        target_score = score[self.target_row]
        pair_score, their = score[self.pair_row], target_score[self.pair_target]
        beats = (pair_score > their) | ((pair_score == their) & (self.pair_row < self.target_row[self.pair_target]))
        return target_score, np.bincount(self.pair_target, weights=beats.astype(np.float64),
                                         minlength=len(self.target_row))

    def hits(self, weights: np.ndarray) -> np.ndarray:
        """Targets found in the top K, for each K of ``ks`` (columns): row 0 of the fused
        top-K lists, row 1 of the fused top-max(ks) lists."""
        contribution = weights[self.src] * self.inverse_rank
        out = np.zeros((2, len(self.ks)), dtype=np.int64)
        # A listed item scores > 0; one that no weighted source lists (within the depth) scores 0.
        deep_score, deep_ahead = self._ahead(np.bincount(self.inv, weights=contribution, minlength=self.n_pairs))
        for j, k in enumerate(self.ks):  # a handful of list lengths
            # Adding 0.0 for the rows beyond K leaves every sum's bits as fuse() computes them.
            target_score, ahead = self._ahead(np.bincount(
                self.inv, weights=np.where(self.rank <= k, contribution, 0.0), minlength=self.n_pairs))
            out[0, j] = int(((target_score > 0) & (ahead < k)).sum())
            out[1, j] = int(((deep_score > 0) & (deep_ahead < k)).sum())
        return out

    def found(self, weights: np.ndarray, k: int, depth: int) -> np.ndarray:
        """Whether each target held by some list is in the fused top ``k`` of the sources'
        top-``depth`` lists (one K of :meth:`hits`, target by target)."""
        contribution = np.where(self.rank <= depth, weights[self.src] * self.inverse_rank, 0.0)
        target_score, ahead = self._ahead(np.bincount(self.inv, weights=contribution, minlength=self.n_pairs))
        return (target_score > 0) & (ahead < k)


def _search(hits_of, n: int, value, rounds: int) -> np.ndarray:
    """Coordinate search over :data:`_WEIGHT_GRID` from 1 for every source, the first
    source's weight fixed at 1; then the best of that and each source alone (ties keep the
    search's weights). ``value(hits)`` is the tuple to maximise."""
    weights = np.ones(n)
    best = value(hits_of(weights))
    for _ in range(rounds):
        for s in range(1, n):
            for candidate in _WEIGHT_GRID:
                if candidate == weights[s]:
                    continue
                trial = weights.copy()
                trial[s] = candidate
                got = value(hits_of(trial))
                if got > best:
                    best, weights = got, trial
    for alone in np.eye(n):
        got = value(hits_of(alone))
        if got > best:
            best, weights = got, alone
    return weights


class _Learner:
    """The fusion table of some lists and targets, and the weightings scored on it so far (each
    weighting is scored once, whichever search asks for it)."""

    def __init__(self, candidate_frames, targets: pd.DataFrame, ks: Sequence[int], rounds: int) -> None:
        frames = named_frames(candidate_frames)
        check_frame(targets, "targets", ("request_id", "item_id"))
        self.rounds = check_int(rounds, "rounds", minimum=1)
        self.table = _FusionTable(frames, targets[["request_id", "item_id"]].drop_duplicates(), sorted(set(ks)))
        self.names = list(frames)
        self._cache: dict[tuple[float, ...], np.ndarray] = {}

    def hits_of(self, w: np.ndarray) -> np.ndarray:
        key = tuple(float(v) for v in w)
        if key not in self._cache:
            self._cache[key] = self.table.hits(w)
        return self._cache[key]

    def _named(self, weights: np.ndarray) -> dict[str, float]:
        return {name: float(w) for name, w in zip(self.names, weights, strict=True)}

    def overall(self) -> dict[str, float]:
        """One weight set for every K (see :func:`learn_weights`)."""
        n = len(self.names)
        single = np.max([self.hits_of(alone)[0] for alone in np.eye(n)], axis=0)
        return self._named(_search(self.hits_of, n, lambda h: (float((h[0] - single).min()), float(h[0].mean())),
                                   self.rounds))

    def by_k(self, margin_z: float) -> dict[int, FusedAt]:
        """Weights and depth per K, each K's setting tested against the noise margin (see
        :func:`learn_weights_by_k`)."""
        deepest, by_k = max(self.table.ks), {}
        for j, k in enumerate(self.table.ks):
            found = []
            for row in (0, 1):  # the sources' top-K lists, then their top-max(ks) lists
                def value(h: np.ndarray, j: int = j, row: int = row) -> tuple[float, float]:
                    return float(h[row, j]), float(h[row].mean())
                weights = _search(self.hits_of, len(self.names), value, self.rounds)
                found.append((value(self.hits_of(weights)), row, weights))
            # The deeper lists only when they find more (ties keep the cheaper top-K lists).
            _, row, weights = max(found, key=lambda t: (t[0], -t[1]))
            by_k[k] = self._margin(weights, deepest if row else k, j, margin_z)
        return by_k

    def _margin(self, weights: np.ndarray, depth: int, j: int, margin_z: float) -> FusedAt:
        """The searched setting at the ``j``-th K, or the best single source alone (ties to the
        first) when the setting's gain over it is within ``margin_z`` (McNemar, one-sided)."""
        k, alone = self.table.ks[j], np.eye(len(self.names))
        best = int(np.argmax([self.hits_of(one)[0, j] for one in alone]))
        fused, single = self.table.found(weights, k, depth), self.table.found(alone[best], k, k)
        b, c = int((fused & ~single).sum()), int((single & ~fused).sum())
        if margin_z == 0 or b - c > margin_z * np.sqrt(b + c):
            return FusedAt(self._named(weights), depth, MarginTest("fused", self.names[best], b, c))
        return FusedAt(self._named(alone[best]), k, MarginTest("single", self.names[best], b, c))


def learn_weight_sets(candidate_frames, targets: pd.DataFrame, ks: Sequence[int], rounds: int,
                      margin_z: float = MARGIN_Z) -> tuple[dict[str, float], dict[int, FusedAt]]:
    """One weight set for every K (:func:`learn_weights`), and weights and depth per K
    (:func:`learn_weights_by_k`, with its ``margin_z``), from one table and one cache of the
    weightings scored."""
    margin_z = check_float(margin_z, "margin_z", low=0.0)
    learner = _Learner(candidate_frames, targets, ks, rounds)
    return learner.overall(), learner.by_k(margin_z)


def learn_weights(candidate_frames: Mapping[str, pd.DataFrame], targets: pd.DataFrame,
                  ks: Sequence[int] = FUSION_KS, rounds: int = 2) -> dict[str, float]:
    """RRF weights for ``targets`` (request_id, item_id): one weight set whose fused lists are
    at least as good as the best single source at every K of ``ks`` where possible, then as
    good as possible on average.

    The list at K fuses the sources' top-K lists (``candidate_frames`` hold at least the top
    ``max(ks)``), as ``MergedRecall.retrieve(..., k=K)`` does. A coordinate search: starting from 1
    for every source, each source's weight in turn takes the best value of a small grid (0 .. 10)
    with the others fixed, for ``rounds`` passes; the first source's weight stays 1 (only ratios
    matter); then each source alone is a candidate too. "Best" compares first the worst margin
    over K between the fused hits and the best single source's, then the mean hits over K.
    See :func:`learn_weights_by_k` for one weight set per K.
    """
    return _Learner(candidate_frames, targets, ks, rounds).overall()


def learn_weights_by_k(candidate_frames: Mapping[str, pd.DataFrame], targets: pd.DataFrame,
                       ks: Sequence[int] = FUSION_KS, rounds: int = 2, margin_z: float = MARGIN_Z
                       ) -> dict[int, FusedAt]:
    """RRF weights for ``targets``, and the depth of the lists fused, learned for each K of
    ``ks`` on its own.

    The same search as :func:`learn_weights`, run once per K and depth: the fused top K of the
    sources' top-K lists, and of their top-max(ks) lists (an item that several sources list
    below K can enter the top K). "Best" compares first the hits in the fused top K, then the
    mean hits over every K of ``ks`` at that depth; the deeper lists are kept only when they find
    more. Since each source alone is a candidate, the fused list at each K finds at least the
    best single source's hits there.

    Then a noise margin at each K: the setting found is compared with the best single source
    at that K (most hits, ties to the first source), target by target: ``b`` targets found by
    the fused list only, ``c`` by the single source only. The setting is kept when ``b - c >
    margin_z * sqrt(b + c)`` (a one-sided McNemar test: under "no difference" ``b - c`` has
    standard deviation about ``sqrt(b + c)``), else the single source alone (weight 1, the
    others 0, depth K) takes the place: a gain of a few targets on the learning day is noise.

    Parameters
    ----------
    candidate_frames : dict of str -> DataFrame
        Each source's candidates for the learning requests (at least its top ``max(ks)``).
    targets : DataFrame
        ``request_id, item_id`` of the learning day's clicks.
    ks : sequence of int, default :data:`FUSION_KS`
        The list lengths learned.
    rounds : int, default 2
        Passes of the coordinate search.
    margin_z : float, default :data:`MARGIN_Z`
        The noise margin in standard deviations (>= 0); 0 keeps every setting the search finds
        (the behaviour before the margin).

    Returns
    -------
    dict of int -> FusedAt
        The weights of each source, the depth and the margin's record (:class:`MarginTest`),
        for each K (ascending).
    """
    margin_z = check_float(margin_z, "margin_z", low=0.0)
    return _Learner(candidate_frames, targets, ks, rounds).by_k(margin_z)
