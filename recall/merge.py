"""Merge several recall sources' candidates per request: per-source quotas, or rank fusion.

Rank fusion (:func:`fuse`, ``method="rrf"``, the default of :class:`MergedRecall`)
-------------------------------------------------------------------------------
Reciprocal-rank fusion (Cormack et al. 2009): an item scores ``sum_s w_s / (c + rank_s)``
over the sources ``s`` that list it (``c = 60``), so an item high in several lists beats one
high in a single list, with no need for the sources' scores to be comparable. The weights
``w_s`` are 1, given, or learned on a validation day for each list length K = 50, 100, 200,
400, 800, 1200 together with the depth of the lists fused (:func:`learn_weights_by_k`: a
coordinate search over a grid of weights that maximises the hits of the day's clicks in the
fused top K, then the mean over every K, for the fusion of the sources' top-K lists and of
their top-1200 lists, the deeper kept only when it finds more; each source alone is a
candidate, so on that day the fused list is at least the best single source at each K). Then a
noise margin at each K: the best single source alone replaces the setting found unless the
setting's gain over it on that day, ``b - c`` (targets only it finds minus targets only the
source finds), exceeds ``margin_z * sqrt(b + c)`` (McNemar, one-sided; ``margin_z`` 1 by
default, chosen on the fixture, simulated worlds and two splits of the KuaiRand slice: every
gain measured there that carried over to the held-out day had a statistic of 1.49 or more; 0 for
no margin); ``MergedRecall.margin_by_k_`` records what was kept at each K.
``MergedRecall.retrieve(requests, logs, k)`` takes the setting learned for the smallest learned
K >= k (the largest beyond 1200): each source's top max(k, depth), fused, cut at k. Given
weights fuse each source's top k. :func:`learn_weights` learns one set for every K instead
(first the worst margin over K against the best single source, then the mean hits): on the
committed fixture it fell one target short of the hot list at K = 1200, which the per-K
settings do not (``python bench/bench_recall_sources.py --logs fixtures/world --test-days 1
--exclude-seen none``; README, "Rank fusion vs the best single source").

Quotas (:func:`merge`, ``method="quota"``)
-----------------------------------------
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
``python -m recall.merge FILE1 FILE2 ... --quota itemcf=600 --quota hot=600 --out FILE`` or
``python -m recall.merge FILE1 FILE2 ... --rrf [--weight itemcf=2] --k 1200 --out FILE``.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ltr._cli import command, parser, write_frame
from ltr._validation import check_bool, check_choice, check_float, check_int
from ltr.artifacts import ArtifactError, read_manifest, sha256_file, write_manifest
from ltr.logs import Logs, day_index
from recall._fusion import (
    FUSION_KS,
    MARGIN_Z,
    FusedAt,
    fuse,
    learn_weight_sets,
    learn_weights,
    learn_weights_by_k,
    mask_labels,
    named_frames,
)
from recall._seen import check_exclude_seen
from recall.base import CANDIDATE_COLUMNS, RecallSource, read_candidates, source_class, validate_candidates

__all__ = ["MARGIN_Z", "MergedRecall", "fuse", "learn_weights", "learn_weights_by_k", "main", "merge"]

# 2: method, weights, exclude_seen; 3: learned_by_k; 4: margin_z and each K's margin record
# (versions 2 and 3 still load: learned without a margin, margin_z 0)
_FORMAT_VERSION = 4


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
    frames = named_frames(candidate_frames)
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
    labels = mask_labels(order)
    out = pd.DataFrame({
        "request_id": req_ids.to_numpy()[sel_req],
        "item_id": item_ids.to_numpy()[key[sel] % n_items],
        "score": 1.0 / rank,
        "rank": rank.astype(np.int64),
        "source": labels[bits],
    })
    return out[CANDIDATE_COLUMNS].reset_index(drop=True)


# ----------------------------------------------------------------------------- as a recall source


class MergedRecall(RecallSource):
    """Several recall sources fitted together and fused (RRF) or merged with quotas.

    Parameters
    ----------
    sources : tuple of str, default ("itemcf", "hot")
        Names from :data:`recall.base.SOURCES`, in priority order.
    method : {"rrf", "quota"}, default "rrf"
        Reciprocal-rank fusion (:func:`fuse`) or quotas (:func:`merge`).
    quotas : tuple of int, default (600, 600)
        Slots per request of each source (``method="quota"`` only; then one per source).
    weights : tuple of float, optional
        RRF weight of each source (default 1 each); ignored when ``learn_weights``.
    learn_weights : bool, default False
        Learn the RRF weights and depth on the last training day, per K of
        :data:`recall._fusion.FUSION_KS` (:func:`learn_weights_by_k`): the sources are first
        fitted on the days before it and retrieve for its requests with clicks, then fitted
        again on every training day. Costs a second fit.
    margin_z : float, default 1.0
        The noise margin of the learned weights (``learn_weights`` only): at each K the best
        single source alone is used unless the fused setting's gain over it on the learning
        day, ``b - c`` targets, exceeds ``margin_z * sqrt(b + c)`` (:func:`learn_weights_by_k`);
        0 keeps every fused setting found.
    exclude_seen : {"clicks", "exposures", "none"}, default "clicks"
        Passed to every source (unless its ``source_params`` say otherwise).
    source_params : dict of str -> dict, optional
        Constructor parameters of each source by name.

    Attributes
    ----------
    sources_ : dict of str -> RecallSource
    weights_ : dict of str -> float
        The RRF weights for every K: given, or 1 each, or when learned the one set learned for
        all K together (:func:`learn_weights`; not used by :meth:`retrieve` then).
    weights_by_k_ : dict of int -> dict of str -> float, or None
        The weights learned for each K (``learn_weights=True``), else None. :meth:`retrieve`
        at ``k`` uses those of the smallest learned K >= ``k`` (the largest K beyond it).
    depth_by_k_ : dict of int -> int, or None
        The depth learned for each K (K itself or the largest K), else None: :meth:`retrieve`
        fuses each source's top max(k, depth).
    margin_by_k_ : dict of int -> dict, or None
        The noise margin's record for each learned K, else None: ``kept`` ("fused" or
        "single"), ``single`` (the best single source on the learning day), ``b`` and ``c``
        (targets found by the fused setting only, by that source only).
    """

    kind = "merged"
    _fitted_attribute = "sources_"

    def __init__(self, sources: tuple = ("itemcf", "hot"), method: str = "rrf", quotas: tuple = (600, 600),
                 weights: tuple | None = None, learn_weights: bool = False, exclude_seen: str = "clicks",
                 source_params: dict | None = None, margin_z: float = MARGIN_Z):
        self.sources = sources
        self.method = method
        self.quotas = quotas
        self.weights = weights
        self.learn_weights = learn_weights
        self.exclude_seen = exclude_seen
        self.source_params = source_params
        self.margin_z = margin_z

    def _check_sources(self) -> tuple[str, ...]:
        sources = tuple(self.sources)
        if not sources or len(set(sources)) != len(sources):
            raise ValueError(f"sources must be distinct source names. Got {sources!r} instead.")
        return sources

    def _quota_dict(self) -> dict[str, int]:
        sources, quotas = self._check_sources(), tuple(self.quotas)
        if len(quotas) != len(sources):
            raise ValueError(f"quotas must have one int per source ({len(sources)}). Got {quotas!r} instead.")
        return _check_quotas(dict(zip(sources, quotas, strict=True)), list(sources))

    def _given_weights(self) -> dict[str, float]:
        if self.weights is None:
            return dict.fromkeys(self.sources, 1.0)
        weights = tuple(self.weights)
        if len(weights) != len(tuple(self.sources)):
            raise ValueError(f"weights must have one float per source ({len(self.sources)}). Got {weights!r} instead.")
        return {name: check_float(w, f"weight of {name!r}", low=0.0)
                for name, w in zip(self.sources, weights, strict=True)}

    def _fit_sources(self, logs: Logs, train_end_day: int) -> dict[str, RecallSource]:
        params = self.source_params or {}
        return {name: source_class(name)(**{"exclude_seen": self.exclude_seen, **params.get(name, {})})
                .fit(logs, train_end_day) for name in self.sources}

    def fit(self, logs: Logs, train_end_day: int) -> MergedRecall:
        """Fit every source on days <= ``train_end_day`` (and learn the weights, if asked)."""
        check_choice(self.method, "method", ("rrf", "quota"))
        if self.method == "quota":
            self._quota_dict()
        self._check_sources()
        check_exclude_seen(self.exclude_seen)
        check_bool(self.learn_weights, "learn_weights")
        check_float(self.margin_z, "margin_z", low=0.0)
        weights = self._given_weights()
        params = self.source_params or {}
        unknown = sorted(set(params) - set(self.sources))
        if unknown:
            raise ValueError(f"source_params names a source not in sources {list(self.sources)}: {unknown[0]!r}.")
        self.weights_by_k_, self.depth_by_k_, self.margin_by_k_ = None, None, None
        if self.learn_weights:
            weights, by_k = self._learned(logs, train_end_day)
            self.weights_by_k_ = {k: fused.weights for k, fused in by_k.items()}
            self.depth_by_k_ = {k: fused.depth for k, fused in by_k.items()}
            self.margin_by_k_ = {k: fused.margin._asdict() for k, fused in by_k.items() if fused.margin}
        self.weights_ = weights
        self.sources_ = self._fit_sources(logs, train_end_day)
        return self

    def _learned(self, logs: Logs, train_end_day: int) -> tuple[dict[str, float], dict[int, FusedAt]]:
        days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
        requests = logs.requests.loc[days == train_end_day]
        clicks = logs.clicks.loc[logs.clicks["request_id"].isin(requests["request_id"]), ["request_id", "item_id"]]
        if not len(clicks):
            raise ValueError(f"learn_weights needs clicks on the last training day {train_end_day}. Got none.")
        # A request without a click holds no target: its lists change no hit count.
        requests = requests.loc[requests["request_id"].isin(clicks["request_id"])]
        early = self._fit_sources(logs, train_end_day - 1)
        k = max(FUSION_KS)
        frames = {name: src.retrieve(requests, logs, k) for name, src in early.items()}
        return learn_weight_sets(frames, clicks, FUSION_KS, rounds=2, margin_z=self.margin_z)

    def _setting_at(self, k: int) -> tuple[dict[str, float], int]:
        """The weights and depth for list length ``k``: learned for the smallest learned K >= k,
        or the one set and ``k``."""
        if not self.weights_by_k_ or not self.depth_by_k_:
            return self.weights_, k
        learned = sorted(self.weights_by_k_)
        size = next((size for size in learned if size >= k), learned[-1])
        return self.weights_by_k_[size], max(k, self.depth_by_k_[size])

    def retrieve(self, requests: pd.DataFrame, logs: Logs | None, k: int) -> pd.DataFrame:
        """Each source's top ``k``, fused (RRF) or merged with the quotas scaled to ``k``."""
        self._check_fitted()
        k = check_int(k, "k", minimum=1)
        if self.method == "rrf":
            # A source of weight 0 adds nothing to the fused list: it is not asked.
            at_k, depth = self._setting_at(k)
            weights = {name: at_k.get(name, 1.0) for name in self.sources_ if at_k.get(name, 1.0) > 0}
            return fuse({name: self.sources_[name].retrieve(requests, logs, depth) for name in weights}, k, weights)
        frames = {name: src.retrieve(requests, logs, k) for name, src in self.sources_.items()}
        return merge(frames, _scale_quotas(self._quota_dict(), k), k=k)

    def save(self, directory: str | Path) -> None:
        """One sub-directory per source plus a manifest pinning each sub-manifest's sha256."""
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        for name, src in self.sources_.items():
            src.save(root / name)
        write_manifest(root, f"recall.{self.kind}", _FORMAT_VERSION, {
            "sources": list(self.sources), "method": self.method, "quotas": [int(q) for q in self.quotas],
            "weights": None if self.weights is None else [float(w) for w in self.weights],
            "learn_weights": bool(self.learn_weights), "exclude_seen": self.exclude_seen,
            "margin_z": float(self.margin_z), "learned": self.weights_, "source_params": self.source_params or {},
            "learned_by_k": None if not self.weights_by_k_ or not self.depth_by_k_ else {
                str(k): {"weights": w, "depth": int(self.depth_by_k_[k]), "margin": (self.margin_by_k_ or {}).get(k)}
                for k, w in self.weights_by_k_.items()},
            "sub_manifests": {name: sha256_file(root / name / "manifest.json") for name in self.sources}})

    @classmethod
    def load(cls, directory: str | Path) -> MergedRecall:
        """Load a merged source written by :meth:`save`, verifying every manifest."""
        root = Path(directory)
        meta = read_manifest(root, f"recall.{cls.kind}", _FORMAT_VERSION)["metadata"]
        weights = meta["weights"]
        self = cls(sources=tuple(meta["sources"]), method=meta["method"], quotas=tuple(meta["quotas"]),
                   weights=None if weights is None else tuple(weights), learn_weights=meta["learn_weights"],
                   exclude_seen=meta["exclude_seen"], source_params=meta["source_params"] or None,
                   margin_z=meta.get("margin_z", 0.0))  # before version 4: learned without a margin
        self.weights_ = {str(k): float(v) for k, v in meta["learned"].items()}
        by_k = meta.get("learned_by_k") or {}  # absent from version 2: one set for every K
        self.weights_by_k_ = {int(k): {str(n): float(w) for n, w in v["weights"].items()} for k, v in by_k.items()}
        self.depth_by_k_ = {int(k): int(v["depth"]) for k, v in by_k.items()}
        # absent before version 4 (no margin tested)
        self.margin_by_k_ = {int(k): dict(v["margin"]) for k, v in by_k.items() if v.get("margin")} or None
        if not by_k:
            self.weights_by_k_, self.depth_by_k_ = None, None
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


def _parse_pairs(texts: list[str], flag: str, cast: type) -> dict:
    out: dict = {}
    for text in texts:
        name, sep, value = text.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            parsed = cast(value)
        except ValueError:
            raise ValueError(f"{flag} must look like source={cast.__name__.upper()} (e.g. itemcf=600). "
                             f"Got {text!r} instead.") from None
        if name in out:
            raise ValueError(f"{flag} must name each source once. Got {name!r} twice.")
        out[name] = parsed
    return out


@command
def main(argv: list[str] | None = None) -> int:
    """``python -m recall.merge FILE1 FILE2 ... (--quota NAME=N ... | --rrf [--weight NAME=W]) --out FILE``."""
    cli = parser("recall.merge", "Merge candidate files (one source each): per-source quotas or rank fusion.")
    cli.add_argument("files", nargs="+", help="candidate files from python -m recall.retrieve (.parquet/.csv)")
    how = cli.add_mutually_exclusive_group(required=True)
    how.add_argument("--quota", action="append", default=[], metavar="SOURCE=N",
                     help="slots per request for a source, in priority order (repeatable)")
    how.add_argument("--rrf", action="store_true", help="reciprocal-rank fusion instead of quotas (needs --k)")
    cli.add_argument("--weight", action="append", default=[], metavar="SOURCE=W",
                     help="RRF weight of a source (default 1; repeatable)")
    cli.add_argument("--k", type=int, default=None, help="merged list length (default: sum of quotas)")
    cli.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    args = cli.parse_args(argv)
    if args.weight and not args.rrf:
        raise ValueError("--weight applies to --rrf only. Got --weight with --quota instead.")
    if args.rrf and args.k is None:
        raise ValueError("--rrf needs --k (the fused list length). Got none instead.")
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
    if args.rrf:
        merged = fuse(frames, args.k, _parse_pairs(args.weight, "--weight", float))
    else:
        merged = merge(frames, _parse_pairs(args.quota, "--quota", int), k=args.k)
    out = write_frame(merged, args.out)
    print(f"wrote {len(merged):,d} merged candidates for {merged['request_id'].nunique():,d} requests to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
