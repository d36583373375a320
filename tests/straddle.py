"""Small logs with real 2022 epochs whose calendar days depend on the time zone.

Every user has a request at 02:00, 10:00, 17:00 and 20:00 UTC on each day 2022-04-25 .. 04-30.
In Asia/Shanghai (UTC+8, no DST) the 17:00 and 20:00 requests fall on the next day; in
America/New_York (UTC-4 in April) the 02:00 ones fall on the day before; in UTC none move. So
a command that counts days in the wrong zone selects, trains on or reports different rows,
and every expectation is derived with pandas' own ``tz_convert`` (:func:`local_days`).

Planted for item-CF: users 0..3 click items :data:`X` then :data:`Z` at 2022-04-28 17:30 UTC
(04-29 01:30 in Shanghai), the only clicks of either item apart from the probe user's click
on X on 04-26, and the only co-clicks of the two. With ``--train-end 2022-04-28`` they are
training clicks in UTC and New York but not in Shanghai.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.logs import Logs, from_frames

ZONES = ("UTC", "Asia/Shanghai", "America/New_York")
DATES = pd.date_range("2022-04-25", "2022-04-30", freq="D", tz="UTC")
HOURS = (2, 10, 17, 20)
N_USERS = 6
BACKGROUND = np.arange(100, 112)  # items of the random traffic
X, Z = 900, 901  # the planted co-clicked pair
PROBE = 5  # the user who clicked X on 04-26 and nothing else of the pair
PLANTED_AT = pd.Timestamp("2022-04-28 17:30", tz="UTC")


def local_days(ts: pd.Series | np.ndarray, tz: str) -> pd.Series:
    """``YYYY-MM-DD`` of epoch seconds in ``tz`` (pandas' reference conversion)."""
    return pd.Series(pd.to_datetime(np.asarray(ts), unit="s", utc=True)).dt.tz_convert(tz).dt.strftime("%Y-%m-%d")


def _epoch(stamps: pd.DatetimeIndex | pd.Timestamp) -> np.ndarray:
    return np.atleast_1d(np.asarray((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1), dtype=np.int64))


def straddling_logs(seed: int = 0) -> Logs:
    """The logs described in the module docstring (two buckets, a candidates table with
    ``rank_score``, two exposures per request, about 40% of them clicked)."""
    rng = np.random.default_rng(seed)
    stamps = pd.DatetimeIndex([day + pd.Timedelta(hours=h) for day in DATES for h in HOURS])
    users = np.tile(np.arange(N_USERS), len(stamps))
    ts = np.repeat(_epoch(stamps), N_USERS)
    # Planted requests: users 0..3 see X and Z; the probe user sees X on 04-26.
    planted_users = np.array([0, 1, 2, 3, PROBE])
    planted_ts = np.concatenate([np.repeat(_epoch(PLANTED_AT), 4),
                                 _epoch(pd.Timestamp("2022-04-26 10:30", tz="UTC"))])
    users, ts = np.concatenate([users, planted_users]), np.concatenate([ts, planted_ts])
    n = len(users)
    requests = pd.DataFrame({"request_id": np.arange(1, n + 1), "ts": ts, "user_id": users,
                             "bucket": np.where(users % 2 == 0, "control", "treatment")})
    n_random = n - len(planted_users)
    shown = np.stack([rng.choice(BACKGROUND, 3, replace=False) for _ in range(n_random)])
    shown = np.vstack([shown, np.tile([X, Z, BACKGROUND[0]], (4, 1)), [[X, BACKGROUND[1], BACKGROUND[2]]]])
    candidates = pd.DataFrame({"request_id": np.repeat(requests["request_id"].to_numpy(), 3),
                               "item_id": shown.ravel(), "rank_pos": np.tile([1, 2, 3], n),
                               "rank_score": rng.random(3 * n)})
    exposed = candidates.loc[candidates["rank_pos"] <= 2]
    exposures = pd.DataFrame({"request_id": exposed["request_id"].to_numpy(),
                              "item_id": exposed["item_id"].to_numpy(),
                              "ts": np.repeat(ts, 2) + 5, "position": exposed["rank_pos"].to_numpy()})
    clicked = rng.random(len(exposures)) < 0.4
    planted = exposures["item_id"].isin([X, Z]).to_numpy()
    clicks = exposures.loc[clicked & ~planted | planted, ["request_id", "item_id", "ts"]].copy()
    clicks["ts"] = clicks["ts"].to_numpy() + np.where(clicks["item_id"].to_numpy() == Z, 300, 30)
    item_ids = np.concatenate([BACKGROUND, [X, Z]])
    items = pd.DataFrame({"item_id": item_ids, "category": np.array(["a", "b", "c"])[item_ids % 3]})
    return from_frames(requests=requests, candidates=candidates, exposures=exposures, clicks=clicks, items=items,
                       users=pd.DataFrame({"user_id": np.arange(N_USERS), "city": ["x", "y"] * (N_USERS // 2)}))
