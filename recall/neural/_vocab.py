"""Vocabularies of the torch recall models: the catalogue encoded for the item tower, and the
users' profile columns encoded for the profile embeddings.

Every attribute is categorical with code 0 for "unknown" (a value unseen when fitting, a
missing attribute, an item or user absent from its table); prices are log-quantile buckets.
Ids may be integers or strings; rows of the :class:`ItemTable` follow id order.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr.artifacts import check_state
from ltr.logs import Logs
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
    """The catalogue (``logs.items``) encoded for the item tower; row i is ``item_ids[i]``.

    ``item_ids`` are sorted, int64 for integer ids and unicode for string ids.
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

        Integer ids are their own keys; string ids use the 1-based row, which is the integer
        id of the same item in a catalogue numbered 1..n (``ltr.simulate``'s worlds).
        """
        if np.issubdtype(self.item_ids.dtype, np.integer):
            return self.item_ids.astype(np.int64)
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
    """Vocabularies of the item features, learned from the catalogue and training items."""
    items = logs.items
    if items is None or len(items) == 0:
        raise ValueError("logs must have an items table with at least one item. Got none instead.")
    vocab: dict[str, Any] = {"category": _vocab(items["category"]),
                             "city": _vocab(items["city"]) if "city" in items.columns else [],
                             "id": np.unique(id_array(train_item_ids)).tolist()}
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
    items = logs.items
    if items is None:
        raise ValueError("logs must have an items table to encode. Got none instead.")
    items = items.drop_duplicates("item_id").sort_values("item_id", kind="stable")
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
    return ItemTable(ids, id_codes.astype(np.int64), _encode(items["category"], vocab["category"]),
                     cities.astype(np.int64), prices.astype(np.int64), dense)


def user_vocab(logs: Logs) -> dict[str, list[str]]:
    """Vocabulary of each profile column of the users table (all treated as categorical)."""
    users = logs.users
    if users is None:
        return {}
    return {col: _vocab(users[col]) for col in users.columns if col != "user_id"}


def encode_profiles(logs: Logs, vocab: Mapping[str, list[str]], user_ids: Any) -> np.ndarray:
    """Profile codes (n, n_columns) of ``user_ids``; unknown users and values get 0."""
    user_ids = np.asarray(user_ids)
    out = np.zeros((user_ids.shape[0], len(vocab)), dtype=np.int64)
    users = logs.users
    if users is None or not vocab:
        return out
    users = users.drop_duplicates("user_id")
    row = pd.Index(users["user_id"].to_numpy()).get_indexer(user_ids)
    for j, (col, words) in enumerate(vocab.items()):
        if col in users.columns:
            codes = np.r_[_encode(users[col], words), 0]
            out[:, j] = codes[row]
    return out
