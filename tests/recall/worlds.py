"""Logs the recall tests are built on: small hand-made logs, simulated worlds, and the same
world with string ids. Fixtures over them live in ``conftest.py``."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ltr.logs import SECONDS_PER_DAY, Logs, day_index, from_frames
from ltr.simulate import simulate_world

DAY0 = 20460  # an arbitrary day index

#: How ``relabel`` spells each id column: zero-padded, so string order is integer order.
ID_FORMATS = {"request_id": ("r", 7), "user_id": ("u", 6), "item_id": ("i", 6)}
_TABLES = ("requests", "exposures", "clicks", "candidates", "orders", "items", "users")


def make_logs(seed: int, n_users: int = 25, n_items: int = 30, n_requests: int = 160, days: int = 5,
              tie_ts: bool = True, str_items: bool = False):
    """Random valid logs: requests, a few exposures each, some clicked (with tied timestamps)."""
    rng = np.random.default_rng(seed)
    req_ts = DAY0 * SECONDS_PER_DAY + rng.choice(days * SECONDS_PER_DAY // 60, n_requests, replace=False) * 60
    req_ts = np.sort(req_ts)
    requests = pd.DataFrame({"request_id": np.arange(1, n_requests + 1), "ts": req_ts,
                             "user_id": rng.integers(0, n_users, n_requests)})
    per = 4
    items = np.stack([rng.choice(n_items, per, replace=False) for _ in range(n_requests)]) + 1
    exposures = pd.DataFrame({"request_id": np.repeat(requests["request_id"], per).to_numpy(),
                              "item_id": items.ravel(), "ts": np.repeat(req_ts, per),
                              "position": np.tile(np.arange(1, per + 1), n_requests)})
    clicked = rng.random(len(exposures)) < 0.45
    if tie_ts:  # clicks of one request may share a timestamp
        delay = rng.integers(0, 3, clicked.sum()) * 5
    else:  # unique within a request (positions differ), and requests are 60 s apart
        delay = (exposures["position"].to_numpy()[clicked] - 1) * 10 + rng.integers(0, 10, clicked.sum())
    clicks = exposures.loc[clicked, ["request_id", "item_id", "ts"]].copy()
    clicks["ts"] = clicks["ts"].to_numpy() + delay
    item_ids = np.arange(1, n_items + 1)
    items_frame = pd.DataFrame({"item_id": item_ids, "category": np.array(["a", "b", "c"])[item_ids % 3],
                                "city": np.array(["x", "y"])[item_ids % 2]})
    users = pd.DataFrame({"user_id": np.arange(n_users), "city": np.array(["x", "y"])[np.arange(n_users) % 2]})
    if str_items:
        for frame in (exposures, clicks, items_frame):
            frame["item_id"] = "i" + frame["item_id"].astype(str)
    return from_frames(requests=requests, exposures=exposures, clicks=clicks, items=items_frame, users=users)


def simulated(seed: int, users: int = 300, items: int = 400, days: int = 6,
              candidates_per_request: int = 30) -> tuple[Logs, int, pd.DataFrame]:
    """A simulated world, its training end (the day before the last) and the last day's requests."""
    logs = simulate_world(users=users, items=items, days=days, candidates_per_request=candidates_per_request,
                          seed=seed).logs
    day = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    train_end = int(day.max()) - 1
    return logs, train_end, logs.requests.loc[day > train_end].reset_index(drop=True)


def relabel_ids(logs: Logs, new_ids: Mapping[str, Callable[[pd.Series], pd.Series]]) -> Logs:
    """The same logs with the present ids of each column ``c`` of ``new_ids`` replaced by
    ``new_ids[c](ids)`` (missing ids stay missing), validated again."""
    tables = {}
    for name in _TABLES:
        frame = getattr(logs, name)
        if frame is None:
            continue
        frame = frame.copy()
        for column, new in new_ids.items():
            if column in frame.columns:
                present = frame[column].notna().to_numpy()
                values = new(frame.loc[present, column].astype(np.int64))
                if pd.api.types.is_integer_dtype(values.dtype):
                    out = pd.Series(pd.NA, index=frame.index, dtype="Int64")
                    out[present] = values.to_numpy()
                    frame[column] = out if not present.all() else out.astype(np.int64)
                else:
                    text = np.full(len(frame), None, dtype=object)
                    text[present] = values.to_numpy(dtype=object)
                    frame[column] = text
        tables[name] = frame
    return from_frames(**tables, tz=logs.tz)


def relabel(logs: Logs) -> Logs:
    """The same logs with string request, user and item ids (validated again).

    The strings are zero-padded, so they sort like the integers: everything a source orders
    by id (catalogue rows, tie breaks) stays in the same order.
    """
    def spell(prefix: str, width: int) -> Callable[[pd.Series], pd.Series]:
        def new(ids: pd.Series) -> pd.Series:
            assert ids.max() < 10**width, f"ids too wide for {width} digits"
            return prefix + ids.astype(str).str.zfill(width)
        return new

    return relabel_ids(logs, {column: spell(*spec) for column, spec in ID_FORMATS.items()})


def string_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s id columns spelt as :func:`relabel` spells them."""
    frame = frame.copy()
    for column, (prefix, width) in ID_FORMATS.items():
        if column in frame.columns:
            frame[column] = prefix + frame[column].astype(str).str.zfill(width)
    return frame


def integer_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Inverse of :func:`string_ids`."""
    frame = frame.copy()
    for column, (prefix, _) in ID_FORMATS.items():
        if column in frame.columns:
            frame[column] = frame[column].str.removeprefix(prefix).astype(np.int64)
    return frame
