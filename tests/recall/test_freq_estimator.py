"""Tests for recall.neural._freq_estimator: streaming frequency estimation (seed 001)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recall.neural._freq_estimator import StreamingFrequencyEstimator

N_ITEMS, BATCH, STEPS = 1000, 1024, 20_000


@pytest.fixture(scope="module")
def zipf_stream():
    """Batches of BATCH draws (with replacement) from Zipf(1) over N_ITEMS items.

    The true per-step probability that item i appears in a batch is
    p_i = 1 - (1 - q_i) ** BATCH, q_i the per-draw probability; the estimator's
    target is exactly this (it counts an item once per step).
    """
    rng = np.random.default_rng(12345)
    q = 1.0 / np.arange(1, N_ITEMS + 1)
    q /= q.sum()
    cdf = np.cumsum(q)
    cdf[-1] = 1.0
    # Item ids are scrambled so that frequency rank is not the id.
    ids = (rng.permutation(N_ITEMS) * 7919 + 13).astype(np.int32)
    stream = np.empty((STEPS, BATCH), dtype=np.int32)
    for start in range(0, STEPS, 2000):  # chunks keep the peak memory small
        draws = np.searchsorted(cdf, rng.random((2000, BATCH)), side="right")
        stream[start : start + 2000] = ids[draws]
    return stream, ids, 1.0 - (1.0 - q) ** BATCH


def _run(stream, **params):
    est = StreamingFrequencyEstimator(**params)
    for step, batch in enumerate(stream):
        est.update(batch, step)
    return est


def _reference(stream, est_params, hash_fn):
    """Slow sequential reference: dict state, per-bucket Python updates."""
    alpha, init_gap, n_hashes = (est_params["alpha"], est_params["init_gap"],
                                 est_params["n_hashes"])
    last = [dict() for _ in range(n_hashes)]
    gap = [dict() for _ in range(n_hashes)]
    for step, batch in enumerate(stream):
        for j in range(n_hashes):
            buckets = {int(b) for b in hash_fn(np.unique(np.asarray(batch, np.int64)), j)}
            for b in sorted(buckets):
                if b in last[j]:
                    gap[j][b] = (1 - alpha) * gap[j].get(b, init_gap) + alpha * (
                        step - last[j][b])
                last[j][b] = step
    return gap


def test_head_and_tail_within_ten_percent(zipf_stream):
    stream, ids, p = zipf_stream
    # init_gap: prior 1/p for an average item = n_items / distinct items per batch.
    est = _run(stream, n_buckets=1 << 16, n_hashes=2, alpha=0.002, seed=0,
               init_gap=N_ITEMS / p.sum())
    estimate = est.probability(ids)
    relative_error = np.abs(estimate / p - 1.0)
    # Head: the 20 most frequent items (p > 0.99). Tail: 20 items evenly spread
    # over frequency ranks 500..999, the less frequent half of the catalogue;
    # with batches of 1024 draws they still appear in 13%..24% of the steps, so
    # each has >= 2,500 occurrences and alpha = 0.002 has forgotten the prior.
    # The estimator's noise is about sqrt(alpha / 2) ~ 3% relative, so 10% is a
    # >3-sigma bound; measured maxima: head 0.2%, tail 7.1%.
    head = np.arange(20)
    tail = np.linspace(500, N_ITEMS - 1, 20).astype(int)
    assert relative_error[head].max() < 0.10
    assert relative_error[tail].max() < 0.10
    assert np.all(p[tail] > 0.12)


def test_more_hashes_reduce_collision_error(zipf_stream):
    stream, ids, p = zipf_stream
    errors = {}
    for n_hashes in (1, 4):
        # 400 buckets for 1000 items: every bucket is shared, so collisions
        # dominate the error.
        est = _run(stream[:5000], n_buckets=400, n_hashes=n_hashes, alpha=0.01,
                   seed=1, init_gap=3.0)
        estimate = est.probability(ids)
        # Collisions only make gaps shorter, so the estimate is biased upwards.
        assert np.median(estimate / p - 1.0) > 0
        errors[n_hashes] = np.mean(np.abs(estimate / p - 1.0))
    # Measured mean relative error: 1.84 with one hash, 0.79 with four.
    assert errors[4] < 0.6 * errors[1]


@pytest.mark.parametrize(("n_hashes", "n_buckets"), [(1, 7), (3, 11), (2, 1000)])
def test_matches_sequential_reference(n_hashes, n_buckets):
    rng = np.random.default_rng(n_hashes * 100 + n_buckets)
    stream = [rng.integers(-50, 50, size=rng.integers(0, 30)) for _ in range(300)]
    params = dict(n_buckets=n_buckets, n_hashes=n_hashes, alpha=0.1, seed=4,
                  init_gap=5.0)
    est = StreamingFrequencyEstimator(**params)
    steps = np.cumsum(rng.integers(1, 4, size=len(stream)))
    for step, batch in zip(steps, stream, strict=True):
        est.update(batch, int(step))
    # The reference takes one batch per step, so gaps in the step numbers become
    # empty batches.
    expanded = [np.zeros(0, np.int64)] * (int(steps[-1]) + 1)
    for step, batch in zip(steps, stream, strict=True):
        expanded[int(step)] = batch
    gap = _reference(expanded, params, est._hash)
    for j in range(n_hashes):
        expected = np.full(n_buckets, 5.0)
        for bucket, value in gap[j].items():
            expected[bucket] = value
        np.testing.assert_allclose(est.gap_[j], expected, rtol=0, atol=1e-12)
    items = np.arange(-60, 60)
    buckets = np.stack([est._hash(items, j) for j in range(n_hashes)])
    expected_p = 1.0 / np.max(
        [[est.gap_[j, b] for b in buckets[j]] for j in range(n_hashes)], axis=0)
    np.testing.assert_allclose(est.probability(items), expected_p)


def test_hand_computed_gaps():
    est = StreamingFrequencyEstimator(n_buckets=101, n_hashes=3, alpha=0.5, seed=0,
                                      init_gap=10.0)
    # Item 7 at steps 0, 3, 6, 9 (twice in one batch counts once); B goes
    # 10 -> 0.5*10 + 0.5*3 = 6.5 -> 4.75 -> 3.875, and p = 1 / 3.875.
    for step in (0, 3, 6, 9):
        est.update(np.array([7, 7]), step)
    before_second = StreamingFrequencyEstimator(
        n_buckets=101, n_hashes=3, alpha=0.5, seed=0, init_gap=10.0
    ).update([7], 4)
    assert est.probability(np.array([7]))[0] == pytest.approx(1 / 3.875)
    # The first sighting only sets A: p stays at the prior 1 / init_gap.
    assert before_second.probability([7])[0] == pytest.approx(0.1)
    np.testing.assert_allclose(est.probability(np.array([[7, 7]])), [[1 / 3.875, 1 / 3.875]])


def test_probability_before_update_is_prior_and_does_not_fit():
    est = StreamingFrequencyEstimator(n_buckets=10, n_hashes=2, init_gap=40.0)
    np.testing.assert_array_equal(est.probability([1, 2, 3]), [0.025] * 3)
    assert not hasattr(est, "gap_")


def test_state_round_trip_through_json_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    est = StreamingFrequencyEstimator(n_buckets=64, n_hashes=2, alpha=0.05, seed=3,
                                      init_gap=8.0)
    for step in range(50):
        est.update(rng.integers(0, 200, size=20), step)
    meta, arrays = est.to_state()
    path = tmp_path / "freq.npz"
    np.savez(path, **arrays)
    with np.load(path, allow_pickle=False) as data:
        loaded = StreamingFrequencyEstimator.from_state(json.loads(json.dumps(meta)), data)
    items = np.arange(200)
    np.testing.assert_array_equal(loaded.probability(items), est.probability(items))
    assert loaded.step_ == 49 and loaded.n_updates_ == 50
    # Continuing the stream gives the same state as never having saved.
    for model in (est, loaded):
        model.update(np.arange(10), 60)
    np.testing.assert_array_equal(loaded.gap_, est.gap_)
    np.testing.assert_array_equal(loaded.last_step_, est.last_step_)


def test_from_state_rejects_bad_state():
    meta, arrays = StreamingFrequencyEstimator(n_buckets=8, n_hashes=2).to_state()
    with pytest.raises(ValueError, match=r"Got them without \['gap'\]"):
        StreamingFrequencyEstimator.from_state(meta, {k: v for k, v in arrays.items() if k != "gap"})
    with pytest.raises(ValueError, match="state gap must be float64 with shape"):
        StreamingFrequencyEstimator.from_state(meta, {**arrays, "gap": np.zeros((2, 9))})
    with pytest.raises(ValueError, match=r"version 1. Got format 'recall.StreamingFrequencyEstimator' version 9"):
        StreamingFrequencyEstimator.from_state({**meta, "version": 9}, arrays)
    with pytest.raises(ValueError, match=r"state must have keys \['step'\]"):
        StreamingFrequencyEstimator.from_state({k: v for k, v in meta.items() if k != "step"}, arrays)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (dict(n_buckets=0), ValueError, r"n_buckets must be an int in \[1, inf\)"),
        (dict(n_hashes=1.5), TypeError, "n_hashes must be an int"),
        (dict(alpha=0.0), ValueError, r"alpha must be a float in \(0\.0, 1\.0\]\. Got 0\.0"),
        (dict(alpha=1.5), ValueError, "alpha must be a float"),
        (dict(init_gap=-1.0), ValueError, "init_gap must be a float in"),
        (dict(init_gap=np.inf), ValueError, "init_gap must be a float in"),
        (dict(seed=-1), ValueError, "seed must be an int"),
    ],
)
def test_rejects_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        StreamingFrequencyEstimator(**params).update([1, 2], 0)


def test_rejects_bad_updates():
    est = StreamingFrequencyEstimator(n_buckets=8).update([1], 5)
    with pytest.raises(ValueError, match=r"step must be greater than the previous step 5. Got 5"):
        est.update([1], 5)
    with pytest.raises(TypeError, match="item_ids must have an integer dtype"):
        est.update(np.array([1.5]), 6)
    with pytest.raises(TypeError, match="step must be an int"):
        est.update([1], 6.0)
    est.update(np.zeros(0, dtype=np.int64), 7)  # an empty batch only advances time
    assert est.step_ == 7
