"""A synthetic recommender world with planted, known effects.

The simulator produces logs that follow the contract (requests, candidates, exposures,
clicks, orders, items, users) plus ``truth.json`` with what was planted, so that rankers,
recall sources and A/B statistics can be tested against ground truth.

The world:

* items: Zipf-sized categories, a city, a price, a publish time, a hidden quality, a latent
  vector near their category centre, and a noisy ``embedding`` of that vector;
* users: interests mixed over 1-3 categories (latent vector = weighted category centres),
  Zipf activity, a city, profile fields, a hidden click propensity; interests drift a
  little every day (a random walk), so recent behaviour matters;
* per request: a few hundred candidates from channels ``interest``/``hot``/``random``
  (``recall_source``); the production ranker's ``rank_score`` is the true top-position
  click probability with log-odds noise (roughly calibrated); the top
  ``exposures_per_request`` are exposed at positions 1..N; clicks are drawn from the true
  probability times a position-bias curve; orders follow some clicks;
* users are hashed into ``control``/``treatment``; the treatment ranker has less noise, which
  plants a true CTR lift (``aa=True`` gives both arms the control ranker); ``click_lift``
  optionally multiplies the treatment's click probability on top;
* a little realistic dirt: a few duplicate exposure rows and clicks with no exposure, which
  the join report must account for.

Everything is vectorised per chunk of requests and deterministic for a seed.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ltr._validation import check_float, check_int
from ltr.logs import SECONDS_PER_DAY, Logs, from_frames, parse_day, write_logs
from ltr.simulate._interaction import affinity as user_item_affinity
from ltr.simulate._interaction import check_options, exposed_slots, interaction_truth

__all__ = ["World", "WorldConfig", "position_bias", "simulate_world"]

_CHANNELS = np.array(["interest", "hot", "random"])
_DEVICES = np.array(["android", "ios", "web"])
_GENDERS = np.array(["f", "m", "u"])
_HOUR_WEIGHTS = np.array([2, 1, 1, 1, 1, 2, 4, 6, 7, 6, 5, 6, 8, 7, 6, 6, 7, 8, 10, 12, 13, 12, 9, 5], float)
_CHUNK_REQUESTS = 20_000
#: Click probabilities are clipped to [_P_CLIP, 1 - _P_CLIP] before taking log-odds.
_P_CLIP = 1e-6


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of a simulated world (all have defaults; ``users``/``items``/``days``/``seed`` matter most)."""

    users: int = 2000
    items: int = 3000
    days: int = 14
    seed: int = 0
    start_date: str = "2026-01-05"
    n_categories: int = 0
    n_cities: int = 6
    dim: int = 16
    requests_per_user_day: float = 0.5
    candidates_per_request: int = 200
    exposures_per_request: int = 10
    ranker_noise_control: float = 1.2
    ranker_noise_treatment: float = 0.9
    aa: bool = False
    treatment_share: float = 0.5
    click_lift: float = 0.0
    intercept: float = -4.2
    affinity: float = 2.2
    position_bias_power: float = 0.5
    interest_drift: float = 0.08
    order_rate_intercept: float = -2.0
    orders_without_request_share: float = 0.3
    embedding_noise: float = 0.35
    duplicate_exposure_rate: float = 0.002
    orphan_click_rate: float = 0.002
    # Options for recall benchmarks, off by default (ltr/simulate/_interaction.py).
    interaction: str = "none"
    exposure_depth: int = 0
    exposure_power: float = 1.0
    # Shard k > 0 of a sharded world (ltr/simulate/_shards.py): the same items (drawn from ``seed``),
    # users, requests and interactions drawn from streams of the shard's own.
    shard: int = 0

    def validate(self) -> None:
        """Raise for impossible parameters.

        Raises
        ------
        TypeError
            A count that is not an int, a share or rate that is not a number.
        ValueError
            A value out of range, or a ``start_date`` that is not ``YYYY-MM-DD``.
        """
        for name in ("users", "items", "days", "dim", "candidates_per_request", "exposures_per_request", "n_cities"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.shard, "shard", minimum=0)
        if self.exposures_per_request > self.candidates_per_request:
            raise ValueError(
                f"exposures_per_request must be <= candidates_per_request ({self.candidates_per_request}). "
                f"Got {self.exposures_per_request} instead."
            )
        check_float(self.treatment_share, "treatment_share", low=0, high=1, low_open=True, high_open=True)
        check_float(self.requests_per_user_day, "requests_per_user_day", low=0, low_open=True)
        parse_day(self.start_date, "start_date")
        check_options(self)


@dataclass(frozen=True)
class World:
    """A simulated world: its validated logs and the planted truth."""

    logs: Logs
    truth: dict

    def save(self, path: str | Path, fmt: str = "parquet") -> None:
        """Write the tables and ``truth.json`` to ``path``."""
        write_logs(self.logs, path, fmt=fmt)
        (Path(path) / "truth.json").write_text(json.dumps(self.truth, indent=2, sort_keys=True) + "\n")


def position_bias(positions: npt.ArrayLike, power: float) -> np.ndarray:
    """Examination probability at 1-based ``positions``: ``position ** -power``."""
    return np.asarray(positions, dtype=np.float64) ** (-power)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp overflows to inf for x < -709 and the result is then exactly 0, as it should be.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _hash_unit(values: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of integer ids -> uniform [0, 1); stable across runs and platforms."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True)
class _Catalogue:
    category: np.ndarray
    vec: np.ndarray
    quality: np.ndarray
    popularity_cdf: np.ndarray
    within_category_key: np.ndarray
    order_by_category: np.ndarray
    publish_ts: np.ndarray
    city: np.ndarray
    log_price: np.ndarray


@dataclass(frozen=True)
class _Population:
    interests: np.ndarray
    interest_cdf: np.ndarray
    vec_by_day: np.ndarray
    bias: np.ndarray
    activity: np.ndarray
    city: np.ndarray
    treated: np.ndarray


def _make_items(cfg: WorldConfig, rng: np.random.Generator,
                start_ts: int) -> tuple[_Catalogue, pd.DataFrame, np.ndarray]:
    n_cat = cfg.n_categories or int(np.clip(cfg.items // 100, 8, 60))
    cat_p = 1.0 / np.arange(1, n_cat + 1) ** 1.1
    cat_p /= cat_p.sum()
    centres = rng.normal(size=(n_cat, cfg.dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    category = rng.choice(n_cat, size=cfg.items, p=cat_p)
    vec = centres[category] + rng.normal(scale=0.6 / np.sqrt(cfg.dim), size=(cfg.items, cfg.dim))
    quality = rng.normal(scale=0.6, size=cfg.items)
    popularity = np.exp(1.2 * quality + rng.normal(size=cfg.items))
    cat_price = rng.normal(3.0, 0.6, size=n_cat)
    log_price = cat_price[category] + rng.normal(scale=0.5, size=cfg.items)
    city = rng.integers(cfg.n_cities, size=cfg.items)
    fresh = rng.random(cfg.items) < 0.25
    age_days = np.where(fresh, -rng.random(cfg.items) * cfg.days, rng.random(cfg.items) * 60.0)
    publish_ts = (start_ts - age_days * SECONDS_PER_DAY).astype(np.int64)

    order = np.lexsort((np.arange(cfg.items), category))
    w = popularity[order]
    cat_sorted = category[order]
    cum = np.cumsum(w)
    starts = np.searchsorted(cat_sorted, np.arange(n_cat))
    ends = np.searchsorted(cat_sorted, np.arange(n_cat), side="right")
    before = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    total = np.maximum(cum[np.maximum(ends - 1, 0)] - before, 1e-300)
    # key = category + within-category cumulative share in (0, 1]: sampling category c is a
    # searchsorted of c + u over one monotone array.
    within = cat_sorted + (cum - before[cat_sorted]) / total[cat_sorted]
    cat = _Catalogue(
        category=category, vec=vec, quality=quality, popularity_cdf=np.cumsum(popularity) / popularity.sum(),
        within_category_key=within, order_by_category=order, publish_ts=publish_ts, city=city, log_price=log_price,
    )
    embedding = vec + rng.normal(scale=cfg.embedding_noise / np.sqrt(cfg.dim), size=vec.shape)
    items = pd.DataFrame({
        "item_id": np.arange(1, cfg.items + 1, dtype=np.int64),
        "category": np.char.add("c", np.char.zfill(category.astype(str), 2)),
        "city": np.char.add("city", city.astype(str)),
        "price": np.round(np.exp(log_price), 2),
        "publish_ts": publish_ts,
        "embedding": list(embedding.astype(np.float32)),
    })
    return cat, items, cat_p


def _make_users(cfg: WorldConfig, rng: np.random.Generator, cat_p: np.ndarray, n_cat: int,
                centres: np.ndarray) -> tuple[_Population, pd.DataFrame]:
    slots = 3
    interests = rng.choice(n_cat, size=(cfg.users, slots), p=np.sqrt(cat_p) / np.sqrt(cat_p).sum())
    n_interest = rng.integers(1, slots + 1, size=cfg.users)
    weights = rng.gamma(1.0, size=(cfg.users, slots)) * (np.arange(slots) < n_interest[:, None])
    weights /= weights.sum(axis=1, keepdims=True)
    base = np.einsum("us,usd->ud", weights, centres[interests])
    base += rng.normal(scale=0.3 / np.sqrt(cfg.dim), size=base.shape)
    steps = rng.normal(scale=cfg.interest_drift / np.sqrt(cfg.dim), size=(cfg.users, cfg.days, cfg.dim))
    steps[:, 0] = 0.0
    vec_by_day = base[:, None, :] + np.cumsum(steps, axis=1)
    rank = rng.permutation(cfg.users) + 1
    activity = rank ** -0.7
    activity = np.minimum(activity / activity.mean() * cfg.requests_per_user_day, 24.0)
    city = rng.integers(cfg.n_cities, size=cfg.users)
    user_ids = np.arange(1, cfg.users + 1, dtype=np.int64)
    treated = (_hash_unit(user_ids, cfg.seed) < cfg.treatment_share)
    pop = _Population(
        interests=interests, interest_cdf=np.cumsum(weights, axis=1), vec_by_day=vec_by_day,
        bias=rng.normal(scale=0.4, size=cfg.users), activity=activity, city=city, treated=treated,
    )
    users = pd.DataFrame({
        "user_id": user_ids,
        "city": np.char.add("city", city.astype(str)),
        "age_group": rng.integers(1, 6, size=cfg.users),
        "gender": _GENDERS[rng.integers(0, 3, size=cfg.users)],
        "device": _DEVICES[rng.integers(0, 3, size=cfg.users)],
    })
    return pop, users


def _make_requests(cfg: WorldConfig, rng: np.random.Generator, pop: _Population, users: pd.DataFrame,
                   start_ts: int) -> pd.DataFrame:
    counts = rng.poisson(np.repeat(pop.activity[:, None], cfg.days, axis=1))
    user_idx = np.repeat(np.repeat(np.arange(cfg.users), cfg.days), counts.ravel())
    day = np.repeat(np.tile(np.arange(cfg.days), cfg.users), counts.ravel())
    hour = rng.choice(24, size=len(user_idx), p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    ts = start_ts + day * SECONDS_PER_DAY + hour * 3600 + rng.integers(0, 3600, size=len(user_idx))
    order = np.lexsort((user_idx, ts))
    user_idx, day, ts = user_idx[order], day[order], ts[order]
    device = users["device"].to_numpy()[user_idx].copy()
    switch = rng.random(len(user_idx)) < 0.1
    device[switch] = _DEVICES[rng.integers(0, 3, size=int(switch.sum()))]
    return pd.DataFrame({
        "request_id": np.arange(1, len(ts) + 1, dtype=np.int64),
        "ts": ts.astype(np.int64),
        "user_id": user_idx.astype(np.int64) + 1,
        "bucket": np.where(pop.treated[user_idx], "treatment", "control"),
        "device": device,
        "_day": day,
    })


def _draw_candidates(cfg: WorldConfig, rng: np.random.Generator, cat: _Catalogue, pop: _Population,
                     req_user: np.ndarray, req_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate (request index, item index, channel) triples, deduplicated per request."""
    n_req, per = len(req_user), cfg.candidates_per_request
    n = n_req * per
    req = np.repeat(np.arange(n_req), per)
    channel = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    item = rng.integers(0, cfg.items, size=n)
    hot = channel == 1
    item[hot] = np.minimum(np.searchsorted(cat.popularity_cdf, rng.random(int(hot.sum()))), cfg.items - 1)
    interest = channel == 0
    users = req_user[req[interest]]
    slot = (rng.random(int(interest.sum()))[:, None] > pop.interest_cdf[users]).sum(axis=1)
    category = pop.interests[users, np.minimum(slot, pop.interests.shape[1] - 1)]
    pos = np.searchsorted(cat.within_category_key, category + rng.random(len(category)))
    pos = np.minimum(pos, cfg.items - 1)
    # A category with no items falls through to its neighbour: harmless for a simulator.
    item[interest] = cat.order_by_category[pos]
    keep = cat.publish_ts[item] <= req_ts[req]
    key = req[keep].astype(np.int64) * cfg.items + item[keep]
    _, first = np.unique(key, return_index=True)
    first.sort()
    idx = np.flatnonzero(keep)[first]
    return req[idx], item[idx], channel[idx]


def _simulate_chunk(cfg: WorldConfig, rng: np.random.Generator, cat: _Catalogue, pop: _Population,
                    req: pd.DataFrame, start_ts: int) -> dict[str, pd.DataFrame]:
    req_user = req["user_id"].to_numpy() - 1
    req_ts = req["ts"].to_numpy()
    req_day = req["_day"].to_numpy()
    r, item, channel = _draw_candidates(cfg, rng, cat, pop, req_user, req_ts)
    user = req_user[r]
    affinity = user_item_affinity(cfg, cat, pop, user, req_day[r], item)
    hour = (req_ts[r] % SECONDS_PER_DAY) // 3600
    age_days = np.clip((req_ts[r] - cat.publish_ts[item]) / SECONDS_PER_DAY, 0, 90)
    logit = (cfg.intercept + cat.quality[item] + cfg.affinity * affinity + pop.bias[user]
             + 0.3 * (pop.city[user] == cat.city[item]) + 0.15 * (hour >= 18) - 0.01 * age_days)
    treated = pop.treated[user]
    noise_sd = np.where(treated & ~cfg.aa, cfg.ranker_noise_treatment, cfg.ranker_noise_control)
    # The ranker's log-odds: kept as such, because its sigmoid rounds to exactly 0 or 1 in
    # float64 for strong items, and the log-odds of 0 or 1 are infinite.
    z = logit + rng.normal(size=len(logit)) * noise_sd

    order = np.lexsort((-z, r))
    r, item, channel, user, logit, z, treated = (a[order] for a in (r, item, channel, user, logit, z, treated))
    starts = np.searchsorted(r, r)
    rank_pos = np.arange(len(r)) - starts + 1
    request_ids = req["request_id"].to_numpy()
    shown, e_pos = exposed_slots(cfg, rng, r, rank_pos)
    e_req, e_item = r[shown], item[shown]
    p_click = position_bias(e_pos, cfg.position_bias_power) * _sigmoid(logit[shown])
    p_click = np.minimum(p_click * np.where(treated[shown] & ~cfg.aa, 1.0 + cfg.click_lift, 1.0), 1.0)
    p_true = np.full(len(r), np.nan)
    p_true[shown] = p_click
    candidates = pd.DataFrame({
        "request_id": request_ids[r], "item_id": item + 1, "rank_pos": rank_pos,
        "rank_score": _sigmoid(z), "recall_source": _CHANNELS[channel],
        "_treated": treated, "_p_true": p_true, "_z": z,
    })
    clicked = rng.random(len(p_click)) < p_click
    exposures = pd.DataFrame({
        "request_id": request_ids[e_req], "item_id": e_item + 1, "ts": req_ts[e_req], "position": e_pos,
    })
    c_idx = np.flatnonzero(clicked)
    click_ts = req_ts[e_req[c_idx]] + 2 + rng.geometric(1 / 30.0, size=len(c_idx))
    clicks = pd.DataFrame({"request_id": request_ids[e_req[c_idx]], "item_id": e_item[c_idx] + 1, "ts": click_ts})
    o_item = e_item[c_idx]
    p_order = _sigmoid(cfg.order_rate_intercept + 0.6 * cat.quality[o_item] - 0.4 * (cat.log_price[o_item] - 3.0))
    ordered = rng.random(len(c_idx)) < p_order
    o_idx = c_idx[ordered]
    orders = pd.DataFrame({
        "request_id": pd.array(request_ids[e_req[o_idx]], dtype="Int64"),
        "user_id": req_user[e_req[o_idx]] + 1,
        "item_id": e_item[o_idx] + 1,
        "ts": click_ts[ordered] + 60 + rng.geometric(1 / 600.0, size=len(o_idx)),
    })
    drop_req = rng.random(len(orders)) < cfg.orders_without_request_share
    orders.loc[drop_req, "request_id"] = pd.NA

    truth_rows = pd.DataFrame({"treated": treated[shown], "p_click": p_click, "day": req_day[e_req]})

    # Dirt the join must account for: client retries log an exposure twice; clicks arrive
    # from other surfaces for items never exposed in that request.
    dup = rng.random(len(exposures)) < cfg.duplicate_exposure_rate
    dup_rows = exposures.loc[dup].assign(ts=lambda f: f["ts"] + 1)
    n_orphan = rng.binomial(len(req), cfg.orphan_click_rate)
    orphan_req = rng.integers(0, len(req), size=n_orphan)
    orphan = pd.DataFrame({"request_id": request_ids[orphan_req],
                           "item_id": rng.integers(1, cfg.items + 1, size=n_orphan),
                           "ts": req_ts[orphan_req] + 5})
    exposed_keys = pd.MultiIndex.from_arrays([exposures["request_id"], exposures["item_id"]])
    orphan = orphan.loc[~pd.MultiIndex.from_frame(orphan[["request_id", "item_id"]]).isin(exposed_keys)]
    return {
        "candidates": candidates,
        "exposures": pd.concat([exposures, dup_rows], ignore_index=True),
        "clicks": pd.concat([clicks, orphan], ignore_index=True),
        "orders": orders,
        "truth_rows": truth_rows,
    }


def _calibrate_scores(candidates: pd.DataFrame) -> pd.DataFrame:
    """Make ``rank_score`` a calibrated CTR estimate on exposed rows, per arm.

    The production ranker picks the top of noisy scores, so raw scores of exposed items are
    inflated (winner's curse) and ignore position bias. Like a real ranker calibrated on its
    exposures, each arm gets a monotone Platt map (log-odds regression of the true click
    probability of exposed rows on the raw log-odds, then an intercept shift that matches
    the means exactly). Monotone, so rankings and exposures are unchanged.
    """
    raw = candidates["rank_score"].to_numpy()
    z = candidates["_z"].to_numpy()
    out = np.empty_like(raw)
    p_true = candidates["_p_true"].to_numpy()
    for arm in (False, True):
        rows = candidates["_treated"].to_numpy() == arm
        fit = rows & np.isfinite(p_true)
        if not fit.any():
            out[rows] = raw[rows]
            continue
        # A click probability capped at 1 (click_lift) or underflowing to 0 has infinite
        # log-odds: clip it for the regression (the mean match below uses the true values).
        clipped = np.clip(p_true[fit], _P_CLIP, 1.0 - _P_CLIP)
        target = np.log(clipped) - np.log1p(-clipped)
        slope, intercept = np.polyfit(z[fit], target, 1)
        goal = p_true[fit].mean()
        for _ in range(30):  # Newton steps on the intercept: mean prediction == mean truth
            pred = _sigmoid(slope * z[fit] + intercept)
            intercept -= (pred.mean() - goal) / max((pred * (1 - pred)).mean(), 1e-12)
        out[rows] = _sigmoid(slope * z[rows] + intercept)
    return candidates.drop(columns=["_treated", "_p_true", "_z"]).assign(rank_score=out.astype(np.float32))


def simulate_world(config: WorldConfig | None = None, **overrides: Any) -> World:
    """Simulate a world.

    Parameters
    ----------
    config : WorldConfig, optional
        Parameters; keyword ``overrides`` replace single fields (``simulate_world(users=500)``).

    Returns
    -------
    World
        ``logs`` (validated :class:`ltr.Logs`) and ``truth`` (a JSON-ready dict with the seed,
        the parameters, the position-bias curve, the true CTR per bucket and the planted lift).
    """
    cfg = dataclasses.replace(config or WorldConfig(), **overrides)
    cfg.validate()
    # Children of a SeedSequence depend only on their position, so each stream keeps its seed.
    seeds = np.random.SeedSequence(cfg.seed).spawn(3)
    if cfg.shard:  # the items' stream is the seed's; the population's and the requests' are the shard's
        seeds[1:] = np.random.SeedSequence([cfg.seed, 2, cfg.shard]).spawn(2)
    rng_items, rng_users, rng_requests = (np.random.default_rng(s) for s in seeds)
    start_ts = parse_day(cfg.start_date, "start_date") * SECONDS_PER_DAY

    cat, items, cat_p = _make_items(cfg, rng_items, start_ts)
    n_cat = len(cat_p)
    centres = np.zeros((n_cat, cfg.dim))
    np.add.at(centres, cat.category, cat.vec)
    counts = np.bincount(cat.category, minlength=n_cat)[:, None]
    centres = np.divide(centres, counts, out=np.zeros_like(centres), where=counts > 0)
    pop, users = _make_users(cfg, rng_users, cat_p, n_cat, centres)
    requests = _make_requests(cfg, rng_requests, pop, users, start_ts)

    parts: list[dict[str, pd.DataFrame]] = []
    stream = [cfg.seed, 1, cfg.shard] if cfg.shard else [cfg.seed, 1]
    chunk_seeds = np.random.SeedSequence(stream).spawn(max(1, -(-len(requests) // _CHUNK_REQUESTS)))
    for i, seed in enumerate(chunk_seeds):
        chunk = requests.iloc[i * _CHUNK_REQUESTS:(i + 1) * _CHUNK_REQUESTS]
        if len(chunk):
            parts.append(_simulate_chunk(cfg, np.random.default_rng(seed), cat, pop, chunk, start_ts))
    tables = {name: pd.concat([p[name] for p in parts], ignore_index=True) for name in parts[0]}
    truth_rows = tables.pop("truth_rows")
    for name, order in (("exposures", ["ts", "request_id", "position"]), ("clicks", ["ts", "request_id"]),
                        ("orders", ["ts"])):
        tables[name] = tables[name].sort_values(order, kind="stable").reset_index(drop=True)

    if len(tables["clicks"]) == 0:
        raise ValueError(
            f"the world must have clicks to be a log: with intercept={cfg.intercept}, {cfg.users} users and "
            f"{cfg.days} days it has none. Raise intercept, users, days or requests_per_user_day."
        )
    tables["candidates"] = _calibrate_scores(tables["candidates"])
    logs = from_frames(requests=requests.drop(columns="_day"), items=items, users=users, **tables)
    truth = _truth(cfg, truth_rows, tables, requests)
    return World(logs=logs, truth=truth)


def _truth(cfg: WorldConfig, rows: pd.DataFrame, tables: dict, requests: pd.DataFrame) -> dict:
    true_ctr = rows.groupby(np.where(rows["treated"], "treatment", "control"))["p_click"].mean()
    ctr = {str(k): float(v) for k, v in true_ctr.items()}
    lift = ctr["treatment"] / ctr["control"] - 1.0 if {"treatment", "control"} <= ctr.keys() else None
    return {
        "seed": cfg.seed,
        "parameters": dataclasses.asdict(cfg),
        "start_day": cfg.start_date,
        "position_bias": {str(p): float(position_bias(p, cfg.position_bias_power))
                          for p in range(1, cfg.exposures_per_request + 1)},
        "true_ctr_by_bucket": ctr,
        "planted_ctr_lift": lift,
        "aa": cfg.aa,
        "treatment_users_share": float((requests.groupby("user_id")["bucket"].first() == "treatment").mean()),
        "rows": {name: len(frame) for name, frame in tables.items()} | {"requests": len(requests)},
        **interaction_truth(cfg),
        "note": ("true_ctr_by_bucket is the mean true click probability of the exposed items (position "
                 "bias included), so the logged CTR differs from it only by click sampling noise."),
    }
