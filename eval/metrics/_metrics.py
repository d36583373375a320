"""Exact, vectorised offline metrics for pointwise rankers and candidate lists.

Classification metrics take 1-D array-likes (numpy arrays, lists, pandas Series):

* :func:`auc`, :func:`gauc` -- ROC AUC and per-group (per-user) AUC, ties get half credit;
* :func:`logloss`, :func:`normalized_entropy`;
* :func:`calibration_table`, :func:`expected_calibration_error`,
  :func:`predicted_actual_ratio`.

Candidate-list metrics take a *candidates* frame and a *targets* frame:

* ``candidates``: one row per (request, candidate item) with columns ``request_id``,
  ``item_id`` and an integer ``rank`` (1 = best; another column name via ``rank_col``).
  A request's **top K** are its rows with ``rank <= K``. Pairs (request_id, item_id) and
  (request_id, rank) must be unique.
* ``targets``: one row per relevant (request_id, item_id) pair, e.g. the clicked or the
  ordered items. Pairs must be unique. A target whose request has no candidate list, or
  whose item is not in the list, is a miss.

They return a DataFrame indexed by ``k`` (sorted, distinct) whether one K or several are
asked for: :func:`hitrate_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k`,
:func:`coverage_at_k`, :func:`mean_hit_position`.

Undefined values (a single class, no hit) are NaN and come with a :class:`MetricWarning`;
empty input raises ``ValueError``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import ndtri

from eval.metrics._helpers import (
    _as_1d,
    _auc_exact,
    _check_binary_labels,
    _check_candidates,
    _check_group_ids,
    _check_ks,
    _check_lengths,
    _check_probabilities,
    _check_scores,
    _check_targets,
    _group_auc_exact,
    _show,
    _target_hit_ranks,
)

__all__ = [
    "GroupAUC",
    "MetricWarning",
    "auc",
    "calibration_table",
    "coverage_at_k",
    "expected_calibration_error",
    "gauc",
    "hitrate_at_k",
    "logloss",
    "mean_hit_position",
    "ndcg_at_k",
    "normalized_entropy",
    "predicted_actual_ratio",
    "recall_at_k",
]

_EPS = 1e-15
_GAUC_WEIGHTS = ("exposures", "positives")


class MetricWarning(UserWarning):
    """A metric is undefined for this input (e.g. one class only) and was returned as NaN."""


@dataclass(frozen=True)
class GroupAUC:
    """Result of :func:`gauc`.

    Attributes
    ----------
    value : float
        Weighted mean of the per-group AUCs; NaN when no group has both classes.
    n_groups_used : int
        Groups with at least one positive and one negative row.
    n_groups_skipped : int
        Groups with a single class (their AUC is undefined); they carry no weight.
    weight : str
        ``"exposures"`` (rows per group) or ``"positives"`` (positive rows per group).
    """

    value: float
    n_groups_used: int
    n_groups_skipped: int
    weight: str

    def __float__(self) -> float:
        return float(self.value)


# --------------------------------------------------------------------------------------
# AUC
# --------------------------------------------------------------------------------------
def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve, exactly, with half credit for tied scores.

    ``AUC = (#{(p, n): s_p > s_n} + 0.5 * #{(p, n): s_p == s_n}) / (n_pos * n_neg)`` over
    all pairs of a positive row ``p`` and a negative row ``n``: the Mann-Whitney U
    statistic, equal to ``sklearn.metrics.roc_auc_score``. Computed in O(n log n) by
    sorting each class once; the arithmetic is in integers, so the result is exact up to
    the final division.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels: bool, or numbers equal to 0 or 1.
    y_score : array-like of shape (n,)
        Scores, higher = more likely positive. Any numeric dtype; no NaN. Only the order
        matters (float32 input is sorted as float32, which is faster).

    Returns
    -------
    float
        The AUC in [0, 1]; NaN with a :class:`MetricWarning` when ``y_true`` has one class.

    Raises
    ------
    ValueError
        Empty input, different lengths, labels other than 0/1, NaN scores.
    TypeError
        Non-numeric input.

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    is_pos = _check_binary_labels(y_true)
    scores = _check_scores(y_score)
    _check_lengths(is_pos.shape[0], y_score=scores)
    value = _auc_exact(is_pos, scores)
    if np.isnan(value):
        warnings.warn(
            "auc is undefined when y_true has a single class; returning NaN.",
            MetricWarning,
            stacklevel=2,
        )
    return value


def gauc(
    y_true: ArrayLike,
    y_score: ArrayLike,
    groups: ArrayLike,
    weight: Literal["exposures", "positives"] = "exposures",
) -> GroupAUC:
    """Group AUC: per-group (usually per-user) AUC, averaged with group weights.

    For each group ``g`` with both classes, ``AUC_g`` is :func:`auc` on the group's rows
    (ties get half credit). The result is ``sum_g w_g * AUC_g / sum_g w_g`` where

    * ``weight="exposures"`` (default): ``w_g`` = number of rows of ``g`` (its exposures,
      as in FuxiCTR's impression-weighted GAUC);
    * ``weight="positives"``: ``w_g`` = number of positive rows of ``g`` (as in RecBole).

    Groups with a single class have no AUC; they are skipped, get no weight, and are
    counted in ``n_groups_skipped``. Each ``AUC_g`` is exact (integer pair counts); the
    whole runs in O(n log n) by sorting the rows keyed by (group, score) once per class.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels: bool, or numbers equal to 0 or 1.
    y_score : array-like of shape (n,)
        Scores, higher = more likely positive; no NaN.
    groups : array-like of shape (n,)
        Group id of each row (e.g. ``user_id``); any hashable values, no missing ids.
    weight : {"exposures", "positives"}, default="exposures"
        Group weight, see above.

    Returns
    -------
    GroupAUC
        ``value`` (NaN with a :class:`MetricWarning` when no group has both classes),
        ``n_groups_used``, ``n_groups_skipped``, ``weight``.

    Raises
    ------
    ValueError
        Empty input, different lengths, labels other than 0/1, NaN scores, missing group
        ids, unknown ``weight``.

    Examples
    --------
    >>> r = gauc([0, 1, 0, 1, 1], [0.2, 0.9, 0.5, 0.1, 0.3], ["a", "a", "b", "b", "c"])
    >>> (r.value, r.n_groups_used, r.n_groups_skipped)
    (0.5, 2, 1)
    """
    if weight not in _GAUC_WEIGHTS:
        raise ValueError(f"weight must be 'exposures' or 'positives'. Got {_show(weight)} instead.")
    is_pos = _check_binary_labels(y_true)
    scores = _check_scores(y_score)
    n = is_pos.shape[0]
    _check_lengths(n, y_score=scores)
    codes, n_groups = _check_group_ids(groups, n)
    n_rows, n_pos, group_auc = _group_auc_exact(is_pos, scores, codes, n_groups)
    used = ~np.isnan(group_auc)
    n_used = int(used.sum())
    if n_used == 0:
        warnings.warn(
            "gauc is undefined when no group has both classes; returning NaN.",
            MetricWarning,
            stacklevel=2,
        )
        value = float("nan")
    else:
        w = (n_rows if weight == "exposures" else n_pos)[used]
        # fsum is correctly rounded, so the value does not depend on the group order.
        value = math.fsum(w * group_auc[used]) / float(w.sum())
    return GroupAUC(
        value=value, n_groups_used=n_used, n_groups_skipped=n_groups - n_used, weight=weight
    )


# --------------------------------------------------------------------------------------
# Log loss
# --------------------------------------------------------------------------------------
def _check_eps(eps: float) -> float:
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0.0 <= eps < 0.5:
        raise ValueError(f"eps must be a float in [0, 0.5). Got {_show(eps)} instead.")
    return float(eps)


def _label_pred(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    is_pos = _check_binary_labels(y_true)
    pred = _check_probabilities(y_pred)
    _check_lengths(is_pos.shape[0], y_pred=pred)
    return is_pos, pred


def _mean_logloss(is_pos: np.ndarray, pred: np.ndarray, eps: float) -> float:
    p = np.clip(pred, eps, 1.0 - eps)
    with np.errstate(divide="ignore"):
        per_row = np.where(is_pos, np.log(p), np.log1p(-p))
    return float(-per_row.mean())


def logloss(y_true: ArrayLike, y_pred: ArrayLike, *, eps: float = _EPS) -> float:
    """Mean binary cross-entropy in nats.

    ``-mean(y * log(p) + (1 - y) * log(1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``
    so a confident wrong prediction of exactly 0 or 1 costs ``-log(eps)`` (about 34.5)
    instead of infinity.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities of the positive class, in [0, 1].
    eps : float, default=1e-15
        Clipping bound; 0 disables clipping (a wrong 0/1 prediction then gives inf).

    Returns
    -------
    float

    Examples
    --------
    >>> round(logloss([1, 0], [0.5, 0.5]), 6)
    0.693147
    """
    eps = _check_eps(eps)
    is_pos, pred = _label_pred(y_true, y_pred)
    return _mean_logloss(is_pos, pred, eps)


def normalized_entropy(y_true: ArrayLike, y_pred: ArrayLike, *, eps: float = _EPS) -> float:
    """Normalised entropy: log loss divided by the entropy of the base rate.

    ``NE = logloss(y, p) / H(r)`` with ``r = mean(y)`` and
    ``H(r) = -(r log r + (1 - r) log(1 - r))``: the log loss relative to always
    predicting the observed base rate (NE = 1 for that predictor, lower is better).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    eps : float, default=1e-15
        Clipping bound of the log loss, see :func:`logloss`.

    Returns
    -------
    float
        NaN with a :class:`MetricWarning` when ``y_true`` has one class (``H(r) = 0``).
    """
    eps = _check_eps(eps)
    is_pos, pred = _label_pred(y_true, y_pred)
    rate = float(is_pos.mean())
    if rate in (0.0, 1.0):
        warnings.warn(
            "normalized_entropy is undefined when y_true has a single class; returning NaN.",
            MetricWarning,
            stacklevel=2,
        )
        return float("nan")
    base = -(rate * np.log(rate) + (1.0 - rate) * np.log1p(-rate))
    return _mean_logloss(is_pos, pred, eps) / base


# --------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------
def _check_n_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1. Got {_show(n_bins)} instead.")
    return int(n_bins)


def _equal_mass_bins(pred: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort order and bin (0..m-1, non-decreasing) of each sorted prediction.

    A run of equal predictions starting at sorted position ``i`` goes to bin
    ``floor(i * n_bins / n)``; unused bin numbers are then closed up. Equal predictions
    never straddle bins, which keeps the table independent of row order.
    """
    n = pred.shape[0]
    order = np.argsort(pred, kind="stable")
    ordered = pred[order]
    run_start = np.zeros(n, dtype=np.int64)
    new_run = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    run_start[new_run] = new_run
    np.maximum.accumulate(run_start, out=run_start)
    raw = run_start * n_bins // n
    bins = np.concatenate(([0], np.cumsum(raw[1:] != raw[:-1])))
    return order, bins


def _wilson(
    positives: np.ndarray, count: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    z = ndtri(0.5 + confidence / 2.0)
    n = count.astype(np.float64)
    rate = positives / n
    denom = 1.0 + z * z / n
    centre = (rate + z * z / (2.0 * n)) / denom
    half = z / denom * np.sqrt(rate * (1.0 - rate) / n + z * z / (4.0 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def _check_confidence(confidence: float) -> float:
    is_number = isinstance(confidence, (int, float)) and not isinstance(confidence, bool)
    if not is_number or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be a float in (0, 1). Got {_show(confidence)} instead.")
    return float(confidence)


def calibration_table(
    y_true: ArrayLike, y_pred: ArrayLike, n_bins: int = 10, *, confidence: float = 0.95
) -> pd.DataFrame:
    """Reliability table over equal-mass bins of the predictions.

    Rows are sorted by prediction and cut into ``n_bins`` bins of (about) equal count; a
    run of equal predictions that starts at sorted position ``i`` (0-based) belongs
    wholly to bin ``floor(i * n_bins / n)``, so ties never straddle bins. Bins left empty
    by this are dropped and the rest renumbered 0, 1, ... (fewer than ``n_bins`` rows when
    predictions have big ties or ``n < n_bins``).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    n_bins : int, default=10
        Requested number of bins (>= 1).
    confidence : float, default=0.95
        Level of the Wilson score interval for the actual rate.

    Returns
    -------
    pandas.DataFrame
        Index ``bin`` (0 = lowest predictions), columns ``pred_min``, ``pred_max``,
        ``count``, ``positives``, ``mean_predicted``, ``actual_rate``
        (= positives / count), ``ci_low``, ``ci_high`` (Wilson interval of
        ``actual_rate``, no continuity correction).
    """
    n_bins = _check_n_bins(n_bins)
    confidence = _check_confidence(confidence)
    is_pos, pred = _label_pred(y_true, y_pred)
    order, bins = _equal_mass_bins(pred, n_bins)
    ordered = pred[order]
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    ends = np.concatenate((starts[1:], [pred.shape[0]])) - 1
    count = np.diff(np.concatenate((starts, [pred.shape[0]])))
    positives = np.add.reduceat(is_pos[order].astype(np.int64), starts)
    mean_pred = np.add.reduceat(ordered, starts) / count
    ci_low, ci_high = _wilson(positives, count, confidence)
    return pd.DataFrame(
        {
            "pred_min": ordered[starts],
            "pred_max": ordered[ends],
            "count": count.astype(np.int64),
            "positives": positives,
            "mean_predicted": mean_pred,
            "actual_rate": positives / count,
            "ci_low": ci_low,
            "ci_high": ci_high,
        },
        index=pd.RangeIndex(starts.size, name="bin"),
    )


def expected_calibration_error(y_true: ArrayLike, y_pred: ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error over the equal-mass bins of :func:`calibration_table`.

    ``ECE = sum_b (count_b / n) * |mean_predicted_b - actual_rate_b|``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    n_bins : int, default=10
        Requested number of equal-mass bins.

    Returns
    -------
    float
        In [0, 1]; 0 for a predictor calibrated within every bin.
    """
    table = calibration_table(y_true, y_pred, n_bins)
    gap = (table["mean_predicted"] - table["actual_rate"]).abs().to_numpy()
    count = table["count"].to_numpy()
    return float(np.dot(count, gap) / count.sum())


def predicted_actual_ratio(
    y_true: ArrayLike, y_pred: ArrayLike, segment: ArrayLike
) -> pd.DataFrame:
    """Mean predicted vs actual rate per segment (e.g. per position, category, bucket).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_pred : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    segment : array-like of shape (n,)
        Segment of each row; any hashable values. Missing values form their own segment
        (they are not dropped).

    Returns
    -------
    pandas.DataFrame
        Indexed by the sorted segment values (index name: the Series name, else
        ``"segment"``), columns ``count``, ``positives``, ``mean_predicted``,
        ``actual_rate`` and ``ratio = mean_predicted / actual_rate`` (> 1: the model
        over-predicts; inf when the actual rate is 0 and the mean prediction is not,
        NaN when both are 0).
    """
    is_pos, pred = _label_pred(y_true, y_pred)
    n = is_pos.shape[0]
    name = getattr(segment, "name", None) if isinstance(segment, pd.Series) else None
    name = "segment" if name is None else name
    if isinstance(segment, (pd.Series, pd.Index)):
        seg = segment.to_numpy()
    else:
        seg = _as_1d(segment, "segment")
    if len(seg) != n:
        raise ValueError(
            f"segment must have the same length as y_true ({n}). Got {len(seg)} instead."
        )
    frame = pd.DataFrame({"_seg": seg, "_y": is_pos.astype(np.int64), "_p": pred})
    grouped = frame.groupby("_seg", sort=True, dropna=False)
    out = pd.DataFrame(
        {
            "count": grouped["_y"].size().astype(np.int64),
            "positives": grouped["_y"].sum().astype(np.int64),
            "mean_predicted": grouped["_p"].mean(),
        }
    )
    out["actual_rate"] = out["positives"] / out["count"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out["mean_predicted"].to_numpy() / out["actual_rate"].to_numpy()
    out.index.name = name
    return out


# --------------------------------------------------------------------------------------
# Candidate-list metrics
# --------------------------------------------------------------------------------------
def _k_frame(ks: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.Index(ks, name="k"))


def _hits(
    candidates: pd.DataFrame, targets: pd.DataFrame, rank_col: str
) -> tuple[np.ndarray, np.ndarray]:
    candidates = _check_candidates(candidates, rank_col)
    targets = _check_targets(targets)
    return _target_hit_ranks(candidates, targets, rank_col)


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
    ks = _check_ks(k)
    _, rank = _hits(candidates, targets, rank_col)
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
    ks = _check_ks(k)
    codes, rank = _hits(candidates, targets, rank_col)
    n_targets = np.bincount(codes)
    recall = np.array(
        [np.mean(np.bincount(codes, weights=rank <= cut) / n_targets) for cut in ks]
    )
    n_requests = np.full(ks.size, n_targets.size, dtype=np.int64)
    return _k_frame(ks, {"recall": recall, "n_requests": n_requests})


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
    ks = _check_ks(k)
    codes, rank = _hits(candidates, targets, rank_col)
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
    n_requests = np.full(ks.size, n_targets.size, dtype=np.int64)
    return _k_frame(ks, {"ndcg": ndcg, "n_requests": n_requests})


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
    ks = _check_ks(k)
    _, rank = _hits(candidates, targets, rank_col)
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
    ks = _check_ks(k)
    is_int = isinstance(catalogue_size, (int, np.integer)) and not isinstance(catalogue_size, bool)
    if not is_int or catalogue_size < 1:
        raise ValueError(
            f"catalogue_size must be an int >= 1. Got {_show(catalogue_size)} instead."
        )
    frame = _check_candidates(candidates, rank_col)
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
