"""Merge several recall sources' candidates per request with per-source quotas.

Rule
----
Sources are taken in the order of ``quotas`` (its insertion order is the priority):

1. *Quota pass.* Source ``s`` contributes, per request, its best-ranked items that no earlier
   source already contributed, up to its quota plus whatever the earlier sources fell short
   of (a source that runs short hands its unused slots to the next one).
2. *Fill pass.* If a request still has fewer than ``k`` items (the last sources ran short,
   or ``k`` exceeds the quotas' sum), its remaining slots are filled from the sources'
   leftover items in the same priority order.
3. *Order.* Contributed items are interleaved in proportion to each source's share: the
   ``j``-th item (0-based) contributed by a source that contributed ``n`` items to the
   request sits at ``(j + 0.5) / n``, ties to the higher-priority source. So with equal
   quotas the list alternates, and the top of every list mixes all sources.
4. The list is cut at ``k`` (default: the sum of the quotas); ``rank`` is the merged order
   (1 = best) and ``score = 1 / rank``, because the sources' own scores live on
   incomparable scales. ``source`` names every source whose input list holds the item,
   joined by ``+`` in quota order (``"itemcf+hot"``).

Everything is vectorised over requests (a loop runs over the few sources only).
``python -m recall.merge FILE1 FILE2 ... --quota itemcf=600 --quota hot=600 --out FILE``.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ltr._cli import command, parser, write_frame
from ltr._validation import check_int
from ltr.artifacts import ArtifactError, read_manifest, sha256_file, write_manifest
from ltr.logs import Logs
from recall.base import CANDIDATE_COLUMNS, RecallSource, read_candidates, source_class, validate_candidates

__all__ = ["MergedRecall", "main", "merge"]

_FORMAT_VERSION = 1


def _named_frames(candidate_frames) -> dict[str, pd.DataFrame]:
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


def _check_quotas(quotas, names: list[str]) -> dict[str, int]:
    if not isinstance(quotas, Mapping) or not quotas:
        raise ValueError(f"quotas must be a non-empty dict of source -> int. Got {quotas!r} instead.")
    out = {}
    for name, q in quotas.items():
        if name not in names:
            raise ValueError(f"quotas name an unknown source {name!r}; the candidates hold {names}.")
        out[name] = check_int(q, f"quota of {name!r}", minimum=0)
    missing = [n for n in names if n not in out]
    if missing:
        raise ValueError(f"quotas must give every source a quota (0 drops it). Missing {missing}.")
    if sum(out.values()) == 0:
        raise ValueError(f"quotas must sum to more than 0. Got {out} instead.")
    return out


def merge(candidate_frames: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame], quotas: Mapping[str, int],
          k: int | None = None) -> pd.DataFrame:
    """Combine sources' candidates per request with quotas, dedupe, and fill (see module docstring).

    Parameters
    ----------
    candidate_frames : dict of str -> DataFrame, or list of DataFrame
        Each source's candidates (``request_id, item_id, rank`` at least; a list's frames are
        named by their single-valued ``source`` column).
    quotas : dict of str -> int
        Slots per request for each source, in priority order; every source needs one
        (0 drops it) and they must not all be 0.
    k : int, optional
        Merged list length per request; default the sum of the quotas.

    Returns
    -------
    DataFrame
        :data:`recall.base.CANDIDATE_COLUMNS`, ``score = 1 / rank``, sorted by request and rank.

    Raises
    ------
    ValueError
        An unknown or missing source in ``quotas``, a negative quota, quotas summing to 0,
        duplicate (request_id, item_id) rows in a source, ``k < 1``.
    """
    frames = _named_frames(candidate_frames)
    quotas = _check_quotas(quotas, list(frames))
    k = sum(quotas.values()) if k is None else check_int(k, "k", minimum=1)
    order = list(quotas)
    all_rows = pd.concat([frames[n][["request_id", "item_id", "rank"]].assign(src=i) for i, n in enumerate(order)],
                         ignore_index=True)
    if not len(all_rows):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            CANDIDATE_COLUMNS, ["int64", "int64", "float64", "int64", "str"], strict=True)})
    req_code, req_ids = pd.factorize(all_rows["request_id"], sort=True)
    item_code, item_ids = pd.factorize(all_rows["item_id"], sort=True)
    n_req, n_items = len(req_ids), len(item_ids)
    key = req_code.astype(np.int64) * n_items + item_code
    src = all_rows["src"].to_numpy()
    # Within each source: by request, then the source's own rank.
    by = np.lexsort((all_rows["rank"].to_numpy(), req_code, src))
    req_code, key, src = req_code[by], key[by], src[by]

    # Every source holding each (request, item), as a bit mask in quota order; a source lists an
    # item at most once per request, so summing distinct bits is an OR.
    uniq, inv = np.unique(key, return_inverse=True)
    masks = np.bincount(inv, weights=np.left_shift(1, src).astype(np.float64), minlength=len(uniq))

    taken = np.zeros(len(key), dtype=bool)
    key_taken = np.zeros(len(uniq), dtype=bool)
    count = np.zeros(n_req, dtype=np.int64)
    pass_rank = np.full(len(key), -1, dtype=np.int64)
    for pass_no in (0, 1):
        carry = np.zeros(n_req, dtype=np.int64)
        for s, name in enumerate(order):
            rows = np.flatnonzero(src == s)
            rows = rows[~key_taken[inv[rows]]]
            allowed = quotas[name] + carry if pass_no == 0 else k - count
            r = req_code[rows]
            pos = np.arange(len(rows)) - np.searchsorted(r, r, side="left")
            chosen = rows[pos < allowed[r]]
            got = np.bincount(req_code[chosen], minlength=n_req)
            if pass_no == 0:
                carry = np.maximum(allowed - got, 0)
            count += got
            taken[chosen] = True
            key_taken[inv[chosen]] = True
            pass_rank[chosen] = pass_no

    sel = np.flatnonzero(taken)
    sel_req, sel_src = req_code[sel], src[sel]
    # Position of each chosen item among its source's contributions to the request (pass 0 first).
    contrib = np.lexsort((sel, pass_rank[sel], sel_src, sel_req))
    sel, sel_req, sel_src = sel[contrib], sel_req[contrib], sel_src[contrib]
    group = sel_req * len(order) + sel_src
    start = np.searchsorted(group, group, side="left")
    j = np.arange(len(sel)) - start
    n = np.bincount(group, minlength=n_req * len(order))[group]
    slot = (j + 0.5) / n
    final = np.lexsort((sel_src, slot, sel_req))
    sel, sel_req = sel[final], sel_req[final]
    rank = np.arange(len(sel)) - np.searchsorted(sel_req, sel_req, side="left") + 1
    keep = rank <= k
    sel, sel_req, rank = sel[keep], sel_req[keep], rank[keep]

    bits = masks[inv[sel]].astype(np.int64)
    labels = _mask_labels(order)
    out = pd.DataFrame({
        "request_id": req_ids.to_numpy()[sel_req],
        "item_id": item_ids.to_numpy()[key[sel] % n_items],
        "score": 1.0 / rank,
        "rank": rank.astype(np.int64),
        "source": labels[bits],
    })
    return out[CANDIDATE_COLUMNS].reset_index(drop=True)


def _mask_labels(order: list[str]) -> np.ndarray:
    """Label of every bit mask of sources, e.g. 0b11 -> 'itemcf+hot'."""
    n = len(order)
    labels = np.empty(1 << n, dtype=object)
    for m in range(1 << n):  # 2**n_sources labels, n is a handful
        labels[m] = "+".join(name for i, name in enumerate(order) if m >> i & 1)
    return labels


# ----------------------------------------------------------------------------- as a recall source


class MergedRecall(RecallSource):
    """Several recall sources fitted together and merged with :func:`merge`.

    Parameters
    ----------
    sources : tuple of str, default ("itemcf", "hot")
        Names from :data:`recall.base.SOURCES`, in priority order.
    quotas : tuple of int, default (600, 600)
        Slots per request of each source (same length as ``sources``).
    source_params : dict of str -> dict, optional
        Constructor parameters of each source by name.
    """

    kind = "merged"
    _fitted_attribute = "sources_"

    def __init__(self, sources: tuple = ("itemcf", "hot"), quotas: tuple = (600, 600),
                 source_params: dict | None = None):
        self.sources = sources
        self.quotas = quotas
        self.source_params = source_params

    def _quota_dict(self) -> dict[str, int]:
        sources, quotas = tuple(self.sources), tuple(self.quotas)
        if not sources or len(set(sources)) != len(sources):
            raise ValueError(f"sources must be distinct source names. Got {sources!r} instead.")
        if len(quotas) != len(sources):
            raise ValueError(f"quotas must have one int per source ({len(sources)}). Got {quotas!r} instead.")
        return _check_quotas(dict(zip(sources, quotas, strict=True)), list(sources))

    def fit(self, logs: Logs, train_end_day: int) -> MergedRecall:
        """Fit every source on days <= ``train_end_day``."""
        self._quota_dict()
        params = self.source_params or {}
        unknown = sorted(set(params) - set(self.sources))
        if unknown:
            raise ValueError(f"source_params names a source not in sources {list(self.sources)}: {unknown[0]!r}.")
        self.sources_ = {name: source_class(name)(**params.get(name, {})).fit(logs, train_end_day)
                         for name in self.sources}
        return self

    def retrieve(self, requests: pd.DataFrame, logs: Logs, k: int) -> pd.DataFrame:
        """Each source's top ``k``, merged with the quotas scaled to ``k`` (largest remainders)."""
        self._check_fitted()
        quotas = self._quota_dict()
        k = check_int(k, "k", minimum=1)
        frames = {name: src.retrieve(requests, logs, k) for name, src in self.sources_.items()}
        return merge(frames, _scale_quotas(quotas, k), k=k)

    def save(self, directory: str | Path) -> None:
        """One sub-directory per source plus a manifest pinning each sub-manifest's sha256."""
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        for name, src in self.sources_.items():
            src.save(root / name)
        write_manifest(root, f"recall.{self.kind}", _FORMAT_VERSION, {
            "sources": list(self.sources), "quotas": [int(q) for q in self.quotas],
            "source_params": self.source_params or {},
            "sub_manifests": {name: sha256_file(root / name / "manifest.json") for name in self.sources}})

    @classmethod
    def load(cls, directory: str | Path) -> MergedRecall:
        """Load a merged source written by :meth:`save`, verifying every manifest."""
        root = Path(directory)
        meta = read_manifest(root, f"recall.{cls.kind}", _FORMAT_VERSION)["metadata"]
        self = cls(sources=tuple(meta["sources"]), quotas=tuple(meta["quotas"]),
                   source_params=meta["source_params"] or None)
        self.sources_ = {}
        for name in self.sources:
            sub = root / name / "manifest.json"
            if not sub.is_file() or sha256_file(sub) != meta["sub_manifests"].get(name):
                raise ArtifactError(f"{root}: the manifest of source {name!r} is missing or was modified; "
                                    "refusing to load it.")
            self.sources_[name] = source_class(name).load(root / name)
        return self


def _scale_quotas(quotas: dict[str, int], k: int) -> dict[str, int]:
    """Quotas proportional to ``quotas`` summing to ``k`` (largest remainder, ties to priority)."""
    q = np.array(list(quotas.values()), dtype=np.float64)
    exact = q / q.sum() * k
    base = np.floor(exact).astype(np.int64)
    extra = k - int(base.sum())
    order = np.lexsort((np.arange(len(q)), -(exact - base)))
    base[order[:extra]] += 1
    return dict(zip(quotas, (int(b) for b in base), strict=True))


# ----------------------------------------------------------------------------- CLI


def _read(path: str) -> pd.DataFrame:
    return read_candidates(path)


def _parse_quota(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, int(value)
    except ValueError:
        raise ValueError(f"--quota must look like source=INT (e.g. itemcf=600). Got {text!r} instead.") from None


@command
def main(argv: list[str] | None = None) -> int:
    """``python -m recall.merge FILE1 FILE2 ... --quota NAME=N ... --out FILE [--k K]``."""
    cli = parser("recall.merge", "Merge candidate files (one source each) with per-source quotas.")
    cli.add_argument("files", nargs="+", help="candidate files from python -m recall.retrieve (.parquet/.csv)")
    cli.add_argument("--quota", action="append", default=[], metavar="SOURCE=N", required=True,
                     help="slots per request for a source, in priority order (repeatable)")
    cli.add_argument("--k", type=int, default=None, help="merged list length (default: sum of quotas)")
    cli.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    args = cli.parse_args(argv)
    quotas: dict[str, int] = {}
    for text in args.quota:
        name, value = _parse_quota(text)
        if name in quotas:
            raise ValueError(f"--quota must name each source once. Got {name!r} twice.")
        quotas[name] = value
    frames = []
    for path in args.files:
        frame = _read(path)
        if "source" not in frame.columns:
            raise ValueError(f"candidates file {path!r} must have a 'source' column. Got {list(frame.columns)}.")
        names = pd.unique(frame["source"].astype(str))
        if len(names) != 1:
            raise ValueError(f"candidates file {path!r} must hold one source. Got {list(names)[:5]} instead.")
        validate_candidates(frame, name=f"candidates file {path!r}")
        frames.append(frame)
    merged = merge(frames, quotas, k=args.k)
    out = write_frame(merged, args.out)
    print(f"wrote {len(merged):,d} merged candidates for {merged['request_id'].nunique():,d} requests to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
