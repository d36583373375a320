"""The simulator's recall options (ltr/simulate/_interaction.py): a max-of-interests affinity
no inner product represents, and exposures drawn from the ranker's top N."""
from __future__ import annotations

import numpy as np
import pytest

from ltr.simulate import simulate_world
from ltr.simulate._interaction import affinity


class _Cfg:
    def __init__(self, interaction):
        self.interaction = interaction


class _Cat:
    def __init__(self, category, vec):
        self.category, self.vec = category, vec


class _Pop:
    def __init__(self, interests, cdf, vec_by_day):
        self.interests, self.interest_cdf, self.vec_by_day = interests, cdf, vec_by_day


def test_max_affinity_matches_a_slow_reference():
    rng = np.random.default_rng(0)
    n_items, n_users, dim, days = 30, 6, 4, 3
    category = rng.integers(0, 5, n_items)
    vec = rng.normal(size=(n_items, dim))
    interests = rng.integers(0, 5, (n_users, 3))
    weights = rng.random((n_users, 3)) * (np.arange(3) < rng.integers(1, 4, n_users)[:, None])
    weights /= weights.sum(axis=1, keepdims=True)
    vec_by_day = rng.normal(size=(n_users, days, dim))
    cat, pop = _Cat(category, vec), _Pop(interests, np.cumsum(weights, axis=1), vec_by_day)
    user, day, item = rng.integers(0, n_users, 50), rng.integers(0, days, 50), rng.integers(0, n_items, 50)
    got = affinity(_Cfg("max"), cat, pop, user, day, item)
    for n in range(50):
        u = user[n]
        best = -np.inf
        for s in range(3):
            if weights[u, s] > 0:
                centre = vec[category == interests[u, s]].mean(axis=0)
                slot = centre + vec_by_day[u, day[n]] - vec_by_day[u, 0]
                best = max(best, slot @ vec[item[n]])
        assert got[n] == pytest.approx(best, rel=1e-9)
    plain = affinity(_Cfg("none"), cat, pop, user, day, item)
    np.testing.assert_allclose(plain, np.einsum("nd,nd->n", vec_by_day[user, day], vec[item]))


def test_exposures_drawn_from_the_ranker_top():
    world = simulate_world(users=200, items=500, days=3, candidates_per_request=200, exposure_depth=60, seed=3)
    logs = world.logs
    ranked = logs.exposures.merge(logs.candidates[["request_id", "item_id", "rank_pos"]], on=["request_id", "item_id"])
    assert ranked["rank_pos"].max() <= 60 and (ranked["rank_pos"] > 10).mean() > 0.2
    positions = logs.exposures.drop_duplicates(["request_id", "item_id"]).groupby("request_id")["position"]
    assert (positions.min() == 1).all() and (positions.max() == positions.size()).all()
    assert world.truth["recall_options"]["exposure_depth"] == 60


def test_default_truth_has_no_recall_options():
    assert "recall_options" not in simulate_world(users=50, items=80, days=2, seed=0).truth
    truth = simulate_world(users=50, items=80, days=2, seed=0, interaction="max").truth
    assert truth["recall_options"]["interaction"] == "max"


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"interaction": "min"}, ValueError, r"interaction must be one of \['none', 'max'\]\. Got 'min' instead\."),
    ({"exposure_depth": 5}, ValueError, r"exposure_depth must be 0 or >= exposures_per_request \(10\)\. Got 5"),
    ({"exposure_depth": 2.5}, TypeError, r"exposure_depth must be an int >= 0\. Got 2\.5 instead\."),
])
def test_bad_options(params, error, match):
    with pytest.raises(error, match=match):
        simulate_world(users=10, items=20, days=1, **params)
