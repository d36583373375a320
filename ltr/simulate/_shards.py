"""A simulated world too large for one process, written partitioned one user shard at a time.

``python -m ltr.simulate OUT --users N --shards S`` (:func:`write_sharded_world`) splits the
``N`` users into ``S`` shards of disjoint user ids and simulates each shard as a world of its own
(:func:`ltr.simulate.simulate_world` with ``shard=k``), one after the other, so a process holds
one shard at a time. What the shards share and what they do not:

* **shared**: the parameters, the calendar (``start_date``, ``days``) and the items (the item
  table and every hidden item attribute come from ``seed``'s stream, the same in every shard);
* **the shard's own**: its users (ids ``offset + 1 .. offset + n_k`` after the earlier shards'
  users), their interests, activity (a Zipf ranking of the shard's users: a world of ``S`` shards
  has ``S`` heaviest users where one simulation has one) and bucket (a hash of the user's id
  within the shard); its requests (ids ``k * 10**9 + 1 ..``), candidates, exposures, clicks and
  orders, drawn from streams seeded by ``(seed, k)``; the production ranker's calibration (fitted
  per shard); the duplicate exposures and orphan clicks of the shard. Shard 0 is exactly the
  world ``simulate_world`` gives for the same ``seed`` and ``n_0`` users.

Each shard is written in the partitioned layout (:mod:`ltr.logs._partitioned`) as the part
file ``part-{k:05d}.parquet`` of every day partition it has rows in, and of ``users/``; the
items are written once (``items/part-00000.parquet``). A request's rows live in its shard's
part file of its day, so the layout's one rule holds and every command reads the result as any
partitioned log directory. No ``truth.json`` is written (each shard has its own truth).
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltr._validation import check_int
from ltr.logs import Logs
from ltr.logs._partitioned import DIMENSION_TABLES, atomic_directory, write_partitioned
from ltr.simulate._world import WorldConfig, simulate_world

__all__ = ["REQUEST_ID_STRIDE", "shard_sizes", "write_sharded_world"]

#: Request ids of shard ``k`` start at ``k * REQUEST_ID_STRIDE + 1``.
REQUEST_ID_STRIDE = 10**9


def shard_sizes(users: int, shards: int) -> list[int]:
    """Users per shard: ``users`` split as evenly as possible, the larger shards first."""
    users = check_int(users, "users", minimum=1)
    shards = check_int(shards, "shards", minimum=1)
    if shards > users:
        raise ValueError(f"shards must be at most users ({users}). Got {shards} instead.")
    base, extra = divmod(users, shards)
    return [base + (k < extra) for k in range(shards)]


def _shifted(frame: pd.DataFrame | None, users: int, requests: int) -> pd.DataFrame | None:
    """``frame`` with ``user_id`` moved up by ``users`` and ``request_id`` by ``requests``."""
    if frame is None:
        return None
    out = frame.copy()
    if "user_id" in out:
        out["user_id"] = out["user_id"] + users
    if "request_id" in out:
        out["request_id"] = out["request_id"] + requests  # a missing request_id (an order) stays missing
    return out


def _relabelled(logs: Logs, users: int, requests: int) -> Logs:
    tables = {name: _shifted(frame, users, requests) for name, frame in logs.tables().items() if name != "items"}
    return logs.replace(**tables)


def _move_parts(shard_dir: Path, out: Path, shard: int) -> dict[str, int]:
    """Move a shard's partitioned tables into ``out`` as part ``shard``; files moved per table."""
    moved: dict[str, int] = {}
    for table in sorted(p for p in shard_dir.iterdir() if p.is_dir()):
        if table.name == "items" and shard:
            continue  # the same items in every shard: written once
        files = sorted(table.rglob("*.parquet"))
        for file in files:
            relative = file.relative_to(shard_dir).parent
            name = file.name if table.name == "items" else f"part-{shard:05d}.parquet"
            (out / relative).mkdir(parents=True, exist_ok=True)
            file.replace(out / relative / name)
        moved[table.name] = len(files)
    return moved


def write_sharded_world(path: str | Path, shards: int, config: WorldConfig | None = None,
                        **overrides: Any) -> dict[str, Any]:
    """Simulate a world shard by shard and write it partitioned (see the module docstring).

    Parameters
    ----------
    path : str or Path
        Output directory (replaced when the write succeeds; untouched when it fails).
    shards : int
        Number of user shards (at most ``users``).
    config : WorldConfig, optional
        The world's parameters; ``users`` is the total over the shards. Keyword ``overrides``
        replace single fields.

    Returns
    -------
    dict
        ``rows`` per table summed over the shards, ``users`` per shard.
    """
    cfg = dataclasses.replace(config or WorldConfig(), **overrides)
    if cfg.shard:
        raise ValueError(f"shard must be 0 in the config of a sharded world. Got {cfg.shard} instead.")
    sizes = shard_sizes(cfg.users, shards)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    rows: dict[str, int] = {}
    with atomic_directory(path) as tmp:
        for k, (size, offset) in enumerate(zip(sizes, offsets, strict=True)):
            world = simulate_world(dataclasses.replace(cfg, users=size, shard=k))
            logs = _relabelled(world.logs, int(offset), k * REQUEST_ID_STRIDE)
            for name, frame in logs.tables().items():
                if name not in DIMENSION_TABLES or name == "users" or not k:
                    rows[name] = rows.get(name, 0) + len(frame)
            del world
            scratch = tmp / f".shard-{k}"
            write_partitioned(logs, scratch)
            del logs
            _move_parts(scratch, tmp, k)
            shutil.rmtree(scratch)
    return {"rows": rows, "users": sizes}
