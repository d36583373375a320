"""Candidate-list metrics: hitrate, recall, NDCG, mean hit position and coverage at K.

They take a *candidates* frame and a *targets* frame:

* ``candidates``: one row per (request, candidate item) with columns ``request_id``,
  ``item_id`` and an integer ``rank`` (1 = best; another column name via ``rank_col``).
  A request's **top K** are its rows with ``rank <= K``. Pairs (request_id, item_id) and
  (request_id, rank) must be unique.
* ``targets``: one row per relevant (request_id, item_id) pair, e.g. the clicked or the
  ordered items. Pairs must be unique. A target whose request has no candidate list, or
  whose item is not in the list, is a miss.

They return a DataFrame indexed by ``k`` (sorted, distinct) whether one K or several are
asked for. A K with no hit gives NaN where the value is undefined (mean hit position), with
a :class:`ltr.metrics.MetricWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from eval.metrics._checks import check_candidates, check_ks, check_targets
from ltr._validation import check_int
from ltr.metrics import MetricWarning

__all__ = ["coverage_at_k", "hitrate_at_k", "mean_hit_position", "ndcg_at_k", "recall_at_k"]


def _target_hit_ranks(
    candidates: pd.DataFrame, targets: pd.DataFrame, rank_col: str
) -> tuple[np.ndarray, np.ndarray]:
    """For each target row: its request's dense code and the rank it was found at (inf if not)."""
    keys = ["request_id", "item_id"]
    left = targets[keys].reset_index(drop=True)
    if len(candidates) == 0:
        rank = np.full(len(left), np.inf)
    else:
        for column in keys:
            t_num = pd.api.types.is_numeric_dtype(left[column].dtype)
            c_num = pd.api.types.is_numeric_dtype(candidates[column].dtype)
            if t_num != c_num:
                raise TypeError(
                    f"targets[{column!r}] and candidates[{column!r}] must have comparable types. "
                    f"Got {left[column].dtype} and {candidates[column].dtype} instead."
                )
        right = candidates[[*keys, rank_col]].rename(columns={rank_col: "_rank"})
        merged = left.merge(right, how="left", on=keys, validate="many_to_one")
        rank = merged["_rank"].to_numpy(dtype=np.float64, na_value=np.inf)
    codes, _ = pd.factorize(left["request_id"])
    return codes.astype(np.int64, copy=False), rank


def _k_frame(ks: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.Index(ks, name="k"))


def _hits(
    candidates: pd.DataFrame, targets: pd.DataFrame, k: int | Iterable[int], rank_col: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked cut-offs, and per target row its request code and hit rank (inf for a miss)."""
    ks = check_ks(k)
    codes, rank = _target_hit_ranks(check_candidates(candidates, rank_col), check_targets(targets), rank_col)
    return ks, codes, rank


def _per_request(ks: np.ndarray, name: str, values: np.ndarray, n_requests: int) -> pd.DataFrame:
    return _k_frame(ks, {name: values, "n_requests": np.full(ks.size, n_requests, dtype=np.int64)})


def hitrate_at_k(
    candidates: pd.DataFrame,
    targets: pd.DataFrame,
    k: int | Iterable[int],
    *,
    rank_col: str = "rank",
) -> pd.DataFrame:
    """Share of target rows found in the top K of their request's candidate list.

    ``hitrate@K = #{target rows (r, i): i has rank <= K in r's list} / #target rows``
    (seed 000/002 convention: hits divided by the number of target items; a request
    with 3 clicked items contributes 3 rows). Targets whose request has no list are
    misses. See the module docstring for the frame layout.

    Parameters
    ----------
    candidates : pandas.DataFrame
        Columns ``request_id``, ``item_id``, ``rank_col`` (int, 1 = best).
    targets : pandas.DataFrame
        Columns ``request_id``, ``item_id``; relevant pairs, at least one row.
    k : int or iterable of int
        Cut-off(s), each >= 1; larger than a list is fine (the whole list counts).
    rank_col : str, default="rank"
        Name of the rank column of ``candidates`` (e.g. ``"rank_pos"``).

    Returns
    -------
    pandas.DataFrame
        Index ``k`` (sorted, distinct), columns ``hitrate``, ``hits``, ``n_targets``.
    """
    ks, _, rank = _hits(candidates, targets, k, rank_col)
    hits = np.searchsorted(np.sort(rank), ks, side="right").astype(np.int64)
    return _k_frame(
        ks,
        {
            "hitrate": hits / rank.size,
            "hits": hits,
            "n_targets": np.full(ks.size, rank.size, dtype=np.int64),
        },
    )


def recall_at_k(
    candidates: pd.DataFrame,
    targets: pd.DataFrame,
    k: int | Iterable[int],
    *,
    rank_col: str = "rank",
) -> pd.DataFrame:
    """Per-request recall in the top K, averaged over requests with at least one target.

    ``recall@K = mean over requests r in targets of
    #{targets of r with rank <= K} / #{targets of r}``; every request appears in
    ``targets`` at least once, so each has >= 1 target. Unlike :func:`hitrate_at_k`,
    each request weighs the same whatever its number of targets.

    Parameters
    ----------
    candidates, targets, k, rank_col
        As in :func:`hitrate_at_k`.

    Returns
    -------
    pandas.DataFrame
        Index ``k``, columns ``recall``, ``n_requests``.
    """
    ks, codes, rank = _hits(candidates, targets, k, rank_col)
    n_targets = np.bincount(codes)
    recall = np.array(
        [np.mean(np.bincount(codes, weights=rank <= cut) / n_targets) for cut in ks]
    )
    return _per_request(ks, "recall", recall, n_targets.size)


def ndcg_at_k(
    candidates: pd.DataFrame,
    targets: pd.DataFrame,
    k: int | Iterable[int],
    *,
    rank_col: str = "rank",
) -> pd.DataFrame:
    """Binary-gain NDCG in the top K, averaged over requests with at least one target.

    For request ``r`` with ``T_r`` targets:
    ``DCG@K = sum over targets with rank q <= K of 1 / log2(q + 1)`` and
    ``IDCG@K = sum_{j=1..min(K, T_r)} 1 / log2(j + 1)`` (all targets at the top);
    ``NDCG@K`` is the mean of ``DCG / IDCG`` over the requests in ``targets``. The
    discount uses the rank value itself, so gaps in the ranks are positions left empty.

    Parameters
    ----------
    candidates, targets, k, rank_col
        As in :func:`hitrate_at_k`.

    Returns
    -------
    pandas.DataFrame
        Index ``k``, columns ``ndcg`` (in [0, 1]), ``n_requests``.
    """
    ks, codes, rank = _hits(candidates, targets, k, rank_col)
    n_targets = np.bincount(codes)
    ideal_table = np.cumsum(1.0 / np.log2(np.arange(2, int(n_targets.max()) + 2)))
    found = np.isfinite(rank)
    gain = np.zeros(rank.size)
    gain[found] = 1.0 / np.log2(rank[found] + 1.0)
    ndcg = np.empty(ks.size)
    for j, cut in enumerate(ks):
        dcg = np.bincount(codes, weights=np.where(rank <= cut, gain, 0.0), minlength=n_targets.size)
        ideal = ideal_table[np.minimum(n_targets, cut) - 1]
        ndcg[j] = np.mean(dcg / ideal)
    return _per_request(ks, "ndcg", ndcg, n_targets.size)


def mean_hit_position(
    candidates: pd.DataFrame,
    targets: pd.DataFrame,
    k: int | Iterable[int],
    *,
    rank_col: str = "rank",
) -> pd.DataFrame:
    """Mean rank (1 = best) of the target rows found in the top K (seed 002 "average position").

    ``mean_hit_position@K = mean of rank over target rows with rank <= K``; lower is
    better. NaN, with a :class:`MetricWarning`, for a K with no hit.

    Parameters
    ----------
    candidates, targets, k, rank_col
        As in :func:`hitrate_at_k`.

    Returns
    -------
    pandas.DataFrame
        Index ``k``, columns ``mean_hit_position``, ``hits``.
    """
    ks, _, rank = _hits(candidates, targets, k, rank_col)
    ordered = np.sort(rank[np.isfinite(rank)])
    hits = np.searchsorted(ordered, ks, side="right")
    prefix = np.concatenate(([0.0], np.cumsum(ordered)))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = prefix[hits] / hits
    if (hits == 0).any():
        warnings.warn(
            f"mean_hit_position is undefined with no hit; NaN for k={ks[hits == 0].tolist()}.",
            MetricWarning,
            stacklevel=2,
        )
    return _k_frame(ks, {"mean_hit_position": mean, "hits": hits.astype(np.int64)})


def coverage_at_k(
    candidates: pd.DataFrame,
    k: int | Iterable[int],
    catalogue_size: int,
    *,
    rank_col: str = "rank",
) -> pd.DataFrame:
    """Catalogue coverage: distinct items in the union of all top-K lists / catalogue size.

    ``coverage@K = #{item: rank <= K in at least one request's list} / catalogue_size``.
    (Seed 002 calls the hit rate "coverage"; here coverage is about the catalogue, the
    hit rate is :func:`hitrate_at_k`.)

    Parameters
    ----------
    candidates : pandas.DataFrame
        Columns ``request_id``, ``item_id``, ``rank_col``; may be empty (coverage 0).
    k : int or iterable of int
        Cut-off(s), each >= 1.
    catalogue_size : int
        Number of items that could be recommended (>= the distinct items listed).
    rank_col : str, default="rank"
        Name of the rank column.

    Returns
    -------
    pandas.DataFrame
        Index ``k``, columns ``coverage``, ``n_items``, ``catalogue_size``.
    """
    ks = check_ks(k)
    catalogue_size = check_int(catalogue_size, "catalogue_size", minimum=1)
    frame = check_candidates(candidates, rank_col)
    # An item is in the union of top-K lists iff its best rank over all lists is <= K.
    best = np.sort(frame.groupby("item_id", sort=False)[rank_col].min().to_numpy(dtype=np.int64))
    if best.size > catalogue_size:
        raise ValueError(
            f"catalogue_size must be >= the number of distinct items in candidates ({best.size}). "
            f"Got {catalogue_size} instead."
        )
    n_items = np.searchsorted(best, ks, side="right").astype(np.int64)
    return _k_frame(
        ks,
        {
            "coverage": n_items / catalogue_size,
            "n_items": n_items,
            "catalogue_size": np.full(ks.size, int(catalogue_size), dtype=np.int64),
        },
    )
