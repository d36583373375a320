"""Textbook recall baselines the project's sources are measured against (tests, benchmarks).

They are references, not product sources: no persistence, no graph search. Each is fitted on
the clicks of days <= ``train_end_day`` and retrieves, for a request, from *all* the user's
clicks strictly before it (training days and later), never returning an item the user
clicked before the request:

* ``"popularity"``: the most clicked training items;
* ``"cosine"``: item-CF with cosine similarity over all history, no window, no decay
  (Sarwar et al. 2001): ``S = D^-1/2 X'X D^-1/2`` with a zero diagonal, ``X`` the binary
  user x item click matrix and ``D`` its item counts; ``scores = h S`` with ``h`` the
  binary history row;
* ``"ease"``: EASE (Steck, WWW 2019), the closed form ``P = (X'X + lambda I)^-1``,
  ``B = I - P diag(1 / diag(P))`` (zero diagonal); ``scores = h B``. Dense ``n_items^2``:
  catalogues up to ~10-20k items; the training matrix is restricted to the
  ``max_items`` most clicked items.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr._validation import check_choice, check_float, check_int
from ltr.logs import Logs
from recall._checks import check_requests, check_train_end_day, id_array
from recall._history import history_of, split_clicks, with_clicks_after
from recall._seen import drop_seen, seen_pairs
from recall.base import finalize_candidates

__all__ = ["REFERENCES", "ReferenceRecall"]

REFERENCES = ("popularity", "cosine", "ease")


class ReferenceRecall:
    """A textbook baseline (see module docstring).

    Parameters
    ----------
    kind : {"popularity", "cosine", "ease"}
    lam : float, default 200.0
        EASE's L2 weight ``lambda``.
    max_items : int, default 12000
        EASE: only the most clicked training items take part (the inverse is dense).
    """

    def __init__(self, kind: str, lam: float = 200.0, max_items: int = 12000) -> None:
        self.kind = kind
        self.lam = lam
        self.max_items = max_items

    def fit(self, logs: Logs, train_end_day: int) -> ReferenceRecall:
        """Learn from the clicks of days <= ``train_end_day``."""
        check_choice(self.kind, "kind", REFERENCES)
        check_float(self.lam, "lam", low=0.0, low_open=True)
        check_int(self.max_items, "max_items", minimum=1)
        train_end_day = check_train_end_day(train_end_day)
        clicks, _ = split_clicks(logs, train_end_day)
        if not len(clicks):
            raise ValueError(f"logs must have clicks on or before train_end_day {train_end_day}. Got none.")
        counts = clicks["item_id"].value_counts()
        keep = counts.index.to_numpy() if self.kind != "ease" else counts.index.to_numpy()[:int(self.max_items)]
        self.item_ids_ = id_array(np.sort(keep))
        codes = pd.Index(self.item_ids_).get_indexer(clicks["item_id"].to_numpy()).astype(np.int64)
        users = pd.factorize(clicks["user_id"].to_numpy(dtype=object))[0]
        known = codes >= 0
        n = len(self.item_ids_)
        x = sp.csr_matrix((np.ones(int(known.sum())), (users[known], codes[known])),
                          shape=(int(users.max()) + 1, n))
        x.data[:] = 1.0
        self.popularity_ = np.asarray(x.sum(axis=0)).ravel()
        if self.kind == "cosine":
            gram = (x.T @ x).tocsr().astype(np.float64)
            inv = 1.0 / np.sqrt(np.maximum(gram.diagonal(), 1.0))
            sim = (sp.diags(inv) @ gram @ sp.diags(inv)).tocsr()
            sim.setdiag(0.0)
            sim.eliminate_zeros()
            self.similarity_ = sim
        elif self.kind == "ease":
            gram = (x.T @ x).toarray() + float(self.lam) * np.eye(n)
            p = np.linalg.inv(gram)
            b = -p / np.diag(p)[None, :]
            np.fill_diagonal(b, 0.0)
            self.similarity_ = b
        self.history_ = history_of(clicks, codes)
        self.train_end_day_ = train_end_day
        return self

    def retrieve(self, requests: pd.DataFrame, logs: Logs, k: int, chunk: int = 2048) -> pd.DataFrame:
        """Top-``k`` unclicked items per request, as a contract candidate frame."""
        k = check_int(k, "k", minimum=1)
        requests = check_requests(requests)
        history = with_clicks_after(self.history_, logs, self.train_end_day_, pd.Index(self.item_ids_).get_indexer)
        users = requests["user_id"].to_numpy()
        ts = requests["ts"].to_numpy(dtype=np.int64)
        seen = seen_pairs("clicks", history, users, ts)
        n, n_req = len(self.item_ids_), len(requests)
        out_req, out_item, out_score = [], [], []
        for start in range(0, n_req, chunk):  # bounded dense (requests x items) blocks
            stop = min(start + chunk, n_req)
            rows, items = seen
            mine = (rows >= start) & (rows < stop)
            h = sp.csr_matrix((np.ones(int(mine.sum())), (rows[mine] - start, items[mine])), shape=(stop - start, n))
            h.data[:] = 1.0
            if self.kind == "popularity":
                scores = np.tile(self.popularity_, (stop - start, 1))
            else:
                product = h @ self.similarity_
                scores = product.toarray() if sp.issparse(product) else np.asarray(product, dtype=np.float64)
                # Ties (e.g. a cold user's all-zero row) go to the more popular item.
                scores = scores + 1e-9 * self.popularity_ / max(self.popularity_.max(), 1.0)
            scores[h.nonzero()] = -np.inf
            take = min(k, n)
            top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            req = np.repeat(np.arange(start, stop), take)
            val = np.take_along_axis(scores, top, axis=1).ravel()
            ok = np.isfinite(val)
            out_req.append(req[ok])
            out_item.append(top.ravel()[ok])
            out_score.append(val[ok])
        req = np.concatenate(out_req) if out_req else np.zeros(0, np.int64)
        item = np.concatenate(out_item) if out_item else np.zeros(0, np.int64)
        score = np.concatenate(out_score) if out_score else np.zeros(0)
        keep = drop_seen(req, item, seen, n)
        return finalize_candidates(requests["request_id"].to_numpy()[req[keep]], self.item_ids_[item[keep]],
                                   score[keep], f"ref_{self.kind}", k)
