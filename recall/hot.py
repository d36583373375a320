"""Hot-list recall: trending items overall, per category and per city (the cold-start fallback).

Heat (strictly point-in-time)
-----------------------------
Every log row is counted in its time bin of ``bin_hours`` hours (bins of epoch time, UTC): a
click adds ``click_weight``, an exposure ``exposure_weight``, an order ``order_weight``. For a
request in bin ``b`` the heat of item ``i`` sums its counts over the bins
``b - window_days * 24 / bin_hours .. b - 1`` only (never the request's own bin, so only rows
strictly before the request count), each weighted ``0.5 ** (age_days / half_life_days)``
with ``age_days = (b - 1 - bin) * bin_hours / 24`` (``half_life_days=0``: no decay). Hourly
bins (the default) let the heat follow a video trending since this morning, which a daily
table only sees tomorrow (measured on the KuaiRand slice, bench/bench_real_recall.py).
``fit`` stores the count table of the training days (<= ``train_end_day``, days in
``logs.tz``); ``retrieve`` adds the later rows from the logs it is given, so a saved hot list
keeps trending without refitting.

Per-request mix (the personalisation rule)
------------------------------------------
With ``h`` the heat at the request's time, each catalogue item gets

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

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr._validation import check_bool, check_float, check_int
from ltr.artifacts import read_manifest, write_manifest
from ltr.logs import Logs, UserHistory, day_index
from recall._catalogue import catalogue
from recall._checks import check_requests, check_train_end_day, id_array
from recall._history import history_of, split_clicks, with_clicks_after
from recall._seen import check_exclude_seen, seen_pairs
from recall._state import under_prefix, with_prefix
from recall.base import RecallSource, ordered_candidates

__all__ = ["HotRecall"]

_FORMAT_VERSION = 3  # 2: counts per time bin (bin_hours), not per day; 3: clicks and user cities kept
_ARRAYS = "hot.npz"
_CHUNK_CELLS = 4_000_000
_MIX_CATEGORY = (0.0, 0.1, 0.3, 1.0, 3.0)  # category weights tried by learn_mix (overall weight 1)
_MIX_CITY = (0.0, 0.3)
_MIX_KS = (10, 50, 100)  # requests x items scored per dense chunk (~32 MB of float64)


class HotRecall(RecallSource):
    """Time-decayed trending items, personalised by category and city (see module docstring).

    Parameters
    ----------
    window_days : int, default 14
        Trailing days counted.
    half_life_days : float, default 1.0
        Half-life of the counts; 0 = every bin in the window weighs the same.
    bin_hours : int, default 1
        Width of the count bins in hours (24: daily bins, in UTC).
    click_weight, exposure_weight, order_weight : float, default 1.0, 0.0, 2.0
        What one click, exposure, order adds to an item's daily count.
    overall_weight, category_weight, city_weight : float, default 0.3, 1.0, 0.3
        Weights of the overall, preferred-category and same-city trending lists.
    learn_mix : bool, default True
        Choose the three weights on the last training day instead: the list is fitted on
        the days before it, and the mix (the given one, and overall 1 with category 0 .. 3
        and city 0 or 0.3) whose lists find most of the day's clicks (mean hitrate@10, 50,
        100 over up to 2,000 requests) is kept (``weights_``). How much users follow their
        categories differs a lot between logs (3x the hitrate on simulated worlds, -25% on
        the KuaiRand slice), so no fixed mix serves both.
    history_len : int, default 50
        Recent clicks defining the user's category preferences.
    exclude_seen : {"clicks", "exposures", "none"}, default "clicks"
        Items never returned: those the user clicked (or was also exposed to) before the request.
    """

    kind = "hot"
    _fitted_attribute = "count_bin_"

    def __init__(self, window_days: int = 14, half_life_days: float = 1.0, bin_hours: int = 1,
                 click_weight: float = 1.0,
                 exposure_weight: float = 0.0, order_weight: float = 2.0, overall_weight: float = 0.3,
                 category_weight: float = 1.0, city_weight: float = 0.3, learn_mix: bool = True,
                 history_len: int = 50, exclude_seen: str = "clicks"):
        self.window_days = window_days
        self.half_life_days = half_life_days
        self.bin_hours = bin_hours
        self.click_weight = click_weight
        self.exposure_weight = exposure_weight
        self.order_weight = order_weight
        self.overall_weight = overall_weight
        self.category_weight = category_weight
        self.city_weight = city_weight
        self.learn_mix = learn_mix
        self.history_len = history_len
        self.exclude_seen = exclude_seen

    def _validate_params(self) -> None:
        check_int(self.window_days, "window_days", minimum=1)
        check_int(self.bin_hours, "bin_hours", minimum=1)
        check_bool(self.learn_mix, "learn_mix")
        check_int(self.history_len, "history_len", minimum=1)
        check_exclude_seen(self.exclude_seen)
        for name in ("half_life_days", "click_weight", "exposure_weight", "order_weight", "overall_weight",
                     "category_weight", "city_weight"):
            check_float(getattr(self, name), name, low=0.0)
        if self.click_weight + self.exposure_weight + self.order_weight <= 0:
            raise ValueError("click_weight, exposure_weight and order_weight must not all be 0. Got all 0 instead.")
        if self.overall_weight + self.category_weight + self.city_weight <= 0:
            raise ValueError("overall_weight, category_weight and city_weight must not all be 0. Got all 0 instead.")

    # ------------------------------------------------------------------ counting

    def _counts(self, logs: Logs, train_end_day: int, later: bool) -> pd.DataFrame:
        """Weighted event counts per (bin, item_id) of the rows on days <= ``train_end_day``
        (``later=False``) or after it (``later=True``)."""
        parts = []
        for table, weight in ((logs.clicks, self.click_weight), (logs.exposures, self.exposure_weight),
                              (logs.orders, self.order_weight)):
            if table is None or weight == 0 or not len(table):
                continue
            ts = table["ts"].to_numpy(dtype=np.int64)
            keep = (day_index(ts, logs.tz) > train_end_day) == later
            parts.append(pd.DataFrame({"bin": ts[keep] // (3600 * int(self.bin_hours)),
                                       "item_id": table["item_id"].to_numpy()[keep],
                                       "count": np.full(int(keep.sum()), float(weight))}))
        return self._counts_frame(parts)

    @staticmethod
    def _counts_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
        if not parts:
            return pd.DataFrame({"bin": np.zeros(0, np.int64), "item_id": np.zeros(0, np.int64), "count": np.zeros(0)})
        frame = pd.concat(parts, ignore_index=True)
        return frame.groupby(["bin", "item_id"], sort=True)["count"].sum().reset_index()

    @staticmethod
    def _catalogue(logs: Logs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids, categories and cities of the catalogue, in its row order ("" = missing)."""
        items = catalogue(logs)
        ids = id_array(items["item_id"].to_numpy())
        return ids, _levels(items, "category"), _levels(items, "city")

    # ------------------------------------------------------------------ fit

    def fit(self, logs: Logs, train_end_day: int) -> HotRecall:
        """Store the count table of days <= ``train_end_day`` and the catalogue.

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
        self._validate_params()
        train_end_day = check_train_end_day(train_end_day)
        counts = self._counts(logs, train_end_day, later=False)
        ids, category, city = self._catalogue(logs)
        if not len(ids):
            raise ValueError(f"logs must have items or events on or before train_end_day {train_end_day}. "
                             "Got none.")
        self.item_ids_, self.item_category_, self.item_city_ = ids, category, city
        self.count_bin_ = counts["bin"].to_numpy(dtype=np.int64)
        self.count_item_ = id_array(counts["item_id"].to_numpy()) if len(counts) else ids[:0]
        self.count_value_ = counts["count"].to_numpy(dtype=np.float64)
        clicks, _ = split_clicks(logs, train_end_day)
        self.history_ = history_of(clicks, pd.Index(ids).get_indexer(clicks["item_id"].to_numpy()))
        users = logs.users
        if users is not None and "city" in users.columns:
            self.user_ids_ = id_array(users["user_id"].to_numpy())
            self.user_city_ = users["city"].astype("string").fillna("").to_numpy(dtype=str)
        else:
            self.user_ids_, self.user_city_ = id_array(np.zeros(0, np.int64)), np.zeros(0, dtype=str)
        self.train_end_day_ = train_end_day
        given = (float(self.overall_weight), float(self.category_weight), float(self.city_weight))
        self.weights_ = self._learned_mix(logs, train_end_day, given) if self.learn_mix else given
        return self

    def _learned_mix(self, logs: Logs, day: int, given: tuple[float, float, float]) -> tuple[float, float, float]:
        """The mix whose lists find most clicks of ``day`` (see ``learn_mix``); ``given`` when
        the day has no clicks or nothing is better."""
        days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
        requests = logs.requests.loc[days == day]
        targets = logs.clicks.loc[logs.clicks["request_id"].isin(requests["request_id"]), ["request_id", "item_id"]]
        requests = requests.loc[requests["request_id"].isin(targets["request_id"])]
        if not len(requests):
            return given
        requests = requests.sample(n=min(2000, len(requests)), random_state=0)
        targets = targets.loc[targets["request_id"].isin(requests["request_id"])].drop_duplicates()
        params = {**self.get_params(), "learn_mix": False}
        candidates = [given] + [(1.0, cat, city) for cat in _MIX_CATEGORY for city in _MIX_CITY]
        best, best_value = given, -1.0
        for overall, cat, city in candidates:
            if overall + cat + city <= 0:
                continue
            source = HotRecall(**{**params, "overall_weight": overall, "category_weight": cat, "city_weight": city})
            found = source.fit(logs, day - 1).retrieve(requests, logs, max(_MIX_KS))
            hit = targets.merge(found[["request_id", "item_id", "rank"]], on=["request_id", "item_id"], how="left")
            rank = hit["rank"].to_numpy(dtype=np.float64, na_value=np.inf)
            value = float(np.mean([(rank <= k).mean() for k in _MIX_KS]))
            if value > best_value + 1e-12:
                best, best_value = (overall, cat, city), value
        return best

    # ------------------------------------------------------------------ retrieve

    def heat(self, times: np.ndarray, logs: Logs | None) -> tuple[np.ndarray, np.ndarray]:
        """Heat of every catalogue item for requests at each of ``times`` (epoch seconds; only
        rows of bins before each time's bin count).

        Returns
        -------
        item_ids : ndarray, shape (n_items,)
        heat : ndarray, shape (len(times), n_items)
        """
        self._check_fitted()
        bins = np.asarray(times, dtype=np.int64) // (3600 * int(self.bin_hours))
        item_ids = self._catalogue(logs)[0] if logs is not None and logs.items is not None else self.item_ids_
        later = (self._counts(logs, self.train_end_day_, later=True) if logs is not None
                 else self._counts_frame([]))
        c_bin = np.concatenate([self.count_bin_, later["bin"].to_numpy(dtype=np.int64)])
        c_item = pd.Index(item_ids).get_indexer(np.concatenate([self.count_item_, later["item_id"].to_numpy()])
                                                if len(later) else self.count_item_)
        c_val = np.concatenate([self.count_value_, later["count"].to_numpy(dtype=np.float64)])
        known = c_item >= 0
        c_bin, c_item, c_val = c_bin[known], c_item[known], c_val[known]
        if not len(c_bin) or not len(bins):
            return item_ids, np.zeros((len(bins), len(item_ids)))
        # Only the bins a window can reach: the table spans the window before the requests.
        window = int(self.window_days) * 24 // int(self.bin_hours)
        first = int(bins.min()) - window
        inside_table = (c_bin >= first) & (c_bin < int(bins.max()))
        c_bin, c_item, c_val = c_bin[inside_table], c_item[inside_table], c_val[inside_table]
        span = int(bins.max()) - first + 1
        counts = sp.csr_matrix((c_val, (c_bin - first, c_item)), shape=(span, len(item_ids)))
        lag = (bins[:, None] - 1) - (np.arange(span)[None, :] + first)
        inside = (lag >= 0) & (lag < window)
        age_days = lag * (int(self.bin_hours) / 24.0)
        decay = 0.5 ** (age_days / float(self.half_life_days)) if self.half_life_days > 0 else np.ones(lag.shape)
        weights = np.where(inside, decay, 0.0)
        return item_ids, np.asarray((sp.csr_matrix(weights) @ counts).todense())

    def retrieve(self, requests: pd.DataFrame, logs: Logs | None, k: int) -> pd.DataFrame:
        """Top-``k`` trending items per request, personalised by the rule in the module docstring.

        Parameters
        ----------
        requests : DataFrame
            ``request_id``, ``user_id``, ``ts`` (unique request ids).
        logs : ltr.logs.Logs or None
            Logs up to the requests (rows of the request's time bin or later never count for
            it); their rows after the training days add to the stored counts and clicks. None:
            only what the source keeps (no log scan).
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
        if logs is not None and logs.items is not None:
            item_ids, category, city = self._catalogue(logs)
        else:
            item_ids, category, city = self.item_ids_, self.item_category_, self.item_city_
        req_bin = requests["ts"].to_numpy(dtype=np.int64) // (3600 * int(self.bin_hours))
        bins, day_of_req = np.unique(req_bin, return_inverse=True)
        _, heat = self.heat(bins * 3600 * int(self.bin_hours), logs)
        cat_code, cats = pd.factorize(category)
        g = _normalise(heat, np.zeros(len(item_ids), dtype=np.int64), 1)
        c = _normalise(heat, cat_code, len(cats))

        # Category preference: share of each category in the user's recent clicks. The history
        # holds fitted catalogue rows; ``remap`` turns them into rows of this catalogue.
        history = self.click_history(logs)
        remap = np.r_[pd.Index(item_ids).get_indexer(self.item_ids_), -1]
        hist = history.last_before(requests["user_id"].to_numpy(dtype=object), requests["ts"].to_numpy(),
                                   int(self.history_len))[0]
        hist = remap[hist]  # padding (-1) indexes the appended -1
        valid = hist >= 0
        rows = np.broadcast_to(np.arange(n_req)[:, None], hist.shape)[valid]
        pref = sp.csr_matrix((np.ones(int(valid.sum())), (rows, cat_code[hist[valid]])), shape=(n_req, len(cats)))
        n_hist = np.maximum(valid.sum(axis=1), 1)
        pref = sp.diags(1.0 / n_hist) @ pref
        seen_req, seen_item = seen_pairs(self.exclude_seen, history, requests["user_id"].to_numpy(dtype=object),
                                         requests["ts"].to_numpy(dtype=np.int64), logs, self._codes)
        seen_item = remap[seen_item]
        seen_req, seen_item = seen_req[seen_item >= 0], seen_item[seen_item >= 0]

        user_ids, user_city = self._user_cities(logs)
        overall_weight, category_weight, city_weight = self.weights_
        city_term = city_weight > 0 and (city != "").any() and len(user_ids) > 0
        if city_term:
            city_code, cities = pd.factorize(city)
            u_city = pd.Series(user_city, index=user_ids)
            req_city = pd.Index(cities).get_indexer(u_city.reindex(requests["user_id"].to_numpy()).to_numpy())
            city_norm = _normalise(heat, city_code, len(cities))
            city_norm[:, city == ""] = 0.0

        pref = pref.tocsr()
        chunk = max(1, _CHUNK_CELLS // max(len(item_ids), 1))
        out_req, out_item, out_score = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
        for start in range(0, n_req, chunk):  # bounded memory, not a per-request loop
            sl = slice(start, min(start + chunk, n_req))
            d = day_of_req[sl]
            score = overall_weight * g[d]
            score += category_weight * np.asarray(pref[sl].todense())[:, cat_code] * c[d]
            if city_term:
                same = req_city[sl, None] == city_code[None, :]
                score += city_weight * same * city_norm[d]
            mine = (seen_req >= sl.start) & (seen_req < sl.stop)
            score[seen_req[mine] - sl.start, seen_item[mine]] = -np.inf
            top = _top_k(score, k)
            top_score = np.take_along_axis(score, top, axis=1).ravel()
            keep = np.isfinite(top_score)  # seen items only fill lists longer than the unseen catalogue
            out_req.append(np.repeat(np.arange(sl.start, sl.stop), top.shape[1])[keep])
            out_item.append(top.ravel()[keep])
            out_score.append(top_score[keep])
        return ordered_candidates(requests["request_id"].to_numpy(), np.concatenate(out_req), item_ids,
                                  np.concatenate(out_item), np.concatenate(out_score), self.kind, k)

    def click_history(self, logs: Logs | None) -> UserHistory:
        """The stored training clicks (fitted catalogue rows) plus the clicks of ``logs`` after
        the training days."""
        self._check_fitted()
        return with_clicks_after(self.history_, logs, self.train_end_day_, self._codes)

    def _codes(self, item_ids: np.ndarray) -> np.ndarray:
        return pd.Index(self.item_ids_).get_indexer(np.asarray(item_ids)).astype(np.int64)

    def _user_cities(self, logs: Logs | None) -> tuple[np.ndarray, np.ndarray]:
        users = None if logs is None else logs.users
        if users is None or "city" not in users.columns:
            return self.user_ids_, self.user_city_
        return users["user_id"].to_numpy(), users["city"].astype("string").fillna("").to_numpy(dtype=str)

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> None:
        """Write ``hot.npz`` (binned counts, catalogue, clicks, user cities) and a verified manifest."""
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        history_meta, history_arrays = self.history_.to_state()
        arrays: dict[str, Any] = {
            "item_ids": self.item_ids_, "item_category": self.item_category_, "item_city": self.item_city_,
            "count_bin": self.count_bin_, "count_item": self.count_item_, "count_value": self.count_value_,
            "user_ids": self.user_ids_, "user_city": self.user_city_, **with_prefix("history", history_arrays)}
        np.savez(root / _ARRAYS, **arrays)
        write_manifest(root, f"recall.{self.kind}", _FORMAT_VERSION, {
            "params": self.get_params(), "train_end_day": self.train_end_day_, "weights": list(self.weights_),
            "history": history_meta,
            "n_items": len(self.item_ids_), "n_count_rows": len(self.count_bin_)})

    @classmethod
    def load(cls, directory: str | Path) -> HotRecall:
        """Load a source written by :meth:`save` (checksums verified, no pickle)."""
        manifest = read_manifest(directory, f"recall.{cls.kind}", _FORMAT_VERSION)
        meta = manifest["metadata"]
        self = cls(**meta["params"])
        with np.load(Path(directory) / _ARRAYS, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        for name in ("item_ids", "item_category", "item_city", "count_bin", "count_item", "count_value", "user_ids",
                     "user_city"):
            setattr(self, f"{name}_", arrays[name])
        self.history_ = UserHistory.from_state(meta["history"], under_prefix("history", arrays))
        self.train_end_day_ = int(meta["train_end_day"])
        overall, category, city = (float(w) for w in meta["weights"])
        self.weights_ = (overall, category, city)
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
