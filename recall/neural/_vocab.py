"""Vocabularies of the torch recall models: the catalogue encoded for the item tower, and the
users' profile columns encoded for the profile embeddings.

Every attribute is categorical with code 0 for "unknown" (a value unseen when fitting); a
missing value is the level ``<na>`` of the vocabulary, and so is an attribute of an item or
user absent from its table (real logs have items without a category, exposed items the items
table lacks and users the users table lacks). When the training catalogue or users table had
no missing value, ``<na>`` is an unseen value like any other (code 0). Prices are log-quantile
buckets (0 = no price).

Ids may be integers or strings. The catalogue is :func:`recall._catalogue.catalogue` (the items
table plus the items the logs show that it lacks) and the rows of the :class:`ItemTable`, the
id vocabulary and the frequency keys follow its row order, never the order of the id values:
relabelling the ids (rows kept in place) trains the same model.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr.artifacts import check_state
from ltr.logs import Logs
from recall._catalogue import catalogue
from recall._checks import id_array

__all__ = ["ItemTable", "encode_items", "encode_profiles", "item_vocab", "user_vocab"]

_NA = "<na>"
_PRICE_BINS = 8
_TABLE_FORMAT = "recall.ItemTable"
_TABLE_ARRAYS = ("item_ids", "id_codes", "categories", "cities", "prices", "dense")


def _strings(values: Any) -> np.ndarray:
    return pd.Series(values).astype("string").fillna(_NA).to_numpy(dtype=object)


def _encode(values: Any, vocab: list[str]) -> np.ndarray:
    """Codes 1..len(vocab) for known values, 0 for unknown."""
    return (pd.Index(vocab, dtype=object).get_indexer(_strings(values)) + 1).astype(np.int64)


def _vocab(values: Any, max_size: int = 1000) -> list[str]:
    counts = pd.Series(_strings(values)).value_counts(sort=False)
    counts = counts.iloc[np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))]
    return sorted(str(v) for v in counts.index[:max_size])


@dataclass(frozen=True, eq=False)
class ItemTable:
    """The catalogue encoded for the item tower; row i is ``item_ids[i]``.

    Rows follow the catalogue (the items table's order, then the items it lacks); ``item_ids``
    are int64 for integer ids and unicode for string ids.
    """

    item_ids: np.ndarray
    id_codes: np.ndarray
    categories: np.ndarray
    cities: np.ndarray
    prices: np.ndarray
    dense: np.ndarray

    @property
    def n(self) -> int:
        return int(self.item_ids.shape[0])

    def rows(self, item_ids: Any) -> np.ndarray:
        """Row of each id (any shape), -1 for ids outside the catalogue (and for -1 padding)."""
        ids = np.asarray(item_ids)
        return pd.Index(self.item_ids).get_indexer(ids.reshape(-1)).reshape(ids.shape).astype(np.int64)

    def frequency_keys(self) -> np.ndarray:
        """An int64 key per row for the streaming frequency estimator (which hashes integers).

        The 1-based row, whatever the id type, so that the estimate does not depend on the id
        values; in a catalogue of ids 1..n in order (``ltr.simulate``'s worlds) it is the id.
        """
        return np.arange(1, self.n + 1, dtype=np.int64)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(meta, arrays)``: JSON-able metadata and the encoded columns (npz-safe)."""
        return ({"format": _TABLE_FORMAT, "version": 1, "n_items": self.n},
                {name: getattr(self, name) for name in _TABLE_ARRAYS})

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> ItemTable:
        """Inverse of :meth:`to_state`."""
        check_state(dict(meta), _TABLE_FORMAT, 1, ["n_items"])
        return cls(**{name: np.asarray(arrays[name]) for name in _TABLE_ARRAYS})


def item_vocab(logs: Logs, train_item_ids: np.ndarray) -> dict[str, Any]:
    """Vocabularies of the item features, learned from the catalogue and training items.

    The id vocabulary lists the training items in catalogue order.
    """
    items = catalogue(logs)
    if len(items) == 0:
        raise ValueError("logs must have at least one item. Got none instead.")
    ids = id_array(items["item_id"].to_numpy())
    trained = ids[np.isin(ids, id_array(train_item_ids))]
    vocab: dict[str, Any] = {"category": _vocab(items["category"]) if "category" in items.columns else [],
                             "city": _vocab(items["city"]) if "city" in items.columns else [],
                             "id": trained.tolist()}
    edges: list[float] = []
    if "price" in items.columns:
        price = _log_price(items)
        price = price[np.isfinite(price)]
        if price.size:
            edges = np.unique(np.quantile(price, np.linspace(0, 1, _PRICE_BINS + 1)[1:-1])).tolist()
    vocab["price_edges"] = edges
    dense_dim = 0
    if "embedding" in items.columns and len(items):
        first = items["embedding"].iloc[0]
        dense_dim = len(first) if first is not None and hasattr(first, "__len__") else 0
    vocab["dense_dim"] = int(dense_dim)
    return vocab


def _log_price(items: pd.DataFrame) -> np.ndarray:
    return np.log1p(np.clip(pd.to_numeric(items["price"], errors="coerce").to_numpy(dtype=np.float64), 0, None))


def encode_items(logs: Logs, vocab: Mapping[str, Any]) -> ItemTable:
    """Encode the catalogue with learned vocabularies (unknown values map to code 0)."""
    items = catalogue(logs).drop_duplicates("item_id")
    ids = id_array(items["item_id"].to_numpy())
    id_codes = pd.Index(np.asarray(vocab["id"])).get_indexer(ids) + 1
    cities = _encode(items["city"], vocab["city"]) if "city" in items.columns else np.zeros(len(ids), np.int64)
    prices = np.zeros(len(ids), dtype=np.int64)
    if "price" in items.columns:
        price = _log_price(items)
        prices = np.where(np.isfinite(price), np.searchsorted(np.asarray(vocab["price_edges"]), price) + 1, 0)
    dim = int(vocab["dense_dim"])
    dense = np.zeros((len(ids), dim), dtype=np.float32)
    if dim:
        column = items["embedding"].to_numpy(dtype=object)
        ok = np.array([v is not None and hasattr(v, "__len__") and len(v) == dim for v in column])
        if ok.any():
            dense[ok] = np.stack([np.asarray(v, dtype=np.float32) for v in column[ok]])
        dense[~np.isfinite(dense)] = 0.0
    categories = (_encode(items["category"], vocab["category"]) if "category" in items.columns
                  else _encode(np.full(len(ids), None), vocab["category"]))
    return ItemTable(ids, id_codes.astype(np.int64), categories, cities.astype(np.int64), prices.astype(np.int64),
                     dense)


def user_vocab(logs: Logs) -> dict[str, list[str]]:
    """Vocabulary of each profile column of the users table (all treated as categorical)."""
    users = logs.users
    if users is None:
        return {}
    return {col: _vocab(users[col]) for col in users.columns if col != "user_id"}


def encode_profiles(logs: Logs, vocab: Mapping[str, list[str]], user_ids: Any) -> np.ndarray:
    """Profile codes (n, n_columns) of ``user_ids``: a user absent from the users table has the
    missing level ``<na>`` of every column (0 when the vocabulary has none), unseen values 0."""
    user_ids = np.asarray(user_ids)
    out = np.zeros((user_ids.shape[0], len(vocab)), dtype=np.int64)
    users = logs.users
    if not vocab:
        return out
    if users is None:
        users = pd.DataFrame({"user_id": pd.Series([], dtype=object)})
    users = users.drop_duplicates("user_id")
    row = pd.Index(users["user_id"].to_numpy()).get_indexer(user_ids)
    for j, (col, words) in enumerate(vocab.items()):
        values = users[col] if col in users.columns else pd.Series(None, index=users.index, dtype=object)
        # The last entry, gathered by row -1, is the code of an absent user: the missing level.
        codes = np.r_[_encode(values, words), _encode([None], words)]
        out[:, j] = codes[row]
    return out
