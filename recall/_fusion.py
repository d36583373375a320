"""Reciprocal-rank fusion of several recall sources' lists, and its weights learned on a
validation day (see :mod:`recall.merge` for the rule)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ltr._validation import check_float, check_frame, check_int
from recall.base import CANDIDATE_COLUMNS, finalize_candidates, validate_candidates

__all__ = ["FUSION_KS", "fuse", "learn_weights", "mask_labels", "named_frames"]

_RRF_C = 60.0
#: The list lengths weights are learned for (the funnel's hitrate@K range).
FUSION_KS = (50, 100, 200, 400, 800, 1200)
_WEIGHT_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.5, 2.0, 4.0, 10.0)


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
    that many weightings are scored fast (:func:`learn_weights`)."""

    def __init__(self, frames: dict[str, pd.DataFrame], targets: pd.DataFrame) -> None:
        rows = pd.concat([f[["request_id", "item_id", "rank"]].assign(src=i) for i, f in enumerate(frames.values())],
                         ignore_index=True)
        req_code, req_ids = pd.factorize(rows["request_id"], sort=True)
        item_code, item_ids = pd.factorize(rows["item_id"], sort=True)
        key = req_code.astype(np.int64) * max(len(item_ids), 1) + item_code
        self.uniq, self.inv = np.unique(key, return_inverse=True)
        self.src = rows["src"].to_numpy()
        self.inverse_rank = 1.0 / (_RRF_C + rows["rank"].to_numpy(dtype=np.float64))
        self.req = self.uniq // max(len(item_ids), 1)
        t_req = pd.Index(req_ids).get_indexer(targets["request_id"].to_numpy())
        t_item = pd.Index(item_ids).get_indexer(targets["item_id"].to_numpy())
        found = (t_req >= 0) & (t_item >= 0)
        t_key = t_req[found].astype(np.int64) * max(len(item_ids), 1) + t_item[found]
        self.is_target = np.isin(self.uniq, t_key)
        self.n_targets = len(targets)
        self.n_sources = len(frames)

    def hits(self, weights: np.ndarray, ks: Sequence[int]) -> np.ndarray:
        """Targets found in the top K of the fused lists, for each K."""
        score = np.bincount(self.inv, weights=weights[self.src] * self.inverse_rank, minlength=len(self.uniq))
        listed = np.bincount(self.inv, weights=(weights[self.src] > 0).astype(np.float64),
                             minlength=len(self.uniq)) > 0
        order = np.lexsort((self.uniq, -score, self.req))
        req = self.req[order]
        rank = np.arange(len(order)) - np.searchsorted(req, req, side="left") + 1
        good = (self.is_target & listed)[order]
        return np.array([int((good & (rank <= k)).sum()) for k in ks])


def learn_weights(candidate_frames: Mapping[str, pd.DataFrame], targets: pd.DataFrame,
                  ks: Sequence[int] = FUSION_KS, rounds: int = 2) -> dict[str, float]:
    """RRF weights for ``targets`` (request_id, item_id): fused lists at least as good as the
    best single source at every K of ``ks`` where possible, then as good as possible on average.

    A coordinate search: starting from 1 for every source, each source's weight in turn takes
    the best value of a small grid (0 .. 10) with the others fixed, for ``rounds`` passes; the
    first source's weight stays 1 (only ratios matter). "Best" compares first the worst margin
    over K between the fused hits and the best single source's, then the mean hits over K.
    """
    frames = named_frames(candidate_frames)
    check_frame(targets, "targets", ("request_id", "item_id"))
    targets = targets[["request_id", "item_id"]].drop_duplicates()
    table = _FusionTable(frames, targets)
    n = len(frames)
    single = np.max([table.hits(np.eye(n)[s], ks) for s in range(n)], axis=0)

    def value(w: np.ndarray) -> tuple[float, float]:
        hits = table.hits(w, ks)
        return float((hits - single).min()), float(hits.mean())

    weights = np.ones(n)
    best = value(weights)
    for _ in range(check_int(rounds, "rounds", minimum=1)):
        for s in range(1, n):
            for candidate in _WEIGHT_GRID:
                trial = weights.copy()
                trial[s] = candidate
                if candidate == weights[s] or not (trial > 0).any():
                    continue
                got = value(trial)
                if got > best:
                    best, weights = got, trial
    return {name: float(w) for name, w in zip(frames, weights, strict=True)}
