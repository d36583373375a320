"""What the torch recall sources (NIP, two-tower) share: parameter checks, fitting, the users'
query states, and the artifact directory.

A fitted source keeps its training days' clicks as a prepared :class:`ltr.logs.UserHistory`
of catalogue rows; ``retrieve`` adds only the clicks after ``train_end_day`` from the logs it
is given, so a loaded source needs no training logs.
"""
from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
import pandas as pd
import torch

from ltr._validation import check_bool, check_choice, check_float, check_int
from ltr.artifacts import ArtifactError, read_manifest, write_manifest
from ltr.logs import Logs, UserHistory, day_index
from recall._checks import check_requests, check_train_end_day, id_array
from recall._history import history_of, split_clicks, with_clicks_after
from recall._seen import check_exclude_seen, drop_seen, seen_pairs
from recall._state import under_prefix, with_prefix
from recall.base import RecallSource, finalize_candidates
from recall.hnsw import build_index
from recall.hnsw import save as save_index
from recall.neural._popularity import RecentClicks, score_inputs
from recall.neural._query_grid import query_grid
from recall.neural._towers import RecallNet, all_item_vectors
from recall.neural._trainer import TrainConfig, train_network
from recall.neural._training_data import build_training_samples
from recall.neural._vocab import ItemTable, encode_items, encode_profiles, item_vocab, user_vocab

__all__ = ["TorchRecallBase", "torch_threads"]

FORMAT_VERSION = 3  # 2: the training clicks are stored (history.* arrays); 3: profiles, training curve
_FILES = {"model": "model.pt", "index": "index.bin", "items": "items.npz", "params": "params.json"}


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run a block with ``threads`` torch threads (0 = leave torch's setting), restoring it after."""
    if threads <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchRecallBase(RecallSource):
    """Fit / save / load shared by the torch recall sources.

    Subclasses set ``kind``, store their parameters in ``__init__`` (at least those declared
    here) and implement ``_make_net(sizes)``; ``_build_index`` and ``_after_load`` may add
    search state.
    """

    _fitted_attribute = "net_"
    # Constructor parameters every torch source has (set by the subclasses' __init__).
    dim: int
    hidden: tuple[int, ...]
    history_len: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    temperature: float
    n_popular: int
    n_uniform: int
    in_batch: bool
    cascade: bool
    n_exposed: int
    n_per_segment: int
    cascade_weight: float
    order_weight: float
    id_dropout: float
    flatness: float
    M: int
    ef_construction: int
    ef_search: int | None
    exclude_seen: str
    max_per_category: int
    threads: int
    seed: int
    verbose: bool
    lr_schedule: str
    patience: int
    val_k: int
    refit: bool

    @abc.abstractmethod
    def _make_net(self, sizes: dict[str, Any]) -> RecallNet:
        """The untrained network for vocabularies of these ``sizes``."""

    def _validate_params(self) -> None:
        for name in ("dim", "history_len", "epochs", "batch_size", "M", "ef_construction"):
            check_int(getattr(self, name), name, minimum=1)
        if self.ef_search is not None:
            check_int(self.ef_search, "ef_search", minimum=1)
        check_exclude_seen(self.exclude_seen)
        for name in ("n_popular", "n_uniform", "n_exposed", "n_per_segment", "max_per_category", "threads", "seed"):
            check_int(getattr(self, name), name, minimum=0)
        for name in ("lr", "temperature", "order_weight"):
            check_float(getattr(self, name), name, low=0.0, low_open=True)
        for name in ("weight_decay", "cascade_weight", "flatness"):
            check_float(getattr(self, name), name, low=0.0)
        check_float(self.id_dropout, "id_dropout", low=0, high=1, high_open=True)
        for name in ("in_batch", "cascade", "verbose", "refit"):
            check_bool(getattr(self, name), name)
        check_choice(self.lr_schedule, "lr_schedule", ("cosine", "constant"))
        check_int(self.patience, "patience", minimum=1)
        check_int(self.val_k, "val_k", minimum=0)
        hidden = tuple(self.hidden)
        if not hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty tuple of ints in [1, inf). Got {self.hidden!r} instead.")
        if not self.in_batch and self.n_popular + self.n_uniform == 0:
            raise ValueError("n_popular + n_uniform must be >= 1 when in_batch is False (no negatives left). "
                             f"Got {self.n_popular} + {self.n_uniform} instead.")

    def _sizes(self) -> dict[str, Any]:
        iv, uv = self.item_vocab_, self.user_vocab_
        return {"n_ids": len(iv["id"]), "n_categories": len(iv["category"]), "n_cities": len(iv["city"]),
                "n_prices": len(iv["price_edges"]) + 1, "dense_dim": int(iv["dense_dim"]),
                "profile_sizes": [len(v) for v in uv.values()]}

    def _train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           weight_decay=self.weight_decay, temperature=self.temperature,
                           n_popular=self.n_popular, n_uniform=self.n_uniform, in_batch=self.in_batch,
                           cascade_weight=self.cascade_weight, id_dropout=self.id_dropout,
                           flatness=self.flatness, seed=self.seed, verbose=self.verbose, desc=self.kind,
                           lr_schedule=self.lr_schedule, patience=self.patience)

    def fit(self, logs: Logs, train_end_day: int) -> TorchRecallBase:
        """Train on days <= ``train_end_day`` and index every catalogue item's vector.

        With ``val_k > 0`` and clicks on ``train_end_day``, that day is the validation day:
        the network trains on the days before it, its hitrate@``val_k`` on the day's clicks
        (exact scoring, up to 500 requests) is measured after every epoch, training stops
        after ``patience`` epochs without a better one and the best epoch is kept. With
        ``refit``, a new network (same seed) is then trained on every day up to and including
        the validation day for the best epoch's number of epochs, and that one is kept: the
        validation day's clicks (the most recent trends, and the ids first clicked that day)
        are learned too. The training curve is ``curve_`` (the refit's epochs marked
        ``refit``; also in the saved ``params.json`` and manifest).

        Returns
        -------
        self
        """
        self._validate_params()
        train_end_day = check_train_end_day(train_end_day)
        val = self._validation_requests(logs, train_end_day)
        net, curve, n_data = self._train(logs, train_end_day, val, self._train_config())
        if val is not None and self.refit:
            best = max(curve, key=lambda point: point["val_hitrate"])  # the first of equal ones
            config = dataclasses.replace(self._train_config(), epochs=int(best["epoch"]))
            net, refit, n_data = self._train(logs, train_end_day, None, config)
            curve = curve + [dict(point, refit=1.0) for point in refit]
        self.curve_ = curve
        self.losses_ = [point["loss"] for point in self.curve_]
        self.net_ = net
        self.profile_users_ = (id_array(logs.users["user_id"].drop_duplicates().to_numpy())
                               if logs.users is not None else np.zeros(0, np.int64))
        self.profile_codes_ = encode_profiles(logs, self.user_vocab_, self.profile_users_)
        self.profile_index_ = pd.Index(self.profile_users_)  # the users' lookup, built once
        self.train_end_day_ = train_end_day
        self.n_train_positives_ = n_data
        self._build_index()
        return self

    def _train(self, logs: Logs, train_end_day: int, val: tuple[pd.DataFrame, pd.DataFrame] | None,
               config: TrainConfig) -> tuple[RecallNet, list[dict[str, float]], int]:
        """One training run: on the days before ``train_end_day`` validated on it (``val``), or on
        every day up to it (``val`` None); sets the vocabularies, item table, click history and
        item vectors, returns the network, its curve and the number of training positives."""
        clicks, _ = split_clicks(logs, train_end_day)
        data = build_training_samples(logs, train_end_day - (val is not None), order_weight=self.order_weight,
                                      n_exposed=self.n_exposed, n_per_segment=self.n_per_segment,
                                      cascade=self.cascade, seed=self.seed)
        self.item_vocab_ = item_vocab(logs, data.item_id)
        self.user_vocab_ = user_vocab(logs)
        table = encode_items(logs, self.item_vocab_)
        # Clicks on items outside the catalogue keep their place in the window (masked as -1).
        history = history_of(clicks, table.rows(clicks["item_id"].to_numpy()), keep_unknown=True)
        hist = history.last_before(data.user_id, data.ts, self.history_len)[0]
        profiles = encode_profiles(logs, self.user_vocab_, data.user_id)
        rows = table.rows(data.item_id)
        pop_counts = np.bincount(rows[rows >= 0], minlength=table.n).astype(np.float64)
        with torch_threads(self.threads):
            torch.manual_seed(self.seed)
            net = self._make_net(self._sizes())
            recent = self._recent_clicks(history)
            validate = None if val is None else _hitrate_fn(net, table, history, logs, self, *val, recent)
            curve = train_network(net, config, table, data, hist, profiles, pop_counts, validate, recent)
            self.item_vectors_ = all_item_vectors(net, table)
        self.item_table_ = table
        self.history_ = history
        return net, curve, len(data)

    def _validation_requests(self, logs: Logs, day: int) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """Up to 500 requests of ``day`` with clicks, and their clicked items; None when off."""
        if not self.val_k:
            return None
        days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
        requests = logs.requests.loc[days == day, ["request_id", "user_id", "ts"]]
        clicks = logs.clicks.loc[logs.clicks["request_id"].isin(requests["request_id"]), ["request_id", "item_id"]]
        requests = requests.loc[requests["request_id"].isin(clicks["request_id"])]
        if not len(requests):
            return None
        requests = requests.sample(n=min(500, len(requests)), random_state=self.seed).reset_index(drop=True)
        return requests, clicks.loc[clicks["request_id"].isin(requests["request_id"])].drop_duplicates()

    def _build_index(self) -> None:
        self.index_ = build_index(self.item_vectors_, np.arange(self.item_table_.n), M=self.M,
                                  ef_construction=self.ef_construction, seed=self.seed)

    def _after_load(self, index_path: Path) -> None:
        """Hook for subclasses that need more than the hnswlib index (e.g. the parsed graph)."""

    def _recent_clicks(self, history: UserHistory) -> RecentClicks | None:
        """The point-in-time popularity counts of ``history``'s clicks for a scorer that takes
        them (None: the network has no popularity input)."""
        return None

    def click_history(self, logs: Logs | None) -> UserHistory:
        """The fitted training clicks plus the clicks of ``logs`` after ``train_end_day_``
        (only the fitted ones when ``logs`` is None: no log scan)."""
        self._check_fitted()
        return with_clicks_after(self.history_, logs, self.train_end_day_, self.item_table_.rows, keep_unknown=True)

    def _profiles(self, user_ids: np.ndarray, logs: Logs | None) -> np.ndarray:
        """Profile codes of ``user_ids``: from ``logs.users`` when given, else those kept at fit."""
        if logs is not None:
            return encode_profiles(logs, self.user_vocab_, user_ids)
        row = self.profile_index_.get_indexer(np.asarray(user_ids))
        codes = self.profile_codes_[np.maximum(row, 0)]
        codes[row < 0] = 0  # an unknown user: every profile column unknown
        return codes

    def _query_inputs(self, requests: pd.DataFrame, logs: Logs | None,
                      history: UserHistory | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-request history rows ``(n, history_len)`` (clicks strictly before each request's ts,
        -1 = padding) and profile codes."""
        requests = check_requests(requests)
        history = self.click_history(logs) if history is None else history
        hist = history.last_before(requests["user_id"].to_numpy(), requests["ts"].to_numpy(dtype=np.int64),
                                   self.history_len)[0]
        return hist, self._profiles(requests["user_id"].to_numpy(), logs)

    @torch.no_grad()
    def _query_states(self, requests: pd.DataFrame, logs: Logs | None,
                      history: UserHistory | None = None) -> tuple[torch.Tensor, ...]:
        """Per-request query state tensors (history strictly before each request's ts)."""
        hist, profiles = self._query_inputs(requests, logs, history)
        # Padding slots take item 0's vector: they are masked (attention) or weigh 0 (pooling).
        vecs = torch.from_numpy(self.item_vectors_)[torch.from_numpy(np.maximum(hist, 0))]
        return self.net_.query_state(vecs, torch.from_numpy(hist >= 0), torch.from_numpy(profiles))

    def _beam_width(self, k: int, ef_search: int | None) -> int:
        """The search beam for ``k`` items: ``ef_search``, or ``2 * k`` when it is None; an
        ``ef_search`` smaller than ``k`` is an error (never silently widened)."""
        ef = self.ef_search if ef_search is None else ef_search
        if ef is None:
            return 2 * k
        ef = check_int(ef, "ef_search", minimum=1)
        if ef < k:
            raise ValueError(f"k must be <= ef_search ({ef}), the beam that holds the results. Got k={k} instead: "
                             "set a wider ef_search (python -m recall.retrieve --ef) or ask for fewer items.")
        return ef

    def _unseen_top(self, requests: pd.DataFrame, logs: Logs | None, k: int,
                    search: Callable[[pd.DataFrame, UserHistory, int, int], tuple[np.ndarray, np.ndarray]],
                    ef: int) -> pd.DataFrame:
        """The contract frame of each request's best ``k`` items it has not seen (``exclude_seen``).

        ``search(requests, history, k', ef')`` returns catalogue rows and scores ``(n, k')`` with
        a beam of ``ef'``. A request that has seen ``s`` items asks for ``k + e`` items with a
        beam ``e`` wider, ``e`` the power of two >= ``s`` (0 when nothing was seen): every list
        keeps ``k`` unseen items, and a request's search depends on its own history only, so a
        batch gives what one request at a time gives (requests are searched in a few groups).
        """
        requests = check_requests(requests)
        history = self.click_history(logs)
        seen = seen_pairs(self.exclude_seen, history, requests["user_id"].to_numpy(),
                          requests["ts"].to_numpy(dtype=np.int64), logs, self.item_table_.rows)
        n_seen = np.bincount(seen[0], minlength=len(requests))
        extra = np.where(n_seen > 0, 2 ** np.ceil(np.log2(np.maximum(n_seen, 1))), 0).astype(np.int64)
        out_rows, out_items, out_scores = [], [], []
        for value in np.unique(extra):  # a handful of groups (powers of two)
            group = np.flatnonzero(extra == value)
            fetch = min(k + int(value), self.item_table_.n)
            labels, scores = search(requests.iloc[group], history, fetch, ef + int(value))
            rows, cols = np.nonzero(labels >= 0)
            out_rows.append(group[rows])
            out_items.append(labels[rows, cols])
            out_scores.append(scores[rows, cols])
        rows = np.concatenate(out_rows) if out_rows else np.zeros(0, np.int64)
        item_rows = np.concatenate(out_items) if out_items else np.zeros(0, np.int64)
        scores = np.concatenate(out_scores) if out_scores else np.zeros(0, np.float32)
        keep = drop_seen(rows, item_rows, seen, self.item_table_.n)
        return finalize_candidates(requests["request_id"].to_numpy()[rows[keep]],
                                   self.item_table_.item_ids[item_rows[keep]], scores[keep], self.kind, k)

    def _score_fn(self, state: tuple[torch.Tensor, ...], chunk: int = 16384,
                  popularity: tuple[np.ndarray, RecentClicks] | None = None
                  ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``score_fn(query_index, item_rows)`` over pairs, in chunks, for graph/exact search.

        Pairs are laid out as a (queries x items) grid, padded with item 0 where a query has
        fewer items: each query's state is used once for all its items (no per-pair copy of
        its attention keys), which is what makes one request's search rounds cheap.
        ``popularity``: the queries' request times and the click counts, for a network with a
        popularity input.
        """
        vecs = torch.from_numpy(self.item_vectors_)
        net = self.net_

        @torch.no_grad()
        def score(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
            out = np.empty(queries.shape[0], dtype=np.float32)
            for s in range(0, queries.shape[0], chunk):
                q, rows = queries[s:s + chunk], items[s:s + chunk]
                uniq, inverse, slot, grid = query_grid(q, rows)
                part = tuple(t[torch.from_numpy(uniq)] for t in state)
                extra = {} if popularity is None else score_inputs(popularity[1], popularity[0][uniq])(grid)
                out[s:s + chunk] = net.score(part, vecs[torch.from_numpy(grid)], **extra).numpy()[inverse, slot]
            return out

        return score

    def save(self, directory: str | Path) -> None:
        """Write ``model.pt`` (state_dict), ``index.bin`` (hnswlib), ``items.npz`` (item table,
        vectors, id vocabulary, training clicks), ``params.json`` and the manifest."""
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        for name in _FILES.values():
            (root / name).unlink(missing_ok=True)
        torch.save(self.net_.state_dict(), root / _FILES["model"])
        save_index(self.index_, root / _FILES["index"])
        table_meta, table_arrays = self.item_table_.to_state()
        history_meta, history_arrays = self.history_.to_state()
        arrays: dict[str, Any] = {"vectors": self.item_vectors_, "id_vocab": id_array(self.item_vocab_["id"]),
                                  "profile_users": self.profile_users_, "profile_codes": self.profile_codes_,
                                  **with_prefix("table", table_arrays), **with_prefix("history", history_arrays)}
        np.savez(root / _FILES["items"], **arrays)
        params = {"params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()},
                  "item_vocab": {k: v for k, v in self.item_vocab_.items() if k != "id"},
                  "user_vocab": [[k, v] for k, v in self.user_vocab_.items()],
                  "item_table": table_meta, "history": history_meta,
                  "losses": self.losses_, "curve": self.curve_, "train_end_day": self.train_end_day_,
                  "n_train_positives": self.n_train_positives_}
        (root / _FILES["params"]).write_text(json.dumps(params, indent=1, sort_keys=True) + "\n")
        write_manifest(root, f"recall.{self.kind}", FORMAT_VERSION,
                       {"train_end_day": self.train_end_day_, "n_items": self.item_table_.n,
                        "dim": int(self.item_vectors_.shape[1]), "space": "l2", "M": self.M,
                        "ef_construction": self.ef_construction, "files": _FILES, "curve": self.curve_})

    @classmethod
    def load(cls, directory: str | Path) -> TorchRecallBase:
        """Load a directory written by :meth:`save`, verifying every file's checksum.

        Raises
        ------
        ltr.artifacts.ArtifactError
            Wrong kind, another format version, missing or tampered files.
        """
        root = Path(directory)
        version = read_manifest(root, f"recall.{cls.kind}", FORMAT_VERSION)["format_version"]
        if version < FORMAT_VERSION:
            raise ArtifactError(f"{root} was written in format {version}, without the training clicks this "
                                f"version keeps (format {FORMAT_VERSION}); train it again.")
        try:
            obj = cls._from_files(root)
        except (KeyError, ValueError, RuntimeError, TypeError, OSError) as exc:
            raise ArtifactError(f"{root} could not be loaded as recall.{cls.kind}: {exc}") from None
        obj._after_load(root / _FILES["index"])
        return obj

    @classmethod
    def _from_files(cls, root: Path) -> TorchRecallBase:
        meta = json.loads((root / _FILES["params"]).read_text())
        obj = cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["params"].items()})
        with np.load(root / _FILES["items"], allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        obj.item_vocab_ = dict(meta["item_vocab"], id=arrays["id_vocab"].tolist())
        obj.user_vocab_ = {str(k): list(v) for k, v in meta["user_vocab"]}
        obj.item_table_ = ItemTable.from_state(meta["item_table"], under_prefix("table", arrays))
        obj.history_ = UserHistory.from_state(meta["history"], under_prefix("history", arrays))
        obj.item_vectors_ = arrays["vectors"]
        obj.profile_users_ = arrays["profile_users"]
        obj.profile_codes_ = arrays["profile_codes"]
        obj.profile_index_ = pd.Index(obj.profile_users_)
        obj.losses_ = list(meta["losses"])
        obj.curve_ = [dict(point) for point in meta["curve"]]
        obj.train_end_day_ = int(meta["train_end_day"])
        obj.n_train_positives_ = int(meta["n_train_positives"])
        net = obj._make_net(obj._sizes())
        net.load_state_dict(torch.load(root / _FILES["model"], weights_only=True))
        net.eval()
        obj.net_ = net
        index = hnswlib.Index(space="l2", dim=int(obj.item_vectors_.shape[1]))
        index.load_index(str(root / _FILES["index"]), max_elements=obj.item_table_.n)
        obj.index_ = index
        return obj


def _hitrate_fn(net: RecallNet, table: ItemTable, history: UserHistory, logs: Logs, source: TorchRecallBase,
                requests: pd.DataFrame, clicks: pd.DataFrame, recent: RecentClicks | None) -> Callable[[], float]:
    """``validate()``: the share of ``clicks`` in the top ``val_k`` of the network's exact scores
    (with ``recent``, each request's point-in-time item popularity is a scorer input)."""
    hist = history.last_before(requests["user_id"].to_numpy(), requests["ts"].to_numpy(dtype=np.int64),
                               source.history_len)[0]
    profiles = torch.from_numpy(encode_profiles(logs, source.user_vocab_, requests["user_id"].to_numpy()))
    target_rows = pd.Index(requests["request_id"]).get_indexer(clicks["request_id"].to_numpy())
    target_items = table.rows(clicks["item_id"].to_numpy())
    k = min(int(source.val_k), table.n)
    ts, all_rows = requests["ts"].to_numpy(dtype=np.int64), np.arange(table.n, dtype=np.int64)

    @torch.no_grad()
    def validate() -> float:
        vecs = torch.from_numpy(all_item_vectors(net, table))
        padded = torch.cat([vecs, vecs.new_zeros((1, vecs.shape[1]))])
        state = net.query_state(padded[torch.from_numpy(np.where(hist >= 0, hist, table.n))],
                                torch.from_numpy(hist >= 0), profiles)
        top = np.empty((len(requests), k), dtype=np.int64)
        step = max(1, 500_000 // max(table.n, 1))  # bounded (requests x items) score blocks
        for s in range(0, len(requests), step):
            extra = score_inputs(recent, ts[s:s + step])(all_rows[None])
            scores = net.score(tuple(t[s:s + step] for t in state), vecs[None], **extra).numpy()
            top[s:s + step] = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        found = (top[target_rows] == target_items[:, None]).any(axis=1)
        return float(found.mean())

    return validate
