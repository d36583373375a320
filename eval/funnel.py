"""Funnel consistency: from logs alone, and between recall candidates and what users did.

* :func:`log_funnel` -- per bucket, requests -> candidates -> exposures -> clicks -> orders
  and the rates between them;
* :func:`recall_funnel` -- for a candidate file of a recall source (``request_id, item_id,
  rank[, score, source]``): hitrate@K of clicked and of ordered items, the share of the online
  ranker's top-N (``rank_pos`` of the logged candidates) that recall retrieved, catalogue
  coverage@K and the mean position of hits (seeds 000, 002).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ltr._validation import check_int
from ltr.logs import Logs, day_index, funnel_counts, funnel_table
from recall.base import match_id_types

__all__ = ["RECALL_KS", "TOP_NS", "log_funnel", "log_funnel_counts", "log_funnel_table", "recall_funnel"]

RECALL_KS = (50, 100, 1200)
TOP_NS = (10, 50)


def _in_days(logs: Logs, samples: pd.DataFrame, days: tuple[int, int]) -> Logs:
    """The logs cut to the readout window: requests of those days (by request time) or with an
    exposure in ``samples``, and their candidates; not re-validated."""
    lo, hi = days
    request_day = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    keep = ((request_day >= lo) & (request_day <= hi)) | logs.requests["request_id"].isin(
        samples["request_id"]).to_numpy()
    requests = logs.requests.loc[keep]
    candidates = logs.candidates
    if candidates is not None:
        candidates = candidates.loc[candidates["request_id"].isin(requests["request_id"]).to_numpy()]
    return logs.replace(requests=requests, candidates=candidates)


def log_funnel(logs: Logs, samples: pd.DataFrame, days: tuple[int, int] | None = None) -> pd.DataFrame:
    """Per-bucket counts and step rates (see :func:`ltr.logs.bucket_funnel`).

    Adds ``exposure_rate`` (exposures / candidates, when candidates exist), ``ctr``
    (clicks / exposures), ``cvr`` (orders / clicks) and ``order_rate`` (orders / exposures).

    Parameters
    ----------
    logs : Logs
    samples : DataFrame
        The samples to count (e.g. the readout window's).
    days : tuple of int, optional
        First and last day of the window ``samples`` were cut to: users, requests and
        candidates are then counted over the same window (the requests of those days, or
        with an exposure in ``samples``), so every step of the funnel covers the same days.

    Notes
    -----
    The counts add up over partitions of the logs: :func:`log_funnel_counts` of each,
    :func:`log_funnel_table` of all (what the Dask engine does).
    """
    return log_funnel_table([log_funnel_counts(logs, samples, days)])


def log_funnel_counts(logs: Logs, samples: pd.DataFrame,
                      days: tuple[int, int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The :func:`ltr.logs.funnel_counts` of ``logs`` (one partition, or all) cut to the window."""
    if days is not None:
        logs = _in_days(logs, samples, days)
    return funnel_counts(logs.requests, logs.candidates, samples)


def log_funnel_table(parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """The :func:`log_funnel` table of the :func:`log_funnel_counts` of partitions."""
    out = funnel_table(parts)
    if "candidates" in out.columns:
        out["exposure_rate"] = out["exposures"] / out["candidates"].where(out["candidates"] > 0)
    out["order_rate"] = out["orders"] / out["exposures"].where(out["exposures"] > 0)
    return out


def _targets_in_window(samples: pd.DataFrame, label: str, request_ids: pd.Index) -> pd.DataFrame:
    rows = samples.loc[(samples[label] == 1) & samples["request_id"].isin(request_ids), ["request_id", "item_id"]]
    return rows.drop_duplicates()


class _RankLookup:
    """Rank of any (request_id, item_id) pair in a candidate list, by one sort of the list.

    The pairs are packed into one int64 key (request code * n_items + item code), so each
    lookup is a ``searchsorted``: on tens of millions of candidate rows this is one sort
    instead of a hash join per target set.
    """

    def __init__(self, candidates: pd.DataFrame):
        rank = candidates["rank"].to_numpy()
        if not np.issubdtype(rank.dtype, np.integer) or rank.min() < 1:
            raise ValueError(f"candidates.rank must hold ints >= 1. Got dtype {rank.dtype}, minimum {rank.min()} "
                             "instead.")
        self._req_codes, self._requests = pd.factorize(candidates["request_id"])
        item_codes, self._items = pd.factorize(candidates["item_id"])
        self.n_items = len(self._items)
        key = self._req_codes.astype(np.int64) * self.n_items + item_codes
        order = np.argsort(key, kind="stable")
        self._keys, self._ranks = key[order], rank[order].astype(np.int64)
        dup = np.flatnonzero(self._keys[1:] == self._keys[:-1])
        if len(dup):
            row = {k: (v.item() if isinstance(v, np.generic) else v)
                   for k, v in candidates.iloc[int(order[dup[0]])][["request_id", "item_id"]].items()}
            raise ValueError(f"candidates must have one row per (request_id, item_id). Got {len(dup)} duplicate(s), "
                             f"e.g. request_id {row['request_id']!r}, item_id {row['item_id']!r}.")
        best = pd.Series(rank).groupby(item_codes).min().to_numpy()
        self._best_item_rank = np.sort(best)

    def ranks(self, pairs: pd.DataFrame) -> np.ndarray:
        """Float ranks of ``pairs`` (request_id, item_id) in the list; inf where not listed."""
        req = pd.Index(self._requests).get_indexer(pairs["request_id"])
        item = pd.Index(self._items).get_indexer(pairs["item_id"])
        out = np.full(len(pairs), np.inf)
        known = np.flatnonzero((req >= 0) & (item >= 0))
        key = req[known].astype(np.int64) * self.n_items + item[known]
        at = np.minimum(np.searchsorted(self._keys, key), len(self._keys) - 1)
        found = self._keys[at] == key
        out[known[found]] = self._ranks[at[found]]
        return out

    def items_within(self, ks: list[int]) -> np.ndarray:
        """Distinct items with rank <= K in at least one list, per K."""
        return np.searchsorted(self._best_item_rank, ks, side="right")


def recall_funnel(
    candidates: pd.DataFrame,
    logs: Logs,
    samples: pd.DataFrame,
    ks: Iterable[int] = RECALL_KS,
    top_ns: Iterable[int] = TOP_NS,
    label: str | None = None,
) -> dict:
    """Consistency of one recall candidate set with clicks, orders and the online ranker.

    The evaluated requests are all logged requests on the days the candidate file covers
    (first to last day of its requests), so a request the source returned nothing for
    counts as a miss rather than disappearing.

    Parameters
    ----------
    candidates : DataFrame
        ``request_id, item_id, rank`` (1 = best); ``source`` optional.
    logs : Logs
        The validated logs the candidates were retrieved for.
    samples : DataFrame
        ``ltr.join_samples(logs).samples``.
    ks : iterable of int, default (50, 100, 1200)
        Cut-offs, each >= 1.
    top_ns : iterable of int, default (10, 50)
        Online ranker's top-N (by ``rank_pos``) to check against the full recall list.
    label : str, optional
        Name in the readout; default: the single ``source`` value, else "candidates".

    Returns
    -------
    dict
        ``label, n_requests, hitrate_click`` / ``hitrate_order`` / ``mean_hit_position`` /
        ``coverage`` (each ``{k: value}``), ``top_n_share`` (``{n: share}``; empty without a
        logged ``rank_pos``), and the target counts.

    Raises
    ------
    ValueError
        Candidates of requests that are not in the logs (an example is named), a K < 1.
    """
    ks = sorted({check_int(k, "ks", minimum=1) for k in ks})
    top_ns = sorted({check_int(n, "top_ns", minimum=1) for n in top_ns})
    if len(candidates) == 0:
        raise ValueError(f"candidates{'' if label is None else ' ' + repr(label)} must have at least one row. "
                         "Got an empty frame instead.")
    candidates = match_id_types(candidates, logs)
    known = pd.Index(logs.requests["request_id"])
    unknown = ~candidates["request_id"].isin(known).to_numpy()
    if unknown.any():
        example = candidates.loc[unknown].iloc[0].to_dict()
        raise ValueError(f"candidates: {int(unknown.sum())} row(s) have a request_id that is not in the logs "
                         f"(e.g. request_id {example['request_id']!r}); were they retrieved for other logs?")
    if label is None:
        sources = candidates["source"].unique() if "source" in candidates.columns else []
        label = str(sources[0]) if len(sources) == 1 else "candidates"

    req_day = pd.Series(day_index(logs.requests["ts"].to_numpy(), logs.tz), index=logs.requests["request_id"])
    cand_days = req_day.loc[candidates["request_id"].unique()]
    window = req_day.index[(req_day >= cand_days.min()) & (req_day <= cand_days.max())]
    out: dict = {"label": label, "n_requests": len(window),
                 "requests_with_candidates": int(candidates["request_id"].nunique()),
                 "days": [int(cand_days.min()), int(cand_days.max())]}
    lookup = _RankLookup(candidates)
    for name in ("click", "order"):
        targets = _targets_in_window(samples, name, window)
        out[f"n_{name}_targets"] = len(targets)
        out[f"hitrate_{name}"] = {}
        if len(targets):
            ranks = lookup.ranks(targets)
            out[f"hitrate_{name}"] = {k: float(np.count_nonzero(ranks <= k) / len(ranks)) for k in ks}
            if name == "click":
                hit = np.sort(ranks[np.isfinite(ranks)])
                counts = np.searchsorted(hit, ks, side="right")
                prefix = np.concatenate(([0.0], np.cumsum(hit)))
                out["mean_hit_position"] = {k: (float(prefix[c] / c) if c else None)
                                            for k, c in zip(ks, counts, strict=True)}
    n_items = len(logs.items) if logs.items is not None else int(pd.concat(
        [logs.exposures["item_id"], candidates["item_id"]]).nunique())
    n_items = max(n_items, lookup.n_items)
    out["coverage"] = {k: float(c / n_items) for k, c in zip(ks, lookup.items_within(ks), strict=True)}
    out["catalogue_size"] = int(n_items)
    out["top_n_share"] = {}
    if logs.candidates is not None and "rank_pos" in logs.candidates.columns:
        online = logs.candidates.loc[logs.candidates["request_id"].isin(window), ["request_id", "item_id", "rank_pos"]]
        online = online.loc[online["rank_pos"].to_numpy() <= top_ns[-1]] if top_ns else online.iloc[:0]
        # One lookup for the largest N; a smaller N is a subset of its rows.
        retrieved = np.isfinite(lookup.ranks(online))
        rank_pos = online["rank_pos"].to_numpy()
        for n in top_ns:
            inside = rank_pos <= n
            if inside.any():
                out["top_n_share"][n] = float(np.count_nonzero(retrieved & inside) / np.count_nonzero(inside))
    return out
