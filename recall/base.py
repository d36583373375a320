"""The contract every recall source follows, and helpers they share.

A recall source is fitted on logs up to a training-end day, retrieves up to ``k`` items per
request using only what was known at the request's timestamp, and saves itself to a
directory with a verified manifest (:mod:`ltr.artifacts`).

Candidate frames (one row per retrieved item) have exactly :data:`CANDIDATE_COLUMNS`:
``request_id, item_id, score, rank, source``, sorted by request then rank (1 = best), with
scores non-increasing down each list and no duplicate (request_id, item_id).
"""
from __future__ import annotations

import abc
import importlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from ltr.artifacts import ArtifactError
from ltr.logs import Logs

__all__ = [
    "CANDIDATE_COLUMNS",
    "SOURCES",
    "RecallSource",
    "finalize_candidates",
    "load",
    "recent_events",
    "validate_candidates",
]

CANDIDATE_COLUMNS = ["request_id", "item_id", "score", "rank", "source"]

#: model name -> "module:Class"; imported lazily so one broken source does not break the rest.
SOURCES: dict[str, str] = {
    "nip": "recall.neural:NIPRecall",
    "two_tower": "recall.neural:TwoTowerRecall",
    "itemcf": "recall.itemcf:ItemCFRecall",
    "hot": "recall.hot:HotRecall",
}


class RecallSource(abc.ABC):
    """Base class of recall sources (scikit-learn style: ``fit`` stores ``_``-suffixed state)."""

    #: short name; the ``source`` column of retrieved candidates and the manifest kind suffix.
    kind: ClassVar[str]

    @abc.abstractmethod
    def fit(self, logs: Logs, train_end_day: int) -> RecallSource:
        """Learn from log rows on days <= ``train_end_day`` only."""

    @abc.abstractmethod
    def retrieve(self, requests: pd.DataFrame, logs: Logs, k: int) -> pd.DataFrame:
        """Top-``k`` candidates for each row of ``requests`` (request_id, user_id, ts).

        Only log rows strictly before each request's ``ts`` may be used. Returns a frame with
        :data:`CANDIDATE_COLUMNS` (see :func:`finalize_candidates`).
        """

    @abc.abstractmethod
    def save(self, directory: str | Path) -> None:
        """Write the fitted source and its manifest (kind ``recall.<kind>``) to ``directory``."""

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: str | Path) -> RecallSource:
        """Load a source written by :meth:`save`, verifying its manifest."""


def _source_class(name: str) -> type[RecallSource]:
    if name not in SOURCES:
        raise ValueError(f"model must be one of {sorted(SOURCES)}. Got {name!r} instead.")
    module, cls = SOURCES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def load(directory: str | Path) -> RecallSource:
    """Load any saved recall source; the manifest's kind picks the class.

    Raises
    ------
    ltr.artifacts.ArtifactError
        Not a recall artifact, tampered files, or a newer format version.
    """
    import json

    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a recall directory: manifest.json is missing.")
    try:
        kind = json.loads(path.read_text()).get("kind", "")
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}.") from None
    name = kind.removeprefix("recall.")
    if not kind.startswith("recall.") or name not in SOURCES:
        raise ArtifactError(f"{directory} holds a {kind!r} artifact, not a recall source ({sorted(SOURCES)}).")
    return _source_class(name).load(directory)


def finalize_candidates(request_ids: np.ndarray, item_ids: np.ndarray, scores: np.ndarray, source: str,
                        k: int | None = None) -> pd.DataFrame:
    """Sort, rank and cut candidate triples into a contract candidate frame.

    Within a request, rows are ordered by score descending, ties broken by item id
    ascending (deterministic); duplicates of (request, item) keep their best score;
    ``rank`` counts from 1; at most ``k`` rows per request are kept when ``k`` is given.
    """
    request_ids, item_ids = np.asarray(request_ids), np.asarray(item_ids)
    scores = np.asarray(scores, dtype=np.float64)
    # Integer codes in id order, so one lexsort gives (request, -score, item id) order
    # without pandas group-bys on large candidate sets.
    req_code, req_levels = pd.factorize(request_ids, sort=True)
    item_code, _ = pd.factorize(item_ids, sort=True)
    order = np.lexsort((item_code, -scores, req_code))
    pair = req_code[order].astype(np.int64) * (int(item_code.max(initial=0)) + 1) + item_code[order]
    _, first = np.unique(pair, return_index=True)
    order = order[np.sort(first)]  # the best-scored copy of each (request, item), order kept
    req_sorted = req_code[order]
    rank = np.arange(len(order)) - np.searchsorted(req_sorted, req_sorted, side="left") + 1
    keep = slice(None) if k is None else rank <= k
    frame = pd.DataFrame({"request_id": request_ids[order][keep], "item_id": item_ids[order][keep],
                          "score": scores[order][keep], "rank": rank[keep].astype(np.int64)})
    frame["source"] = source
    return frame[CANDIDATE_COLUMNS]


def validate_candidates(frame: pd.DataFrame, name: str = "candidates") -> pd.DataFrame:
    """Check a candidate frame against the contract; return it unchanged.

    Raises
    ------
    ValueError
        Missing columns, duplicate (request_id, item_id) rows, ranks that are not 1..n.
    """
    missing = [c for c in ("request_id", "item_id", "rank") if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} must have columns request_id, item_id, rank (score, source optional). "
                         f"Missing {missing}; has {list(frame.columns)}.")
    dup = frame.duplicated(["request_id", "item_id"]).to_numpy()
    if dup.any():
        row = frame.iloc[int(np.flatnonzero(dup)[0])].to_dict()
        raise ValueError(f"{name} has {int(dup.sum())} duplicate (request_id, item_id) row(s). Example row: {row}")
    rank = frame["rank"].to_numpy()
    if len(rank) and (not np.issubdtype(rank.dtype, np.integer) or rank.min() < 1):
        raise ValueError(f"{name}: rank must be integers >= 1. Got dtype {rank.dtype}, min {rank.min()} instead.")
    return frame


def recent_events(events: pd.DataFrame, event_user: np.ndarray, requests: pd.DataFrame,
                  max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``max_len`` events of each request's user strictly before the request's ts.

    Parameters
    ----------
    events : DataFrame
        With ``item_id`` and ``ts`` (e.g. clicks).
    event_user : array
        The user id of each event row (clicks carry request_id only; map it first).
    requests : DataFrame
        With ``user_id`` and ``ts``.
    max_len : int
        History length L.

    Returns
    -------
    items : ndarray, shape (n_requests, max_len)
        Item ids, oldest first, most recent in the last column, left-padded with -1 (the
        pad is -1 whatever the id type; ids must be integers).
    ts : ndarray, shape (n_requests, max_len)
        Event timestamps, padded with the minimum int64.
    """
    if not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"max_len must be an int >= 1. Got {max_len!r} instead.")
    n = len(requests)
    users = pd.Index(pd.unique(np.concatenate([np.asarray(event_user, dtype=object),
                                               requests["user_id"].to_numpy(dtype=object)])))
    ev_user = users.get_indexer(np.asarray(event_user, dtype=object)).astype(np.int64)
    rq_user = users.get_indexer(requests["user_id"].to_numpy(dtype=object)).astype(np.int64)
    ev_ts = events["ts"].to_numpy(dtype=np.int64)
    rq_ts = requests["ts"].to_numpy(dtype=np.int64)
    base = min(ev_ts.min(initial=0), rq_ts.min(initial=0))
    span = max(ev_ts.max(initial=0), rq_ts.max(initial=0)) - base + 2
    ev_key = ev_user * span + (ev_ts - base)
    order = np.argsort(ev_key, kind="stable")
    ev_key = ev_key[order]
    ev_items = events["item_id"].to_numpy()[order]
    ev_ts_sorted = ev_ts[order]
    hi = np.searchsorted(ev_key, rq_user * span + (rq_ts - base), side="left")
    lo = np.searchsorted(ev_key, rq_user * span, side="left")
    idx = hi[:, None] - max_len + np.arange(max_len)[None, :]
    valid = idx >= lo[:, None]
    safe = np.clip(idx, 0, max(len(ev_key) - 1, 0))
    items = np.full((n, max_len), -1, dtype=np.int64)
    ts = np.full((n, max_len), np.iinfo(np.int64).min, dtype=np.int64)
    if len(ev_key):
        items[valid] = ev_items[safe[valid]]
        ts[valid] = ev_ts_sorted[safe[valid]]
    return items, ts
