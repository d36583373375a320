"""Training samples for the torch recall models (NIP, two-tower): positives and hard negatives.

Positives are clicked or ordered exposures (orders weigh more). Each positive carries a
fixed-width row of *hard* negatives from its own request, labelled with a cascade level
(seed 000):

* level 0: exposed-not-clicked items (``n_exposed`` per positive, default 4, i.e. 1:4);
* levels 1..6: items the ranker scored for the request (``candidates.rank_pos``), sampled
  ``n_per_segment`` per rank segment 1-10, 11-50, 51-100, 101-200, 201-400, 401-900.

Random negatives (popularity-sampled, uniform, in-batch) are drawn by the trainer per batch.
Items clicked or ordered in the request are never negatives of that request.

Orders never depend on the id values: positives are sorted by request time, then the request's
row in ``logs.requests``, then the item's row in the catalogue (:mod:`recall._catalogue`), and
hard negatives by level, then catalogue row; relabelling the ids gives the same samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr._validation import check_bool, check_float, check_int
from ltr.logs import Logs, join_samples
from recall._catalogue import catalogue_ids
from recall._checks import check_train_end_day, id_array

__all__ = ["EXPOSED_LEVEL", "RANK_SEGMENTS", "PairSamples", "build_training_samples"]

#: Upper bounds (inclusive) of the ranker segments; segment s covers (bounds[s-1], bounds[s]].
RANK_SEGMENTS: tuple[int, ...] = (10, 50, 100, 200, 400, 900)
#: Cascade level of exposed-not-clicked negatives; ranker segments are levels 1..6.
EXPOSED_LEVEL = 0


@dataclass(frozen=True, eq=False)
class PairSamples:
    """Positives with their hard negatives, one row per positive (sorted by ts, request, item).

    Attributes
    ----------
    request_id, user_id, item_id : ndarray, shape (n,)
        The request, its user and the positive item: int64 for integer ids, str for strings.
    ts : ndarray of int64, shape (n,)
        The request time.
    weight : ndarray of float32, shape (n,)
        1 for a click, ``order_weight`` for an ordered item.
    ordered : ndarray of bool, shape (n,)
    hard_items : ndarray, shape (n, width)
        Hard negative item ids, padded with -1 (int64 for integer ids, else object with an
        int -1 as the pad; ``hard_levels`` marks the padding either way).
    hard_levels : ndarray of int8, shape (n, width)
        Cascade level of each hard negative (0 exposed-not-clicked, 1..6 ranker segment),
        -1 on padding.
    """

    request_id: np.ndarray
    user_id: np.ndarray
    ts: np.ndarray
    item_id: np.ndarray
    weight: np.ndarray
    ordered: np.ndarray
    hard_items: np.ndarray
    hard_levels: np.ndarray

    def __len__(self) -> int:
        return int(self.item_id.shape[0])


def _sample_per_group(group: np.ndarray, n_per_group: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask keeping at most ``n_per_group`` random rows of each group value."""
    if group.size == 0 or n_per_group == 0:
        return np.zeros(group.size, dtype=bool)
    order = np.lexsort((rng.random(group.size), group))
    sorted_group = group[order]
    starts = np.r_[True, sorted_group[1:] != sorted_group[:-1]]
    pos = np.arange(group.size)
    rank = pos - np.maximum.accumulate(np.where(starts, pos, 0))
    keep = np.empty(group.size, dtype=bool)
    keep[order] = rank < n_per_group
    return keep


def _pack(row: np.ndarray, items: np.ndarray, levels: np.ndarray, n_rows: int,
          item_order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scatter (row, item, level) triples into -1 padded (n_rows, width) arrays, by level, then
    ``item_order`` (the items' catalogue rows)."""
    order = np.lexsort((item_order, levels, row))
    row, items, levels = row[order], items[order], levels[order]
    counts = np.bincount(row, minlength=n_rows)
    width = int(counts.max(initial=0))
    out_items = np.full((n_rows, width), -1, dtype=np.int64 if items.dtype.kind in "iu" else object)
    out_levels = np.full((n_rows, width), -1, dtype=np.int8)
    if row.size:
        slot = np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
        out_items[row, slot] = items
        out_levels[row, slot] = levels
    return out_items, out_levels


def build_training_samples(logs: Logs, train_end_day: int, *, order_weight: float = 3.0,
                           n_exposed: int = 4, n_per_segment: int = 4, cascade: bool = True,
                           seed: int = 0) -> PairSamples:
    """Positives and their per-request hard negatives from days <= ``train_end_day``.

    Parameters
    ----------
    logs : Logs
        Validated logs; ``candidates`` (with ``rank_pos``) is optional.
    train_end_day : int
        Last training day (days since epoch in the logs' time zone).
    order_weight : float, default 3.0
        Weight of an ordered positive (a click weighs 1).
    n_exposed : int, default 4
        Exposed-not-clicked negatives per positive (1 positive : 4).
    n_per_segment : int, default 4
        Ranker-scored negatives per rank segment (:data:`RANK_SEGMENTS`) and positive.
    cascade : bool, default True
        False leaves the hard negatives out (``hard_items`` has width 0).
    seed : int, default 0
        Seed of the negative sampling.

    Returns
    -------
    PairSamples

    Raises
    ------
    ValueError
        On bad parameters, or when the training days hold no positive.
    """
    train_end_day = check_train_end_day(train_end_day)
    order_weight = check_float(order_weight, "order_weight", low=0.0, low_open=True)
    n_exposed = check_int(n_exposed, "n_exposed", minimum=0)
    n_per_segment = check_int(n_per_segment, "n_per_segment", minimum=0)
    check_bool(cascade, "cascade")
    rng = np.random.default_rng(seed)

    samples = join_samples(logs).samples
    samples = samples.loc[samples["day"].to_numpy() <= train_end_day]
    label = (samples["click"].to_numpy() > 0) | (samples["order"].to_numpy() > 0)
    pos = samples.loc[label]
    if len(pos) == 0:
        raise ValueError(f"logs must hold clicks or orders on days <= train_end_day={train_end_day}. "
                         "Got none instead.")
    items = pd.Index(catalogue_ids(logs))
    pos = pos.assign(_request_row=pd.Index(logs.requests["request_id"]).get_indexer(pos["request_id"]),
                     _item_row=items.get_indexer(pos["item_id"]))
    pos = pos.sort_values(["request_ts", "_request_row", "_item_row"], kind="stable")
    n = len(pos)
    pos_req = id_array(pos["request_id"].to_numpy())
    pos_item = id_array(pos["item_id"].to_numpy())
    ordered = pos["order"].to_numpy() > 0
    weight = np.where(ordered, np.float32(order_weight), np.float32(1.0)).astype(np.float32)

    rows_l, items_l, levels_l = [], [], []
    if cascade:
        row_of_pos = pd.DataFrame({"request_id": pos_req, "_row": np.arange(n)})
        positives = pd.DataFrame({"request_id": pos_req, "item_id": pos_item, "_pos": True})
        if n_exposed:
            neg = samples.loc[~label, ["request_id", "item_id"]]
            pairs = row_of_pos.merge(neg, on="request_id", how="inner")
            row = pairs["_row"].to_numpy(dtype=np.int64)
            keep = _sample_per_group(row, n_exposed, rng)
            rows_l.append(row[keep])
            items_l.append(id_array(pairs["item_id"].to_numpy())[keep])
            levels_l.append(np.full(int(keep.sum()), EXPOSED_LEVEL, dtype=np.int8))
        cands = logs.candidates
        if n_per_segment and cands is not None and "rank_pos" in cands.columns:
            cand = cands.loc[cands["request_id"].isin(pd.unique(pos_req)), ["request_id", "item_id", "rank_pos"]]
            rank = cand["rank_pos"].to_numpy(dtype=np.float64)
            segment = np.searchsorted(np.asarray(RANK_SEGMENTS, dtype=np.float64), rank, side="left") + 1
            ok = np.isfinite(rank) & (rank >= 1) & (segment <= len(RANK_SEGMENTS))
            cand = cand.loc[ok].assign(_level=segment[ok].astype(np.int8))
            cand = cand.drop_duplicates(["request_id", "item_id"])
            # The request's own positives are never its negatives.
            cand = cand.merge(positives.drop_duplicates(["request_id", "item_id"]), on=["request_id", "item_id"],
                              how="left")
            cand = cand.loc[cand["_pos"].isna()]
            pairs = row_of_pos.merge(cand, on="request_id", how="inner")
            row = pairs["_row"].to_numpy(dtype=np.int64)
            level = pairs["_level"].to_numpy(dtype=np.int8)
            keep = _sample_per_group(row * 16 + level, n_per_segment, rng)
            rows_l.append(row[keep])
            items_l.append(id_array(pairs["item_id"].to_numpy())[keep])
            levels_l.append(level[keep])
    if rows_l:
        hard = np.concatenate(items_l)
        hard_items, hard_levels = _pack(np.concatenate(rows_l), hard, np.concatenate(levels_l), n,
                                        items.get_indexer(hard))
    else:
        hard_items = np.full((n, 0), -1, dtype=np.int64)
        hard_levels = np.full((n, 0), -1, dtype=np.int8)
    return PairSamples(
        request_id=pos_req, user_id=id_array(pos["user_id"].to_numpy()),
        ts=pos["request_ts"].to_numpy(dtype=np.int64), item_id=pos_item, weight=weight,
        ordered=ordered, hard_items=hard_items, hard_levels=hard_levels,
    )
