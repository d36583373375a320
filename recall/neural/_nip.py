"""Non-inner-product (NIP) recall: a torch scorer searched through an HNSW graph (seed 000).

Model. The item tower maps item id (slot 0 = unknown id), category, city, price bucket and
the catalogue embedding to a vector ``v``. That vector is the only *fixed* item input of
the scorer, and it is the vector indexed in HNSW, so graph neighbours are items the scorer
treats alike (with static item features outside the vector, graph search loses much of its
recall). The user's last ``history_len`` clicks strictly before the request (their item
vectors, the same tower) are attended by the target item with scaled dot-product attention;
a learned "empty history" key/value slot is always present, so a cold user with no clicks
gets a learned default interest instead of an undefined softmax. An MLP over
``[interest, profile, v, interest * v, popularity]`` outputs the match score, ``popularity``
being the item's clicks in the hours just before the request (``popularity_windows``,
point-in-time: :mod:`recall.neural._popularity`), the one input that changes with the
request's time. There is no user vector.

Retrieval. hnswlib (space l2) is built on the item vectors; its graph is parsed
(:mod:`recall.hnsw._format`) and walked layer by layer with a beam (:mod:`recall.hnsw._search`),
scoring each round's frontier of many requests with one batched network call; an optional
per-category cap applies on the bottom level. ``exact=True`` scores every catalogue item
(the reference).

Every catalogue item is indexed (:func:`recall._catalogue.catalogue`: the items table plus the
items the logs show that it lacks, whose attributes are all missing); an item without training
interactions still gets a vector from its category and attributes (ids are dropped out in
training so that fallback is learned).
"""
from __future__ import annotations

import copy
import itertools
import math
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import ThreadpoolController
from torch import nn

from ltr._validation import check_int
from ltr.artifacts import ArtifactError
from ltr.logs import Logs, UserHistory
from recall.hnsw import LayeredBeamSearch, SearchResult, exact_search, read_graph, save
from recall.neural._base import TorchRecallBase, torch_threads
from recall.neural._nip_numpy import PreparedNIPScorer
from recall.neural._popularity import RecentClicks
from recall.neural._towers import ItemTower, ProfileEmbedding, RecallNet

__all__ = ["NIPNet", "NIPRecall"]


class NIPNet(RecallNet):
    """Item tower + target attention over the behaviour sequence + profile -> MLP score."""

    def __init__(self, tower: ItemTower, profile_sizes: list[int], dim: int, hidden: tuple[int, ...],
                 n_popularity: int = 0) -> None:
        super().__init__()
        self.tower = tower
        self.profile = ProfileEmbedding(profile_sizes)
        self.dim = dim
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, dim, bias=False)
        self.wv = nn.Linear(dim, dim)
        self.null_key = nn.Parameter(torch.zeros(dim))
        self.null_value = nn.Parameter(torch.zeros(dim))
        h1 = hidden[0]
        # The first MLP layer, split by input block: W [interest, profile, v, interest*v].
        self.w_interest = nn.Linear(dim, h1)
        self.w_profile = nn.Linear(self.profile.dim, h1, bias=False) if self.profile.dim else None
        self.w_item = nn.Linear(dim, h1, bias=False)
        self.w_cross = nn.Linear(dim, h1, bias=False)
        # The item's point-in-time popularity (recall.neural._popularity), outside the indexed vector.
        self.w_popularity = nn.Linear(n_popularity, h1, bias=False) if n_popularity else None
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(hidden):
            layers += [nn.ReLU(), nn.Linear(a, b)]
        layers += [nn.ReLU(), nn.Linear(hidden[-1], 1)]
        self.head = nn.Sequential(*layers)

    def item_vectors(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.tower(feats)

    def query_state(self, hist: torch.Tensor, mask: torch.Tensor, profile: torch.Tensor) -> tuple:
        """Keys, values, mask (with the empty-history slot first) and the profile's MLP part."""
        n = hist.shape[0]
        keys = torch.cat([self.null_key.expand(n, 1, -1), self.wk(hist)], dim=1)
        values = torch.cat([self.null_value.expand(n, 1, -1), self.wv(hist)], dim=1)
        full_mask = torch.cat([torch.ones((n, 1), dtype=torch.bool), mask], dim=1)
        if self.w_profile is not None:
            qpart = self.w_profile(self.profile(profile))
        else:
            qpart = hist.new_zeros((n, self.w_item.out_features))
        return keys, values, full_mask, qpart

    def score(self, state: tuple, items: torch.Tensor, popularity: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B, C) of items ``(B or 1, C, dim)`` for the B queries of ``state``; with
        ``popularity_windows``, ``popularity`` ``(B, C, n_windows)`` holds the pairs' features."""
        keys, values, mask, qpart = state
        q = self.wq(items) / math.sqrt(self.dim)
        logits = torch.matmul(q, keys.transpose(1, 2)).masked_fill(~mask[:, None, :], -torch.inf)
        interest = torch.matmul(torch.softmax(logits, dim=-1), values)
        h = self.w_interest(interest) + self.w_cross(interest * items) + self.w_item(items) + qpart[:, None, :]
        if self.w_popularity is not None:
            if popularity is None:
                raise ValueError("popularity must be given to a network with popularity windows. Got None instead.")
            h = h + self.w_popularity(popularity)
        return self.head(h).squeeze(-1)


class NIPRecall(TorchRecallBase):
    """NIP recall source: a non-inner-product scorer (sampled softmax, optionally the cascade),
    HNSW graph beam search.

    Parameters
    ----------
    dim : int, default 32
        Item vector size (the indexed vector).
    hidden : tuple of int, default (64, 32)
        MLP widths.
    history_len : int, default 20
        Clicks in the behaviour sequence.
    epochs, batch_size, lr, weight_decay : training settings
        Adam, at most ``epochs`` (default 10) passes; ``batch_size`` positives per step (each
        sees the batch's other positives as in-batch negatives).
    lr_schedule : {"cosine", "constant"}, default "cosine"
        Learning rate per step: cosine decay from ``lr`` to ``lr / 20`` over all planned steps.
    patience : int, default 2
        Early stopping: epochs without a better validation hitrate before training stops.
    val_k : int, default 100
        Validation: the last training day is held out and its clicks' hitrate@``val_k`` is
        measured after every epoch (the best epoch is kept); 0 trains on every day, no
        validation, for ``epochs`` epochs.
    refit : bool, default True
        After validation, train a new network on every day, the validation day included, for
        the best epoch's number of epochs, and keep that one (see ``TorchRecallBase.fit``):
        the most recent day's trends and newly clicked ids are learned, not only validated on.
    temperature : float, default 1.0
        Logits are divided by it before the logQ correction.
    n_popular, n_uniform : int, default 64, 64
        Shared sampled negatives per batch (popularity ** 0.75 and uniform over the catalogue).
    in_batch : bool, default True
        Use in-batch negatives (logQ-corrected with the streaming frequency estimator).
    cascade : bool, default False
        Add exposed-not-clicked and ranker-segment negatives with the ordered softmax levels
        (seed 000). Off by default, by measurement: without them NIP retrieves more held-out
        clicks on the development slice (hitrate@100 0.2484 against 0.2262) and on the simulated
        worlds of the recall ablation (README, "Recall", the ablation tables).
    n_exposed, n_per_segment : int, default 4, 4
        Hard negatives per positive (see :mod:`recall.neural._training_data`).
    cascade_weight : float, default 1.0
        Weight of the lower cascade levels' softmax terms.
    order_weight : float, default 3.0
        Weight of ordered positives (clicks weigh 1).
    id_dropout : float, default 0.1
        Share of item ids hidden in training so unseen items get a learned fallback vector.
    flatness : float, default 0.0
        Weight of the NANN-style adversarial flatness penalty on the item vector (0 = off).
    popularity_windows : tuple of int, default (3, 24)
        Hour windows of the item's point-in-time popularity, a scorer input beside the item
        vector (:mod:`recall.neural._popularity`): per window, ``log1p`` of the item's clicks
        in that many hours strictly before the request's hour, counted over the training clicks
        and those of the logs given to :meth:`retrieve`; () = no popularity input. It enters
        the first MLP layer, so the scorer combines the user's interest with what is trending
        now, which a cosine of two towers cannot. The indexed vector stays the only *fixed*
        item input; the graph is walked with the full score (popularity included), and its
        recall against exact scoring is measured (README, "Recall": on the development slice
        graph search keeps exact scoring's hitrates to within 0.002).
    M, ef_construction : int, default 16, 200
        hnswlib graph parameters.
    ef_search : int or None, default None
        Bottom-level beam width; None = ``2 * k``. A value below the ``k`` asked for is an error
        (never silently widened). ``exclude_seen`` widens it by the items it drops.
    ef_upper : int, default 32
        Beam width on upper levels (wide: it seeds level 0 in several regions of the catalogue,
        and upper levels are small; bench/bench_nip_search.py).
    expand_per_round : int, default 64
        Beam nodes expanded per query and search round: fewer items scored per round (closer to
        best-first) against more rounds, each a scorer call (the latency of one request). At
        200k items 64 keeps more of the exact top-200 than 32 (0.993 against 0.980 with
        ``ef_search=400``) in 28% fewer rounds (14 against 20) for 11% more items scored.
    exhaustive_upper : int, default 1024
        Upper graph levels with at most this many items are scored whole in one round instead
        of walked (a few hundred items at 20k-200k items against about 8 rounds; 0 walks every
        level). Each round is a scorer call, which is what one request's latency is made of.
    exclude_seen : {"clicks", "exposures", "none"}, default "clicks"
        Items :meth:`retrieve` never returns: those the user clicked (or was also exposed to)
        before the request.
    max_per_category : int, default 0
        Diversity cap per category in the bottom level and the results (0 = no cap).
    threads : int, default 1
        torch threads while fitting/retrieving, and numpy's BLAS threads in exact search (0 =
        leave the settings); restored after. Graph search runs BLAS on one thread whatever this
        says: its products are small, and a second thread only adds synchronisation.
        One thread makes training bit-reproducible for a seed (multi-threaded CPU kernels sum
        gradients in a varying order) and is as fast as two on these small batches.
    seed : int, default 0
    verbose : bool, default False
        Progress bar on stderr while training.
    """

    kind = "nip"

    def __init__(self, dim: int = 32, hidden: tuple[int, ...] = (64, 32), history_len: int = 20, epochs: int = 10,
                 batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 0.0, temperature: float = 1.0,
                 n_popular: int = 64, n_uniform: int = 64, in_batch: bool = True, cascade: bool = False,
                 n_exposed: int = 4, n_per_segment: int = 4, cascade_weight: float = 1.0,
                 order_weight: float = 3.0, id_dropout: float = 0.1, flatness: float = 0.0,
                 popularity_windows: tuple[int, ...] = (3, 24), M: int = 16,
                 ef_construction: int = 200, ef_search: int | None = None, ef_upper: int = 32,
                 expand_per_round: int = 64, exhaustive_upper: int = 1024, max_per_category: int = 0,
                 exclude_seen: str = "clicks",
                 lr_schedule: str = "cosine", patience: int = 2, val_k: int = 100, refit: bool = True,
                 threads: int = 1, seed: int = 0,
                 verbose: bool = False) -> None:
        self.dim = dim
        self.hidden = hidden
        self.history_len = history_len
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.n_popular = n_popular
        self.n_uniform = n_uniform
        self.in_batch = in_batch
        self.cascade = cascade
        self.n_exposed = n_exposed
        self.n_per_segment = n_per_segment
        self.cascade_weight = cascade_weight
        self.order_weight = order_weight
        self.id_dropout = id_dropout
        self.flatness = flatness
        self.popularity_windows = popularity_windows
        self.M = M
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.ef_upper = ef_upper
        self.expand_per_round = expand_per_round
        self.exhaustive_upper = exhaustive_upper
        self.max_per_category = max_per_category
        self.exclude_seen = exclude_seen
        self.lr_schedule = lr_schedule
        self.patience = patience
        self.val_k = val_k
        self.refit = refit
        self.threads = threads
        self.seed = seed
        self.verbose = verbose

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int(self.ef_upper, "ef_upper", minimum=1)
        check_int(self.expand_per_round, "expand_per_round", minimum=1)
        check_int(self.exhaustive_upper, "exhaustive_upper", minimum=0)
        windows = self.popularity_windows
        if not isinstance(windows, (tuple, list)) or any(
                isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1 for w in windows):
            raise ValueError(f"popularity_windows must be a tuple of ints in [1, inf) (hours). "
                             f"Got {windows!r} instead.")

    def _make_net(self, sizes: dict[str, Any]) -> NIPNet:
        tower = ItemTower(sizes["n_ids"], sizes["n_categories"], sizes["n_cities"], sizes["n_prices"],
                          sizes["dense_dim"], self.dim, max(self.hidden[0], self.dim))
        return NIPNet(tower, sizes["profile_sizes"], self.dim, tuple(int(h) for h in self.hidden),
                      n_popularity=len(self.popularity_windows))

    def _recent_clicks(self, history: UserHistory) -> RecentClicks | None:
        if not len(self.popularity_windows):
            return None
        return RecentClicks(history.time, history.item, tuple(int(w) for w in self.popularity_windows))

    def _build_index(self) -> None:
        super()._build_index()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index.bin"
            save(self.index_, path)
            self.graph_ = read_graph(path, dim=self.item_vectors_.shape[1])
        self.searcher_ = self._searcher()
        self.scorer_ = PreparedNIPScorer(self.net_, self.item_vectors_)
        self.recent_ = self._recent_clicks(self.history_)
        self.blas_ = ThreadpoolController()  # finds the BLAS libraries once, not per request

    def _after_load(self, index_path: Path) -> None:
        try:
            self.graph_ = read_graph(index_path, dim=self.item_vectors_.shape[1])
        except ValueError as exc:
            raise ArtifactError(f"{index_path} is not a valid hnswlib index: {exc}") from None
        self.searcher_ = self._searcher()
        self.scorer_ = PreparedNIPScorer(self.net_, self.item_vectors_)
        self.recent_ = self._recent_clicks(self.history_)
        self.blas_ = ThreadpoolController()  # finds the BLAS libraries once, not per request

    def _searcher(self) -> LayeredBeamSearch:
        """The graph search with its neighbour tables prepared once (a request must not pay
        for them); each search uses a copy with its own beam width."""
        cap = int(self.max_per_category) or None
        searcher = LayeredBeamSearch(ef0=1, ef_upper=self.ef_upper, expand_per_round=self.expand_per_round,
                                     exhaustive_upper=self.exhaustive_upper, max_per_category=cap,
                                     query_batch_size=256)
        return searcher.fit(self.graph_, categories=self.item_table_.categories if cap else None)

    def search(self, requests: pd.DataFrame, logs: Logs | None, k: int, exact: bool = False,
               ef_search: int | None = None) -> SearchResult:
        """Top-``k`` catalogue rows per request (graph search, or every item with ``exact``).

        The model's own top ``k``: seen items are not excluded here (:meth:`retrieve` does).

        Parameters
        ----------
        requests : DataFrame
            ``request_id, user_id, ts``.
        logs : Logs or None
            Source of click histories after the training days (only clicks strictly before
            each request's ts count) and user profiles; None: what the source keeps.
        k : int
            Items per request; capped at the catalogue size.
        exact : bool, default False
            Score every item (brute force) instead of walking the graph.
        ef_search : int, optional
            Overrides the fitted ``ef_search``; must be >= ``k``.

        Returns
        -------
        SearchResult
            ``labels`` are catalogue rows (``item_table_.item_ids[labels]`` are item ids);
            ``n_scored`` counts the items scored per request.
        """
        self._check_fitted()
        k = min(check_int(k, "k", minimum=1), self.item_table_.n)
        return self._search(requests, logs, None, k, exact, self._beam_width(k, ef_search))

    def _search(self, requests: pd.DataFrame, logs: Logs | None, history: UserHistory | None, k: int,
                exact: bool, ef: int) -> SearchResult:
        cap = int(self.max_per_category) or None
        cats = self.item_table_.categories
        # A graph search round's products are small: more BLAS threads than one only add
        # synchronisation (tens to hundreds of milliseconds per request on the loaded 2-core
        # machine, bench/bench_nip_search.py), so graph search runs BLAS on one thread; the
        # exact search's large products use `threads`.
        limit = self.threads if exact else 1
        blas = self.blas_.limit(limits=limit, user_api="blas") if limit else nullcontext()
        with torch_threads(self.threads), blas:
            history = self.click_history(logs) if history is None else history
            # The counts of the stored clicks are built once (the single-request path, logs=None).
            recent = self.recent_ if history is self.history_ else self._recent_clicks(history)
            popularity = None if recent is None else (requests["ts"].to_numpy(dtype=np.int64), recent)
            state = self.scorer_.query_state(*self._query_inputs(requests, logs, history), popularity)
            score = self.scorer_.score_fn(state)
            queries = np.arange(len(requests), dtype=np.int64)
            if exact:
                return exact_search(score, queries, self.item_table_.n, k, batch_size=1 << 18,
                                    categories=cats if cap else None, max_per_category=cap)
            searcher = copy.copy(self.searcher_)  # shares the prepared tables
            searcher.ef0 = ef
            return searcher.search(score, queries, k)

    def retrieve(self, requests: pd.DataFrame, logs: Logs | None, k: int, exact: bool = False) -> pd.DataFrame:
        """Top-``k`` unseen items per request as a contract candidate frame (``source`` = ``"nip"``).

        A user with no clicks before the request is scored through the learned empty-history
        slot (and the profile); ``k`` larger than the catalogue returns the whole catalogue.
        ``logs=None`` retrieves from what the source keeps (no log scan).
        """
        self._check_fitted()
        k = check_int(k, "k", minimum=1)
        ef = self._beam_width(min(k, self.item_table_.n), None)

        def run(part: pd.DataFrame, history: UserHistory, fetch: int, width: int) -> tuple[np.ndarray, np.ndarray]:
            result = self._search(part, logs, history, fetch, exact, width)
            return result.labels, result.scores

        return self._unseen_top(requests, logs, k, run, ef)
