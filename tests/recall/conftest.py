"""Shared recall fixtures: simulated worlds and sources trained once per test session.

Trained sources are shared between test files, so tests must treat them as read-only (fit
a fresh one to change parameters).
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from typing import NamedTuple

import pandas as pd
import pytest

from ltr.logs import Logs, day_index
from ltr.simulate import simulate_world
from recall.base import SOURCES, RecallSource
from recall.merge import MergedRecall
from tests.recall.worlds import simulated

#: Small, fast settings; only those a source's constructor accepts are passed to it.
TINY = {
    "nip": {"dim": 8, "hidden": (16,), "history_len": 5, "epochs": 1, "batch_size": 512, "n_popular": 16,
            "n_uniform": 16, "n_exposed": 2, "n_per_segment": 1, "M": 8, "ef_construction": 40,
            "threads": 1, "seed": 0},
    "two_tower": {"dim": 8, "hidden": (16,), "history_len": 5, "epochs": 1, "batch_size": 512, "n_popular": 16,
                  "n_uniform": 16, "n_exposed": 2, "n_per_segment": 1, "M": 8, "ef_construction": 40,
                  "threads": 1, "seed": 0},
    "itemcf": {},
    "hot": {},
}
#: Every registered source, and the merger of two of them.
NAMES = [*SOURCES, "merged"]


class World(NamedTuple):
    logs: Logs
    train_end: int
    requests: pd.DataFrame


def make_source(name: str, **params: object) -> RecallSource:
    """An unfitted source with :data:`TINY` settings (and ``params``). A registered source that
    cannot be imported raises here, so its tests fail instead of being skipped."""
    if name == "merged":
        return MergedRecall(sources=("itemcf", "hot"), quotas=(3, 2), **params)  # type: ignore[arg-type]
    module_name, cls_name = SOURCES[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{key: value for key, value in {**TINY.get(name, {}), **params}.items() if key in accepted})


@pytest.fixture(scope="session")
def contract_world() -> World:
    """The world of the contract tests: 300 users, 400 items, 6 days; 40 requests of the last day."""
    logs, train_end, requests = simulated(seed=11)
    return World(logs, train_end, requests.head(40).reset_index(drop=True))


def fitted_on(world: World) -> Callable[[str], RecallSource]:
    """``get(name)``: the source ``name`` (:func:`make_source`) trained on ``world``, once."""
    cache: dict[str, RecallSource] = {}

    def get(name: str) -> RecallSource:
        if name not in cache:
            cache[name] = make_source(name).fit(world.logs, world.train_end)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def fitted(contract_world: World) -> Callable[[str], RecallSource]:
    """``fitted(name)``: the source ``name`` trained on :func:`contract_world` (once per session)."""
    return fitted_on(contract_world)


@pytest.fixture(scope="session")
def nip_world() -> World:
    """A world with two catalogue items nobody interacted with (attributes copied from items 0
    and 1) and three clicks on an item outside the catalogue; requests of the last day."""
    logs = simulate_world(users=300, items=400, days=6, candidates_per_request=30, seed=1).logs
    extra = logs.items.iloc[:2].copy()
    extra["item_id"] = [10**6, 10**6 + 1]
    clicks = logs.clicks.copy()
    clicks.loc[clicks.index[:3], "item_id"] = 5 * 10**6
    logs = dataclasses.replace(logs, items=pd.concat([logs.items, extra], ignore_index=True), clicks=clicks)
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    end = int(days.min()) + 4
    return World(logs, end, logs.requests.loc[days > end].reset_index(drop=True))


@pytest.fixture(scope="session")
def two_tower_world() -> World:
    logs = simulate_world(users=300, items=400, days=6, candidates_per_request=30, seed=2).logs
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    end = int(days.min()) + 4
    return World(logs, end, logs.requests.loc[days > end].reset_index(drop=True))


@pytest.fixture(scope="session")
def samples_world() -> World:
    """The world of the training-sample tests (60 ranker candidates per request); no requests."""
    logs = simulate_world(users=200, items=300, days=4, candidates_per_request=60, seed=3).logs
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    return World(logs, int(days.min()) + 2, logs.requests.iloc[:0])
