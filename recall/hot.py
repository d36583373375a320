"""Hot-list recall: trending items overall, per category and per city (the cold-start fallback).

Heat (strictly point-in-time)
-----------------------------
Every log row is counted on its calendar day: a click adds ``click_weight``, an exposure
``exposure_weight``, an order ``order_weight``. For a request on day ``d`` the heat of item
``i`` sums its daily counts over days ``d - window_days .. d - 1`` only (never day ``d``
itself), each day weighted ``0.5 ** ((d - 1 - day) / half_life_days)``
(``half_life_days=0``: no decay). ``fit`` stores the daily count table of the training days
(<= ``train_end_day``); ``retrieve`` adds the days after it from the logs it is given, so a
saved hot list keeps trending on later days without refitting.

Per-request mix (the personalisation rule)
------------------------------------------
With ``h`` the heat on the request's day, each catalogue item gets

    score = overall_weight  * h(i) / max_j h(j)
          + category_weight * pref_u(cat(i)) * h(i) / max_{j in cat(i)} h(j)
          + city_weight     * [city(i) == city(u)] * h(i) / max_{j in city(i)} h(j)

``pref_u(c)`` is the share of category ``c`` in the user's last ``history_len`` clicks
strictly before the request (0 for every category for a cold user, whose list is then the
overall list plus their city's list). The category term is each preferred category's own
trending list, scaled by how much of the user's recent clicking went there; the city term
applies when items have a ``city`` column and the user's city is in ``logs.users``. Items
are the catalogue (:func:`recall._catalogue.catalogue` of the logs at retrieval when they have
an items table, else the one seen at fit): the items table plus the items the logs show that it
lacks. A missing category (an item without one, or absent from the items table) is a category
of its own, the missing level (stored as ``""``), with its own trending list; a missing city
matches no user. Items with no heat score 0 and come last, in catalogue order (as every tie
is broken: never by the id values). The preferences are read from the clicks of the logs given to
``retrieve`` (the catalogue they are counted in may differ from the one seen at fit).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr._validation import check_float, check_int
from ltr.artifacts import read_manifest, write_manifest
from ltr.logs import Logs, day_index
from recall._catalogue import catalogue
from recall._checks import check_requests, check_train_end_day, id_array
from recall._history import click_events, history_of
from recall.base import RecallSource, ordered_candidates

__all__ = ["HotRecall"]

_FORMAT_VERSION = 1
_ARRAYS = "hot.npz"
_CHUNK_CELLS = 4_000_000  # requests x items scored per dense chunk (~32 MB of float64)


class HotRecall(RecallSource):
    """Time-decayed trending items, personalised by category and city (see module docstring).

    Parameters
    ----------
    window_days : int, default 14
        Trailing days counted.
    half_life_days : float, default 3.0
        Half-life of a day's counts; 0 = every day in the window weighs the same.
    click_weight, exposure_weight, order_weight : float, default 1.0, 0.0, 2.0
        What one click, exposure, order adds to an item's daily count.
    overall_weight, category_weight, city_weight : float, default 0.3, 1.0, 0.3
        Weights of the overall, preferred-category and same-city trending lists.
    history_len : int, default 50
        Recent clicks defining the user's category preferences.
    """

    kind = "hot"
    _fitted_attribute = "count_day_"

    def __init__(self, window_days: int = 14, half_life_days: float = 3.0, click_weight: float = 1.0,
                 exposure_weight: float = 0.0, order_weight: float = 2.0, overall_weight: float = 0.3,
                 category_weight: float = 1.0, city_weight: float = 0.3, history_len: int = 50):
        self.window_days = window_days
        self.half_life_days = half_life_days
        self.click_weight = click_weight
        self.exposure_weight = exposure_weight
        self.order_weight = order_weight
        self.overall_weight = overall_weight
        self.category_weight = category_weight
        self.city_weight = city_weight
        self.history_len = history_len

    def _validate_params(self) -> None:
        check_int(self.window_days, "window_days", minimum=1)
        check_int(self.history_len, "history_len", minimum=1)
        for name in ("half_life_days", "click_weight", "exposure_weight", "order_weight", "overall_weight",
                     "category_weight", "city_weight"):
            check_float(getattr(self, name), name, low=0.0)
        if self.click_weight + self.exposure_weight + self.order_weight <= 0:
            raise ValueError("click_weight, exposure_weight and order_weight must not all be 0. Got all 0 instead.")
        if self.overall_weight + self.category_weight + self.city_weight <= 0:
            raise ValueError("overall_weight, category_weight and city_weight must not all be 0. Got all 0 instead.")

    # ------------------------------------------------------------------ counting

    def _daily_counts(self, logs: Logs) -> pd.DataFrame:
        """Weighted event counts per (day, item_id) over the whole logs."""
        parts = []
        for table, weight in ((logs.clicks, self.click_weight), (logs.exposures, self.exposure_weight),
                              (logs.orders, self.order_weight)):
            if table is None or weight == 0 or not len(table):
                continue
            parts.append(pd.DataFrame({"day": day_index(table["ts"].to_numpy(), logs.tz),
                                       "item_id": table["item_id"].to_numpy(),
                                       "count": np.full(len(table), float(weight))}))
        if not parts:
            return pd.DataFrame({"day": np.zeros(0, np.int32), "item_id": np.zeros(0, np.int64),
                                 "count": np.zeros(0)})
        frame = pd.concat(parts, ignore_index=True)
        return frame.groupby(["day", "item_id"], sort=True)["count"].sum().reset_index()

    @staticmethod
    def _catalogue(logs: Logs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids, categories and cities of the catalogue, in its row order ("" = missing)."""
        items = catalogue(logs)
        ids = id_array(items["item_id"].to_numpy())
        return ids, _levels(items, "category"), _levels(items, "city")

    # ------------------------------------------------------------------ fit

    def fit(self, logs: Logs, train_end_day: int) -> HotRecall:
        """Store the daily count table of days <= ``train_end_day`` and the catalogue.

        Parameters
        ----------
        logs : ltr.logs.Logs
            Without an ``items`` table the catalogue is every item of the logs, all in the
            missing category ``""``.
        train_end_day : int
            Last training day (days since epoch in ``logs.tz``), inclusive.

        Returns
        -------
        self
        """
        return self._fit(logs, train_end_day, self._daily_counts)

    def _fit(self, logs: Logs, train_end_day: int, daily_counts: Callable[[Logs], pd.DataFrame]) -> HotRecall:
        """:meth:`fit` with the counting given: ``daily_counts(logs)`` is :meth:`_daily_counts` or,
        on the Dask engine, the sum of the partitions' counts (``recall/_dask_counts.py``)."""
        self._validate_params()
        train_end_day = check_train_end_day(train_end_day)
        counts = daily_counts(logs)
        counts = counts.loc[counts["day"].to_numpy() <= train_end_day]
        ids, category, city = self._catalogue(logs)
        if not len(ids):
            raise ValueError(f"logs must have items or events on or before train_end_day {train_end_day}. "
                             "Got none.")
        self.item_ids_, self.item_category_, self.item_city_ = ids, category, city
        self.count_day_ = counts["day"].to_numpy(dtype=np.int64)
        self.count_item_ = id_array(counts["item_id"].to_numpy()) if len(counts) else ids[:0]
        self.count_value_ = counts["count"].to_numpy(dtype=np.float64)
        self.train_end_day_ = train_end_day
        return self

    # ------------------------------------------------------------------ retrieve

    def heat(self, days: np.ndarray, logs: Logs) -> tuple[np.ndarray, np.ndarray]:
        """Heat of every catalogue item for requests on each of ``days`` (rows of days < day only).

        Returns
        -------
        item_ids : ndarray, shape (n_items,)
        heat : ndarray, shape (len(days), n_items)
        """
        self._check_fitted()
        days = np.asarray(days, dtype=np.int64)
        item_ids = self._catalogue(logs)[0] if logs.items is not None else self.item_ids_
        later = self._daily_counts(logs)
        later = later.loc[later["day"].to_numpy() > self.train_end_day_]
        c_day = np.concatenate([self.count_day_, later["day"].to_numpy(dtype=np.int64)])
        c_item = pd.Index(item_ids).get_indexer(np.concatenate([self.count_item_, later["item_id"].to_numpy()])
                                                if len(later) else self.count_item_)
        c_val = np.concatenate([self.count_value_, later["count"].to_numpy(dtype=np.float64)])
        known = c_item >= 0
        c_day, c_item, c_val = c_day[known], c_item[known], c_val[known]
        if not len(c_day) or not len(days):
            return item_ids, np.zeros((len(days), len(item_ids)))
        first = int(min(c_day.min(), days.min()))
        span = int(max(c_day.max(), days.max())) - first + 1
        counts = sp.csr_matrix((c_val, (c_day - first, c_item)), shape=(span, len(item_ids)))
        lag = (days[:, None] - 1) - (np.arange(span)[None, :] + first)
        inside = (lag >= 0) & (lag < int(self.window_days))
        decay = 0.5 ** (lag / float(self.half_life_days)) if self.half_life_days > 0 else np.ones(lag.shape)
        weights = np.where(inside, decay, 0.0)
        return item_ids, np.asarray((sp.csr_matrix(weights) @ counts).todense())

    def retrieve(self, requests: pd.DataFrame, logs: Logs, k: int) -> pd.DataFrame:
        """Top-``k`` trending items per request, personalised by the rule in the module docstring.

        Parameters
        ----------
        requests : DataFrame
            ``request_id``, ``user_id``, ``ts`` (unique request ids).
        logs : ltr.logs.Logs
            Logs up to the requests (rows on or after a request's day never count for it).
        k : int
            Candidates per request, >= 1.

        Returns
        -------
        DataFrame
            :data:`recall.base.CANDIDATE_COLUMNS`, source ``"hot"``.
        """
        self._check_fitted()
        k = check_int(k, "k", minimum=1)
        requests = check_requests(requests)
        n_req = len(requests)
        if logs.items is not None:
            item_ids, category, city = self._catalogue(logs)
        else:
            item_ids, category, city = self.item_ids_, self.item_category_, self.item_city_
        req_day = day_index(requests["ts"].to_numpy(), logs.tz).astype(np.int64)
        days, day_of_req = np.unique(req_day, return_inverse=True)
        _, heat = self.heat(days, logs)
        cat_code, cats = pd.factorize(category)
        g = _normalise(heat, np.zeros(len(item_ids), dtype=np.int64), 1)
        c = _normalise(heat, cat_code, len(cats))

        # Category preference: share of each category in the user's recent clicks.
        clicks = click_events(logs)
        history = history_of(clicks, pd.Index(item_ids).get_indexer(clicks["item_id"].to_numpy()))
        hist = history.last_before(requests["user_id"].to_numpy(dtype=object), requests["ts"].to_numpy(),
                                   int(self.history_len))[0]
        valid = hist >= 0
        rows = np.broadcast_to(np.arange(n_req)[:, None], hist.shape)[valid]
        pref = sp.csr_matrix((np.ones(int(valid.sum())), (rows, cat_code[hist[valid]])), shape=(n_req, len(cats)))
        n_hist = np.maximum(valid.sum(axis=1), 1)
        pref = sp.diags(1.0 / n_hist) @ pref

        users = logs.users
        city_term = self.city_weight > 0 and (city != "").any() and users is not None and "city" in users.columns
        if city_term and users is not None:
            city_code, cities = pd.factorize(city)
            u_city = pd.Series(users["city"].astype(str).to_numpy(), index=users["user_id"].to_numpy())
            req_city = pd.Index(cities).get_indexer(u_city.reindex(requests["user_id"].to_numpy()).to_numpy())
            city_norm = _normalise(heat, city_code, len(cities))
            city_norm[:, city == ""] = 0.0

        pref = pref.tocsr()
        chunk = max(1, _CHUNK_CELLS // max(len(item_ids), 1))
        out_req, out_item, out_score = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
        for start in range(0, n_req, chunk):  # bounded memory, not a per-request loop
            sl = slice(start, min(start + chunk, n_req))
            d = day_of_req[sl]
            score = float(self.overall_weight) * g[d]
            score += float(self.category_weight) * np.asarray(pref[sl].todense())[:, cat_code] * c[d]
            if city_term:
                same = req_city[sl, None] == city_code[None, :]
                score += float(self.city_weight) * same * city_norm[d]
            top = _top_k(score, k)
            out_req.append(np.repeat(np.arange(sl.start, sl.stop), top.shape[1]))
            out_item.append(top.ravel())
            out_score.append(np.take_along_axis(score, top, axis=1).ravel())
        return ordered_candidates(requests["request_id"].to_numpy(), np.concatenate(out_req), item_ids,
                                  np.concatenate(out_item), np.concatenate(out_score), self.kind, k)

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> None:
        """Write ``hot.npz`` (daily counts, catalogue) and a verified manifest."""
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        np.savez(root / _ARRAYS, item_ids=self.item_ids_, item_category=self.item_category_,
                 item_city=self.item_city_, count_day=self.count_day_, count_item=self.count_item_,
                 count_value=self.count_value_)
        write_manifest(root, f"recall.{self.kind}", _FORMAT_VERSION, {
            "params": self.get_params(), "train_end_day": self.train_end_day_,
            "n_items": len(self.item_ids_), "n_count_rows": len(self.count_day_)})

    @classmethod
    def load(cls, directory: str | Path) -> HotRecall:
        """Load a source written by :meth:`save` (checksums verified, no pickle)."""
        manifest = read_manifest(directory, f"recall.{cls.kind}", _FORMAT_VERSION)
        meta = manifest["metadata"]
        self = cls(**meta["params"])
        with np.load(Path(directory) / _ARRAYS, allow_pickle=False) as arrays:
            for name in ("item_ids", "item_category", "item_city", "count_day", "count_item", "count_value"):
                setattr(self, f"{name}_", arrays[name])
        self.train_end_day_ = int(meta["train_end_day"])
        return self


def _levels(items: pd.DataFrame, column: str) -> np.ndarray:
    """``column`` as text, a missing value (or no such column) as the missing level ``""``."""
    if column not in items.columns:
        return np.full(len(items), "", dtype=str)
    values = items[column]
    text = values.astype(object).where(values.notna(), "").to_numpy()
    return np.array([str(v) for v in text.tolist()], dtype=str) if len(text) else np.array([], dtype=str)


def _normalise(heat: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Divide each item's heat by the largest heat of its group, per row (0 where the group is cold)."""
    top = np.zeros((heat.shape[0], max(n_groups, 1)))
    if heat.size:
        np.maximum.at(top.T, group, heat.T)  # the transposed view writes into top
    denom = top[:, group]
    return np.divide(heat, denom, out=np.zeros_like(heat), where=denom > 0)


def _top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Columns of each row's ``k`` best entries, best first, ties to the lower column (= item id).

    Selection without a full sort: everything above the row's k-th largest value plus the
    tied entries at that value from the left, so each row holds exactly ``min(k, n_cols)``;
    then a stable sort of those few by score.
    """
    n_rows, n_cols = score.shape
    kk = min(k, n_cols)
    if kk == n_cols:
        chosen = np.ones(score.shape, dtype=bool)
    else:
        kth = np.partition(score, n_cols - kk, axis=1)[:, n_cols - kk][:, None]
        tied = score == kth
        room = kk - (score > kth).sum(axis=1, keepdims=True)
        chosen = (score > kth) | (tied & (np.cumsum(tied, axis=1) <= room))
    cols = np.nonzero(chosen)[1].reshape(n_rows, kk)  # row-major: ascending columns per row
    order = np.argsort(-np.take_along_axis(score, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)
