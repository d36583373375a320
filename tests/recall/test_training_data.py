"""Tests of recall.neural._training_data: positives, hard negatives, cascade levels."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ltr.logs import join_samples
from recall.neural._training_data import (
    EXPOSED_LEVEL,
    RANK_SEGMENTS,
    _sample_per_group,
    build_training_samples,
)


def _segment(rank: int) -> int:
    for s, bound in enumerate(RANK_SEGMENTS, start=1):
        if rank <= bound:
            return s
    return -1


def test_positives_match_join(samples_world):
    logs, end, _ = samples_world
    data = build_training_samples(logs, end, order_weight=2.5)
    samples = join_samples(logs).samples
    samples = samples.loc[(samples["day"] <= end) & ((samples["click"] > 0) | (samples["order"] > 0))]
    got = set(zip(data.request_id.tolist(), data.item_id.tolist(), strict=True))
    assert got == set(zip(samples["request_id"].tolist(), samples["item_id"].tolist(), strict=True))
    assert np.all(np.diff(data.ts) >= 0)
    assert set(np.unique(data.weight).tolist()) <= {1.0, 2.5}
    np.testing.assert_array_equal(data.weight == 2.5, data.ordered)


@pytest.mark.parametrize(("n_exposed", "n_per_segment"), [(4, 4), (1, 2), (0, 3), (2, 0)])
def test_hard_negatives_against_loop_reference(samples_world, n_exposed, n_per_segment):
    logs, end, _ = samples_world
    data = build_training_samples(logs, end, n_exposed=n_exposed, n_per_segment=n_per_segment, seed=5)
    samples = join_samples(logs).samples
    clicked = samples.loc[(samples["click"] > 0) | (samples["order"] > 0)]
    pos_of = clicked.groupby("request_id")["item_id"].apply(set).to_dict()
    exposed_neg = samples.loc[(samples["click"] == 0) & (samples["order"] == 0)]
    exposed_of = exposed_neg.groupby("request_id")["item_id"].apply(set).to_dict()
    cands = logs.candidates
    rank_of = {(r, i): p for r, i, p in zip(cands["request_id"], cands["item_id"], cands["rank_pos"], strict=True)}
    seg_count = {}
    for (r, i), p in rank_of.items():
        if i not in pos_of.get(r, set()):
            seg_count[(r, _segment(p))] = seg_count.get((r, _segment(p)), 0) + 1
    for row in range(0, len(data), 7):  # slow reference on a subset of rows
        r = int(data.request_id[row])
        items, levels = data.hard_items[row], data.hard_levels[row]
        valid = levels >= 0
        assert np.all(items[~valid] == -1)
        for item, level in zip(items[valid], levels[valid], strict=True):
            assert item not in pos_of[r]
            if level == EXPOSED_LEVEL:
                assert item in exposed_of[r]
            else:
                assert _segment(rank_of[(r, int(item))]) == level
        n_exp = int((levels == EXPOSED_LEVEL).sum())
        assert n_exp == min(n_exposed, len(exposed_of.get(r, ())))
        for s in range(1, len(RANK_SEGMENTS) + 1):
            assert int((levels == s).sum()) == min(n_per_segment, seg_count.get((r, s), 0))
        assert len(set(zip(items[valid].tolist(), levels[valid].tolist(), strict=True))) == int(valid.sum())


def test_deterministic_and_no_cascade(samples_world):
    logs, end, _ = samples_world
    a = build_training_samples(logs, end, seed=1)
    b = build_training_samples(logs, end, seed=1)
    np.testing.assert_array_equal(a.hard_items, b.hard_items)
    np.testing.assert_array_equal(a.hard_levels, b.hard_levels)
    other = build_training_samples(logs, end, seed=2)
    assert (other.hard_items != a.hard_items).any(), "the seed draws the negatives"
    c = build_training_samples(logs, end, cascade=False)
    # The positives do not depend on the negatives; without the cascade there are none.
    np.testing.assert_array_equal(c.item_id, a.item_id)
    np.testing.assert_array_equal(c.weight, a.weight)
    assert c.hard_items.size == 0 and c.hard_levels.size == 0


def test_no_candidates_table(samples_world):
    logs, end, _ = samples_world
    bare = dataclasses.replace(logs, candidates=None)
    data = build_training_samples(bare, end)
    assert set(np.unique(data.hard_levels).tolist()) <= {-1, EXPOSED_LEVEL}


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_exposed": -1}, ValueError, r"n_exposed must be an int in \[0, inf\)\. Got -1 instead\."),
    ({"n_per_segment": 1.5}, TypeError, r"n_per_segment must be an int\. Got 1\.5 instead\."),
    ({"order_weight": 0.0}, ValueError, r"order_weight must be a float in \(0\.0, inf\)\. Got 0\.0 instead\."),
    ({"train_end_day": "2026-01-01"}, TypeError, r"train_end_day must be an int \(days since epoch\)"),
])
def test_bad_params(samples_world, kwargs, error, match):
    logs, end, _ = samples_world
    kwargs = {"train_end_day": end, **kwargs}
    with pytest.raises(error, match=match):
        build_training_samples(logs, **kwargs)


def test_no_positives_before_start(samples_world):
    logs, end, _ = samples_world
    with pytest.raises(ValueError, match="must hold clicks or orders"):
        build_training_samples(logs, end - 100)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_per_group", [0, 1, 3])
def test_sample_per_group_reference(seed, n_per_group):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 6, 50)
    keep = _sample_per_group(group, n_per_group, np.random.default_rng(seed))
    for g in np.unique(group):
        assert keep[group == g].sum() == min(n_per_group, (group == g).sum())
