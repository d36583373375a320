"""Item-based collaborative filtering recall (co-clicks with a popularity penalty).

Similarity (fit, training days only)
------------------------------------
Each user's training clicks (days <= ``train_end_day``) are sorted by time. Two clicks of the
same user on different items form a *co-click pair* when they are at most ``window_clicks``
clicks apart in the user's sequence and at most ``window_days`` apart in time (0 = no limit;
the defaults pair every two items of a user, the textbook item-CF over all history). A pair
weighs

* ``1 / log(2 + n_clicks(u))``: inverse user frequency, so a very active user, whose clicks
  are less specific, counts less (``iuf=False`` turns it off);
* ``0.5 ** (age / half_life_days)`` with ``age`` the days from the later click to the end of
  the training window (``half_life_days=0`` turns decay off), so recent co-clicks count more.

A user contributes each unordered item pair once (their heaviest pair), so clicking A and B
ten times does not count ten times. ``co[i, j]`` sums those weights over users and

    sim[i, j] = co[i, j] / (n_i ** alpha * n_j ** (1 - alpha))

where ``n_i`` is the number of distinct training users who clicked ``i``. ``alpha=0.5`` is
cosine; a smaller ``alpha`` penalises popular *candidate* items ``j`` more, and ``alpha=1``
(the default) is the co-click rate ``P(j | i)``, which does not penalise them at all: measured
best on simulated worlds and the KuaiRand development slice (README, recall section). Only the
``neighbours`` most similar items of each item are kept (ties by item order), as a
``scipy.sparse.csr_matrix`` (row = clicked item, column = candidate item).

Retrieval
---------
For a request the user's last ``history_len`` clicks strictly before the request's ``ts``
(an :class:`ltr.logs.UserHistory`) form a sparse history row weighted by recency,
``0.5 ** (hours_before_request / (24 * history_half_life_days))`` (``0`` = equal weights);
``scores = history @ sim`` for all requests at once. ``exclude_seen`` drops the items the
user clicked (``"clicks"``, the default) or also was exposed to (``"exposures"``) strictly
before the request (:mod:`recall._seen`). When a request has fewer
than ``k`` item-CF candidates (a cold user, say) and ``fill_popular`` is true, the list is
filled with the most-clicked training items (also subject to ``exclude_seen`` and the
catalogue), scored ``-1 / (1 + clicks)`` so every filler ranks below every item-CF candidate
(whose scores are positive). ``repeat_weight`` scores the history items themselves (a user
often clicks an item again); 0 turns that off. Only catalogue items of the logs given at
retrieval time (:func:`recall._catalogue.catalogue`: the items table plus the items the logs
show that it lacks) are returned. Items are coded in catalogue order, so every tie is broken
by catalogue row, never by the id values.

The fitted source keeps its training days' clicks; ``retrieve`` takes the clicks after
``train_end_day`` (and, for ``exclude_seen="exposures"``, the exposures) from the logs it is
given, or only what it keeps when ``logs`` is None (no log scan: the fast single request).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr._validation import check_bool, check_float, check_int
from ltr.artifacts import ArtifactError, read_manifest, write_manifest
from ltr.logs import SECONDS_PER_DAY, Logs, UserHistory
from recall._catalogue import catalogue_ids
from recall._checks import check_requests, check_train_end_day, id_array
from recall._history import history_of, split_clicks, with_clicks_after
from recall._seen import check_exclude_seen, drop_seen, most_seen, seen_pairs
from recall._state import under_prefix, with_prefix
from recall.base import RecallSource, ordered_candidates

__all__ = ["ItemCFRecall"]

_FORMAT_VERSION = 3  # 2: the training clicks are stored (history.* arrays); 3: the catalogue mask
_ARRAYS = "itemcf.npz"


class ItemCFRecall(RecallSource):
    """Item-CF recall: co-click similarity with a popularity penalty (see module docstring).

    Parameters
    ----------
    window_days : float, default 0.0
        Two clicks pair only when at most this many days apart; 0 = no limit.
    window_clicks : int, default 0
        ... and at most this many clicks apart in the user's click sequence; 0 = no limit.
    alpha : float, default 1.0
        Popularity penalty exponent in ``co / (n_i**alpha * n_j**(1-alpha))``, in [0, 1]
        (0.5 = cosine; 1 = co-click rate, measured best: bench/bench_real_recall.py and
        bench/bench_recall_sources.py).
    half_life_days : float, default 0.0
        Half-life of a co-click's weight by its age at the end of training; 0 = no decay.
    iuf : bool, default False
        Weight pairs by ``1 / log(2 + clicks of the user)``.
    neighbours : int, default 200
        Similar items kept per item.
    history_len : int, default 50
        Recent clicks used per request.
    history_half_life_days : float, default 0.0
        Half-life of a history click's weight by its age at the request; 0 = equal weights.
    repeat_weight : float, default 0.0
        Self-similarity of a history item (re-recommend what the user clicked); 0 = off.
        Useless with ``exclude_seen`` other than "none".
    exclude_seen : {"clicks", "exposures", "none"}, default "clicks"
        Items never returned: those the user clicked (or was also exposed to) before the request.
    fill_popular : bool, default True
        Fill short lists (cold users) with the most-clicked training items.
    """

    kind = "itemcf"
    _fitted_attribute = "similarity_"

    def __init__(self, window_days: float = 0.0, window_clicks: int = 0, alpha: float = 1.0,
                 half_life_days: float = 0.0, iuf: bool = False, neighbours: int = 200, history_len: int = 50,
                 history_half_life_days: float = 0.0, repeat_weight: float = 0.0, exclude_seen: str = "clicks",
                 fill_popular: bool = True):
        self.window_days = window_days
        self.window_clicks = window_clicks
        self.alpha = alpha
        self.half_life_days = half_life_days
        self.iuf = iuf
        self.neighbours = neighbours
        self.history_len = history_len
        self.history_half_life_days = history_half_life_days
        self.repeat_weight = repeat_weight
        self.exclude_seen = exclude_seen
        self.fill_popular = fill_popular

    def _validate_params(self) -> None:
        check_float(self.window_days, "window_days", low=0.0)
        check_int(self.window_clicks, "window_clicks", minimum=0)
        check_float(self.alpha, "alpha", low=0.0, high=1.0)
        check_float(self.half_life_days, "half_life_days", low=0.0)
        check_bool(self.iuf, "iuf")
        check_int(self.neighbours, "neighbours", minimum=1)
        check_int(self.history_len, "history_len", minimum=1)
        check_float(self.history_half_life_days, "history_half_life_days", low=0.0)
        check_float(self.repeat_weight, "repeat_weight", low=0.0)
        check_exclude_seen(self.exclude_seen)
        check_bool(self.fill_popular, "fill_popular")

    # ------------------------------------------------------------------ fit

    def fit(self, logs: Logs, train_end_day: int) -> ItemCFRecall:
        """Build the item-item similarity from clicks on days <= ``train_end_day``.

        Parameters
        ----------
        logs : ltr.logs.Logs
        train_end_day : int
            Last training day (days since epoch in ``logs.tz``), inclusive.

        Returns
        -------
        self
        """
        return self._fit(logs, train_end_day, self._co_clicks)

    def _fit(self, logs: Logs, train_end_day: int, co_clicks: Callable[..., sp.csr_matrix]) -> ItemCFRecall:
        """:meth:`fit` with the co-click counting given: ``co_clicks(user, item, ts, train_end_day,
        n_items)`` is :meth:`_co_clicks` or, on the Dask engine, its sum over user groups counted
        on the workers (``recall/_dask_counts.py``; the counts add up over users)."""
        self._validate_params()
        train_end_day = check_train_end_day(train_end_day)
        clicks, _ = split_clicks(logs, train_end_day)
        if not len(clicks):
            raise ValueError(f"logs must have clicks on or before train_end_day {train_end_day}. Got none.")
        # Item codes in catalogue order, so ties (broken by code) never depend on the id values.
        item_ids = id_array(catalogue_ids(logs))
        n_items = len(item_ids)
        codes = pd.Index(item_ids).get_indexer(clicks["item_id"].to_numpy()).astype(np.int64)

        user = pd.factorize(clicks["user_id"].to_numpy(dtype=object))[0].astype(np.int64)
        ts = clicks["ts"].to_numpy(dtype=np.int64)
        order = np.lexsort((codes, ts, user))
        user, item, ts = user[order], codes[order], ts[order]
        n_users_item = np.bincount(item[np.unique(user * n_items + item, return_index=True)[1]],
                                   minlength=n_items).astype(np.float64)
        co = co_clicks(user, item, ts, train_end_day, n_items).tocoo()
        denom = n_users_item[co.row] ** float(self.alpha) * n_users_item[co.col] ** (1.0 - float(self.alpha))
        self.similarity_ = _top_per_row(co.row, co.col, co.data / denom, int(self.neighbours), n_items)
        self.item_ids_ = item_ids
        self.in_catalogue_ = np.isin(item_ids, id_array(catalogue_ids(logs)))
        item_clicks = np.bincount(item, minlength=n_items)
        popular = np.lexsort((np.arange(n_items), -item_clicks))
        popular = popular[item_clicks[popular] > 0]
        self.popular_items_ = popular.astype(np.int64)
        self.popular_scores_ = -1.0 / (1.0 + item_clicks[popular].astype(np.float64))
        self.history_ = history_of(clicks, codes)
        self.train_end_day_ = train_end_day
        self.n_train_clicks_ = len(item)
        return self

    def _co_clicks(self, user: np.ndarray, item: np.ndarray, ts: np.ndarray, train_end_day: int,
                   n_items: int) -> sp.csr_matrix:
        """Summed pair weights ``co`` (symmetric, zero diagonal) of clicks sorted by user, then time."""
        n_users = int(user.max()) + 1
        clicks_per_user = np.bincount(user, minlength=n_users)
        user_w = 1.0 / np.log(2.0 + clicks_per_user) if self.iuf else np.ones(n_users)
        if not self.window_clicks and not self.window_days and not self.half_life_days:
            # Every pair of a user's items weighs the same: one sparse product, no lag loop.
            x = sp.csr_matrix((np.ones(len(user)), (user, item)), shape=(n_users, n_items))
            x.data[:] = 1.0
            co = (x.T @ sp.diags(user_w) @ x).tocsr()
            co.setdiag(0.0)
            co.eliminate_zeros()
            return co
        end_ts = (train_end_day + 1) * SECONDS_PER_DAY
        window = float(self.window_days) * SECONDS_PER_DAY if self.window_days else np.inf
        max_lag = int(self.window_clicks) or int(clicks_per_user.max())

        # One vectorised pass per lag, each over all clicks at once.
        pu, pa, pb, pw = [], [], [], []
        for lag in range(1, max_lag + 1):
            if lag >= len(user):
                break
            same = (user[lag:] == user[:-lag]) & (ts[lag:] - ts[:-lag] <= window) & (item[lag:] != item[:-lag])
            if not same.any():
                continue
            later = np.flatnonzero(same) + lag
            earlier = later - lag
            w = user_w[user[later]]
            if self.half_life_days > 0:
                age_days = (end_ts - ts[later]) / SECONDS_PER_DAY
                w = w * 0.5 ** (age_days / float(self.half_life_days))
            pu.append(user[later])
            pa.append(np.minimum(item[later], item[earlier]))
            pb.append(np.maximum(item[later], item[earlier]))
            pw.append(w)
        if not pu:
            return sp.csr_matrix((n_items, n_items), dtype=np.float64)
        pairs = pd.DataFrame({"u": np.concatenate(pu), "a": np.concatenate(pa), "b": np.concatenate(pb),
                              "w": np.concatenate(pw)})
        pairs = pairs.groupby(["u", "a", "b"], sort=False)["w"].max().reset_index()
        a, b, w = pairs["a"].to_numpy(), pairs["b"].to_numpy(), pairs["w"].to_numpy()
        co = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                           shape=(n_items, n_items)).tocsr()
        co.sum_duplicates()
        return co

    def click_history(self, logs: Logs | None) -> UserHistory:
        """The fitted training clicks plus the clicks of ``logs`` after ``train_end_day_``, as
        similarity rows (clicks on items unseen at fit time have no neighbours and are dropped)."""
        self._check_fitted()
        return with_clicks_after(self.history_, logs, self.train_end_day_, self._codes)

    def _codes(self, item_ids: np.ndarray) -> np.ndarray:
        return pd.Index(self.item_ids_).get_indexer(np.asarray(item_ids)).astype(np.int64)

    # ------------------------------------------------------------------ retrieve

    def retrieve(self, requests: pd.DataFrame, logs: Logs | None, k: int) -> pd.DataFrame:
        """Top-``k`` items per request from the user's clicks strictly before the request.

        Parameters
        ----------
        requests : DataFrame
            ``request_id``, ``user_id``, ``ts`` (unique request ids).
        logs : ltr.logs.Logs or None
            Logs holding the users' clicks after the training days (and exposures for
            ``exclude_seen="exposures"``); any rows at or after a request's ``ts`` are ignored
            for it. None: only the clicks the source keeps (no log scan).
        k : int
            Candidates per request, >= 1.

        Returns
        -------
        DataFrame
            :data:`recall.base.CANDIDATE_COLUMNS`, source ``"itemcf"``.
        """
        self._check_fitted()
        k = check_int(k, "k", minimum=1)
        requests = check_requests(requests)
        n_req, n_items = len(requests), len(self.item_ids_)
        req_user = requests["user_id"].to_numpy(dtype=object)
        req_ts = requests["ts"].to_numpy(dtype=np.int64)
        history = self.click_history(logs)
        hist_items, hist_ts, _ = history.last_before(req_user, req_ts, int(self.history_len))
        valid = hist_items >= 0
        rows = np.broadcast_to(np.arange(n_req)[:, None], hist_items.shape)[valid]
        if self.history_half_life_days > 0:
            age_days = (req_ts[:, None] - hist_ts)[valid] / SECONDS_PER_DAY
            weights = 0.5 ** (age_days / float(self.history_half_life_days))
        else:
            weights = np.ones(int(valid.sum()))
        hist_matrix = sp.csr_matrix((weights, (rows, hist_items[valid])), shape=(n_req, n_items))
        scores = hist_matrix @ self.similarity_
        if self.repeat_weight > 0:
            scores = scores + float(self.repeat_weight) * hist_matrix
        scores = scores.tocoo()
        cand_req, cand_item, cand_score = scores.row.astype(np.int64), scores.col.astype(np.int64), scores.data
        keep = cand_score > 0
        cand_req, cand_item, cand_score = cand_req[keep], cand_item[keep], cand_score[keep]
        seen = seen_pairs(self.exclude_seen, history, req_user, req_ts, logs, self._codes)
        catalogue = self._catalogue(logs)
        keep = catalogue[cand_item] & drop_seen(cand_req, cand_item, seen, n_items)
        order = np.lexsort((cand_item[keep], -np.asarray(cand_score[keep], dtype=np.float64), cand_req[keep]))
        cand_req, cand_item, cand_score = cand_req[keep][order], cand_item[keep][order], cand_score[keep][order]
        if self.fill_popular and len(self.popular_items_):
            cand_req, cand_item, cand_score = self._fill(catalogue, seen, k, n_req, cand_req, cand_item, cand_score)
        return ordered_candidates(requests["request_id"].to_numpy(), cand_req, self.item_ids_, cand_item,
                                  cand_score, self.kind, k)

    def _catalogue(self, logs: Logs | None) -> np.ndarray:
        """Which similarity rows may be returned: the catalogue of ``logs`` when they have an
        items table (:func:`recall._catalogue.catalogue_ids`), else the training catalogue."""
        if logs is None or logs.items is None:
            return self.in_catalogue_
        return np.isin(self.item_ids_, id_array(catalogue_ids(logs)))

    def _fill(self, catalogue: np.ndarray, seen: tuple[np.ndarray, np.ndarray], k: int, n_req: int,
              cand_req: np.ndarray, cand_item: np.ndarray,
              cand_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Most-clicked items after each short list, in popularity order (their scores, all
        negative, are already non-increasing with ties by item id)."""
        n_items = len(self.item_ids_)
        popular = self.popular_items_[catalogue[self.popular_items_]]
        scores = self.popular_scores_[catalogue[self.popular_items_]]
        counts = np.bincount(cand_req, minlength=n_req)
        # Enough fillers for the longest shortfall even after the seen items are dropped.
        n_fill = min(len(popular), k + most_seen(seen, n_req))
        short = np.flatnonzero(counts < k)
        fill_req = np.repeat(short, n_fill)
        fill_item = np.tile(popular[:n_fill], len(short))
        fill_score = np.tile(scores[:n_fill], len(short))
        keep = ~np.isin(fill_req * n_items + fill_item, cand_req * n_items + cand_item)
        keep &= drop_seen(fill_req, fill_item, seen, n_items)
        return (np.concatenate([cand_req, fill_req[keep]]), np.concatenate([cand_item, fill_item[keep]]),
                np.concatenate([cand_score, fill_score[keep]]))

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> None:
        """Write ``itemcf.npz`` (CSR arrays, item ids, popularity, training clicks) and a verified manifest."""
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        sim = self.similarity_
        history_meta, history_arrays = self.history_.to_state()
        arrays: dict[str, Any] = {"indptr": sim.indptr.astype(np.int64), "indices": sim.indices.astype(np.int64),
                                  "data": sim.data.astype(np.float64), "item_ids": self.item_ids_,
                                  "popular_items": self.popular_items_, "popular_scores": self.popular_scores_,
                                  "in_catalogue": self.in_catalogue_,
                                  **with_prefix("history", history_arrays)}
        np.savez(root / _ARRAYS, **arrays)
        write_manifest(root, f"recall.{self.kind}", _FORMAT_VERSION, {
            "params": self.get_params(), "train_end_day": self.train_end_day_,
            "n_train_clicks": self.n_train_clicks_, "n_items": len(self.item_ids_),
            "nnz": int(sim.nnz), "history": history_meta})

    @classmethod
    def load(cls, directory: str | Path) -> ItemCFRecall:
        """Load a source written by :meth:`save` (checksums verified, no pickle)."""
        manifest = read_manifest(directory, f"recall.{cls.kind}", _FORMAT_VERSION)
        if manifest["format_version"] < _FORMAT_VERSION:
            raise ArtifactError(f"{directory} was written in format {manifest['format_version']}, without the "
                                f"training clicks and catalogue this version keeps (format {_FORMAT_VERSION}); "
                                "train it again.")
        meta = manifest["metadata"]
        self = cls(**meta["params"])
        with np.load(Path(directory) / _ARRAYS, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        n = int(meta["n_items"])
        self.similarity_ = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n))
        self.item_ids_ = arrays["item_ids"]
        self.popular_items_ = arrays["popular_items"]
        self.popular_scores_ = arrays["popular_scores"]
        self.in_catalogue_ = arrays["in_catalogue"]
        self.history_ = UserHistory.from_state(meta["history"], under_prefix("history", arrays))
        self.train_end_day_ = int(meta["train_end_day"])
        self.n_train_clicks_ = int(meta["n_train_clicks"])
        return self


def _top_per_row(row: np.ndarray, col: np.ndarray, val: np.ndarray, n: int, size: int) -> sp.csr_matrix:
    """Keep the ``n`` largest values of each row (ties by column) as a CSR matrix."""
    order = np.lexsort((col, -val, row))
    row, col, val = row[order], col[order], val[order]
    starts = np.searchsorted(row, np.arange(size))
    pos = np.arange(len(row)) - starts[row] if len(row) else np.zeros(0, dtype=np.int64)
    keep = pos < n
    out = sp.csr_matrix((val[keep], (row[keep], col[keep])), shape=(size, size))
    out.sort_indices()
    return out
