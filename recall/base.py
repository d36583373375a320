"""The contract every recall source follows, and helpers they share.

A recall source is fitted on logs up to a training-end day, retrieves up to ``k`` items per
request using only what was known at the request's timestamp, and saves itself to a
directory with a verified manifest (:mod:`ltr.artifacts`).

Candidate frames (one row per retrieved item) have exactly :data:`CANDIDATE_COLUMNS`:
``request_id, item_id, score, rank, source``, sorted by request then rank (1 = best), with
scores non-increasing down each list and no duplicate (request_id, item_id).

Ids may be integers or strings. Candidate files keep them exactly: :func:`read_candidates`
reads CSV ids as text (``"007"`` stays ``"007"``) and only ids that are all plain integers
become int64; :func:`match_id_types` then gives a candidate frame the id types of the logs it
is compared with.
"""
from __future__ import annotations

import abc
import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Any, ClassVar

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
    "match_id_types",
    "ordered_candidates",
    "read_candidates",
    "source_class",
    "validate_candidates",
]

CANDIDATE_COLUMNS = ["request_id", "item_id", "score", "rank", "source"]
_ID_COLUMNS = ("request_id", "item_id")
_PLAIN_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")

#: model name -> "module:Class"; imported lazily so one broken source does not break the rest.
SOURCES: dict[str, str] = {
    "nip": "recall.neural:NIPRecall",
    "two_tower": "recall.neural:TwoTowerRecall",
    "itemcf": "recall.itemcf:ItemCFRecall",
    "hot": "recall.hot:HotRecall",
}
#: What :func:`load` reads: every source, and the merger of several (not trained by name).
_LOADABLE: dict[str, str] = {**SOURCES, "merged": "recall.merge:MergedRecall"}


class RecallSource(abc.ABC):
    """Base class of recall sources (scikit-learn style: ``fit`` stores ``_``-suffixed state)."""

    #: short name; the ``source`` column of retrieved candidates and the manifest kind suffix.
    kind: ClassVar[str]
    #: an attribute ``fit`` and ``load`` set: the source is fitted when it exists.
    _fitted_attribute: ClassVar[str]

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise ValueError(f"This {type(self).__name__} is not fitted yet. Call fit(logs, train_end_day) or "
                             "load(directory) first.")

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters by name, as stored by ``__init__`` (scikit-learn style)."""
        names = [name for name in inspect.signature(type(self).__init__).parameters if name != "self"]
        return {name: getattr(self, name) for name in names}

    @abc.abstractmethod
    def fit(self, logs: Logs, train_end_day: int) -> RecallSource:
        """Learn from log rows on days <= ``train_end_day`` only."""

    @abc.abstractmethod
    def retrieve(self, requests: pd.DataFrame, logs: Logs | None, k: int) -> pd.DataFrame:
        """Top-``k`` candidates for each row of ``requests`` (request_id, user_id, ts).

        Only log rows strictly before each request's ``ts`` may be used. ``logs`` adds what
        happened after the training days to what the source keeps; None serves from what it
        keeps alone (no log scan: one request at a time). Returns a frame with
        :data:`CANDIDATE_COLUMNS` (see :func:`finalize_candidates`).
        """

    @abc.abstractmethod
    def save(self, directory: str | Path) -> None:
        """Write the fitted source and its manifest (kind ``recall.<kind>``) to ``directory``."""

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: str | Path) -> RecallSource:
        """Load a source written by :meth:`save`, verifying its manifest."""


def source_class(name: str) -> type[RecallSource]:
    """The class registered as ``name`` in :data:`SOURCES`, imported on demand.

    Raises
    ------
    ValueError
        ``name`` is not registered.
    """
    if name not in SOURCES:
        raise ValueError(f"model must be one of {sorted(SOURCES)}. Got {name!r} instead.")
    return _import(SOURCES[name])


def _import(target: str) -> type[RecallSource]:
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def load(directory: str | Path) -> RecallSource:
    """Load any saved recall source (a merged one included); the manifest's kind picks the class.

    Raises
    ------
    ltr.artifacts.ArtifactError
        Not a recall artifact, tampered files, or a newer format version.
    """
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a recall directory: manifest.json is missing.")
    try:
        kind = json.loads(path.read_text()).get("kind", "")
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}.") from None
    name = kind.removeprefix("recall.")
    if not kind.startswith("recall.") or name not in _LOADABLE:
        raise ArtifactError(f"{directory} holds a {kind!r} artifact, not a recall source ({sorted(_LOADABLE)}).")
    return _import(_LOADABLE[name]).load(directory)


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
    req_code, _ = pd.factorize(request_ids, sort=True)
    item_code, _ = pd.factorize(item_ids, sort=True)
    order = np.lexsort((item_code, -scores, req_code))
    pair = req_code[order].astype(np.int64) * (int(item_code.max(initial=0)) + 1) + item_code[order]
    _, first = np.unique(pair, return_index=True)
    order = order[np.sort(first)]  # the best-scored copy of each (request, item), order kept
    req_sorted = req_code[order]
    rank = np.arange(len(order)) - np.searchsorted(req_sorted, req_sorted, side="left") + 1
    keep = slice(None) if k is None else rank <= k
    # One constructor call, columns in contract order (adding the column afterwards and reordering
    # cost a few times more: it matters for one request's latency).
    return pd.DataFrame({"request_id": request_ids[order][keep], "item_id": item_ids[order][keep],
                         "score": scores[order][keep], "rank": rank[keep].astype(np.int64), "source": source})


def ordered_candidates(request_ids: np.ndarray, req: np.ndarray, item_ids: np.ndarray, item: np.ndarray,
                       score: np.ndarray, source: str, k: int) -> pd.DataFrame:
    """Contract frame from rows already in their final order within each request.

    ``req`` indexes ``request_ids`` (unique) and ``item`` indexes ``item_ids``; requests are put
    in request-id order (a stable sort keeps each list's order), ranked, and cut at ``k``.
    """
    req_rank = np.empty(len(request_ids), dtype=np.int64)
    req_rank[np.argsort(np.asarray(request_ids), kind="stable")] = np.arange(len(request_ids))
    key = req_rank[req]
    order = np.argsort(key, kind="stable")
    key = key[order]
    rank = np.arange(len(key)) - np.searchsorted(key, key, side="left") + 1
    keep = order[rank <= k]
    return pd.DataFrame({"request_id": np.asarray(request_ids)[req[keep]], "item_id": item_ids[item[keep]],
                         "score": np.asarray(score, dtype=np.float64)[keep],
                         "rank": rank[rank <= k].astype(np.int64), "source": source})


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


def read_candidates(path: str | Path) -> pd.DataFrame:
    """Read a candidates file (Parquet, or CSV for any other suffix) with its ids intact.

    CSV ids are read as text, then turned into int64 only when every id of the column is a
    plain integer (no sign but ``-``, no leading zero): ``"007"`` or ``"u12"`` stay strings,
    so a round trip through CSV never changes an id.

    Raises
    ------
    ValueError
        The file does not exist or cannot be read.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"candidates file must exist. Got {str(path)!r} instead.")
    try:
        if p.suffix == ".parquet":
            return pd.read_parquet(p)
        frame = pd.read_csv(p, dtype=dict.fromkeys(_ID_COLUMNS, str))
    except Exception as exc:
        raise ValueError(f"cannot read candidates file {str(path)!r}: {exc}") from None
    for column in _ID_COLUMNS:
        if column in frame.columns and _all_plain_ints(frame[column]):
            frame[column] = frame[column].astype(np.int64)
    return frame


def _all_plain_ints(values: pd.Series) -> bool:
    return bool(len(values)) and bool(values.astype(str).str.fullmatch(_PLAIN_INT).all())


def match_id_types(candidates: pd.DataFrame, logs: Logs) -> pd.DataFrame:
    """``candidates`` with ``request_id`` and ``item_id`` of the logs' id types.

    A file written from integer-id logs and read back, or string-id logs whose ids look like
    numbers, compares with the logs only once both sides have one type.

    Raises
    ------
    ValueError
        The logs have integer ids and a candidate id is not an integer (an example is named).
    """
    like = {"request_id": logs.requests["request_id"], "item_id": logs.exposures["item_id"]}
    out = candidates
    for column, reference in like.items():
        if column not in candidates.columns:
            continue
        values = candidates[column]
        want_int = pd.api.types.is_integer_dtype(reference.dtype)
        if want_int == pd.api.types.is_integer_dtype(values.dtype):
            continue
        if want_int:
            text = values.astype(str)
            bad = ~text.str.fullmatch(_PLAIN_INT).to_numpy()
            if bad.any():
                raise ValueError(f"candidates {column} must be integer ids like the logs'. Got "
                                 f"{values.to_numpy()[bad][0]!r} instead.")
            converted = text.astype(np.int64)
        else:
            converted = values.astype(str).astype(object)
        out = out.assign(**{column: converted})
    return out
