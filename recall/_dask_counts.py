"""Item-CF co-click counts and hot-list counts on the Dask engine (``recall.train --engine dask``).

The partitions are validated on the workers (:func:`ltr.distributed.open_logs`); then

* **hot**: the hourly counts of clicks and orders (and, when ``exposure_weight`` is not 0, of
  exposures) are what the source learns from, and its learned mix re-fits on the last
  training day; so the client fits it on light logs that hold every click and order (and then
  the exposures' item and time columns). With the default weights (exposures count 0) the
  bulk never leaves the workers;
* **item-CF**: the co-click weights add up over users, so the users (sorted, with their
  training clicks) are cut into groups and each group's ``ItemCFRecall._co_clicks`` runs on a
  worker; the client adds the sparse partial matrices up.

Everything else the sources learn (the catalogue, the popular items, the kept training clicks,
user cities) needs only the clicks, the orders, the requests of clicked requests and the
distinct exposed and candidate items: :func:`light_logs` brings those to the client (not the
exposures or candidates themselves) and the source's own ``_fit`` runs there with the counts
from the workers. The fitted source is therefore the single-machine one; the tests compare the
candidate lists. NIP and two-tower training stay single-node (one model, gradient steps in
one process).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr.distributed import LogPartition, PartitionedLogs
from ltr.logs import Logs
from recall.base import RecallSource
from recall.hot import HotRecall
from recall.itemcf import ItemCFRecall

__all__ = ["DASK_SOURCES", "fit_on_dask", "light_logs"]

#: Sources whose counting runs on the Dask engine.
DASK_SOURCES = ("itemcf", "hot")


def _light(part: LogPartition, exposure_times: bool = False) -> dict[str, pd.DataFrame]:
    """What a source learns from besides its counts: clicks, orders, their requests, distinct items
    (with ``exposure_times``, every exposure's item and time instead of the distinct items)."""
    tables = part.tables
    keys = [tables["clicks"]["request_id"]]
    out = {"clicks": tables["clicks"]}
    if "orders" in tables:
        out["orders"] = tables["orders"]
        if "request_id" in tables["orders"].columns:
            keys.append(tables["orders"]["request_id"].dropna())
    requests = tables["requests"]
    out["requests"] = requests.loc[requests["request_id"].isin(pd.concat(keys, ignore_index=True)).to_numpy()]
    for name in ("exposures", "candidates"):
        if name == "exposures" and exposure_times:
            out[name] = tables[name][["item_id", "ts"]]
        elif name in tables:
            out[name] = pd.DataFrame({"item_id": pd.unique(tables[name]["item_id"])})
    return out


def light_logs(logs: PartitionedLogs, exposure_times: bool = False) -> Logs:
    """Logs without the bulk: every click and order, the requests they reference, and for
    ``exposures`` and ``candidates`` only their distinct items (first appearance order), plus
    the attribute tables. Enough for the sources' catalogue, histories and popularity; not
    for counting exposures, unless ``exposure_times`` keeps every exposure's item and time."""
    parts = logs.map(_light, exposure_times)
    frames: dict[str, Any] = {}
    for name in parts[0]:
        frames[name] = pd.concat([p[name] for p in parts], ignore_index=True)
        if name == "candidates" or (name == "exposures" and not exposure_times):
            frames[name] = pd.DataFrame({"item_id": pd.unique(frames[name]["item_id"])})
    return Logs(**frames, items=logs.items, users=logs.users, tz=logs.tz)


def _co_group(source: ItemCFRecall, user: np.ndarray, item: np.ndarray, ts: np.ndarray, train_end_day: int,
              n_items: int) -> sp.csr_matrix:
    return source._co_clicks(user - user.min(), item, ts, train_end_day, n_items)


def _distributed_co_clicks(logs: PartitionedLogs, source: ItemCFRecall) -> Any:
    """A ``co_clicks`` for ``ItemCFRecall._fit``: user groups counted on the workers, summed."""
    client = logs.client

    def co_clicks(user: np.ndarray, item: np.ndarray, ts: np.ndarray, train_end_day: int,
                  n_items: int) -> sp.csr_matrix:
        n_groups = max(1, min(2 * len(client.scheduler_info(n_workers=-1)["workers"]), int(user.max()) + 1))
        # Clicks arrive sorted by user: cut at user boundaries so each user sits in one group.
        bounds = np.searchsorted(user, np.linspace(0, int(user.max()) + 1, n_groups + 1)[1:-1].astype(np.int64))
        futures = [client.submit(_co_group, source, u, i, t, train_end_day, n_items, pure=False)
                   for u, i, t in zip(np.split(user, bounds), np.split(item, bounds), np.split(ts, bounds), strict=True)
                   if len(u)]
        total = sp.csr_matrix((n_items, n_items), dtype=np.float64)
        for part in client.gather(futures):
            total = total + part
        return total.tocsr()

    return co_clicks


def fit_on_dask(source: RecallSource, logs: PartitionedLogs, train_end_day: int) -> RecallSource:
    """Fit an item-CF or hot source with its counting on the Dask cluster of ``logs``.

    Raises
    ------
    ValueError
        Any other source (NIP and two-tower train on one machine).
    """
    if isinstance(source, HotRecall):
        return source.fit(light_logs(logs, exposure_times=float(source.exposure_weight) != 0), train_end_day)
    if isinstance(source, ItemCFRecall):
        return source._fit(light_logs(logs), train_end_day, _distributed_co_clicks(logs, source))
    raise ValueError(f"--engine dask trains the {' and '.join(DASK_SOURCES)} sources. Got {source.kind!r} instead: "
                     "NIP and two-tower train on one machine (leave out --engine dask).")
