"""Streaming item-frequency estimation for sampling-bias correction (seed 001).

In-batch softmax treats the other items of a batch as negatives, so popular
items are over-represented as negatives; the logQ correction subtracts
``log p(item)`` from each logit, where ``p`` is the probability that the item
appears in a training batch. Yi et al. (RecSys 2019, "Sampling-bias-corrected
neural modeling for large corpus item recommendations", Algorithm 2) estimate it
from the stream with no vocabulary: hash the item id into ``H`` buckets, keep
``A[h]`` the last global step the bucket was hit and ``B[h]`` a moving average of
the gap between hits,

    B[h] <- (1 - alpha) * B[h] + alpha * (t - A[h]);   A[h] <- t,

and estimate ``p = 1 / B``. Collisions make a bucket's gaps shorter than the
item's own, so with several independent hash arrays the estimate takes the
largest gap (the least collided bucket): ``p = 1 / max_j B_j[h_j(y)]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ltr._validation import check_float, check_int
from ltr.artifacts import check_state

__all__ = ["StreamingFrequencyEstimator"]

_STATE_FORMAT = "recall.StreamingFrequencyEstimator"
_STATE_VERSION = 1
_ARRAYS = ("last_step", "gap", "hash_keys")
# splitmix64 finaliser constants (Steele et al.): a fast, well-mixing 64-bit map.
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_PARAMS = ("n_buckets", "n_hashes", "alpha", "seed", "init_gap")


class StreamingFrequencyEstimator:
    """Estimate per-step occurrence probability of items in a stream of batches.

    Parameters
    ----------
    n_buckets : int, default=1_000_003
        Buckets ``H`` per hash array.
    n_hashes : int, default=2
        Independent hash arrays; the estimate uses the largest gap among them.
    alpha : float, default=0.01
        Learning rate of the moving average of gaps, in (0, 1]. Smaller is less
        noisy (relative standard deviation about ``sqrt(alpha / 2)``) but adapts
        more slowly (about ``1 / alpha`` occurrences to forget the past).
    seed : int, default=0
        Seed of the hash functions.
    init_gap : float, default=100.0
        Initial gap ``B0`` of every bucket, so ``1 / init_gap`` is the prior
        probability before an item has been seen twice. Set it near ``1 / p`` for
        a typical item, for example ``n_distinct_items / distinct_items_per_batch``:
        a small ``B0`` would make rarely seen items look frequent (their few
        updates cannot pull ``B`` up from it), a value near the truth leaves them
        unbiased.

    Attributes
    ----------
    last_step_ : ndarray of int64, shape (n_hashes, n_buckets)
        ``A``: step of the last hit of each bucket, -1 for never.
    gap_ : ndarray of float64, shape (n_hashes, n_buckets)
        ``B``: moving average of steps between hits of each bucket.
    hash_keys_ : ndarray of uint64, shape (n_hashes,)
        Per-array hash keys drawn from ``seed``.
    n_updates_ : int
        Number of :meth:`update` calls.
    step_ : int
        Step of the last :meth:`update`.

    Notes
    -----
    The first hit of a bucket only sets ``A``: a gap measured from "never" would
    be the bucket's age, not an inter-arrival time. An item is counted once per
    step however often it occurs in the batch, and a bucket hit by several items
    in one step is updated once, so ``p`` is the probability that the item
    appears in a batch. ``1 / B`` estimates it consistently because the mean gap
    of an event with per-step probability ``p`` is ``1 / p``.
    """

    last_step_: np.ndarray
    gap_: np.ndarray
    hash_keys_: np.ndarray
    n_updates_: int
    step_: int

    def __init__(
        self,
        n_buckets: int = 1_000_003,
        n_hashes: int = 2,
        alpha: float = 0.01,
        seed: int = 0,
        init_gap: float = 100.0,
    ) -> None:
        self.n_buckets = n_buckets
        self.n_hashes = n_hashes
        self.alpha = alpha
        self.seed = seed
        self.init_gap = init_gap

    def update(self, item_ids: np.ndarray, step: int) -> StreamingFrequencyEstimator:
        """Record the items of the batch at global ``step``.

        Parameters
        ----------
        item_ids : array-like of int
            Item ids of the batch (any shape; duplicates count once).
        step : int
            Global training step, non-negative and larger than the previous one.

        Returns
        -------
        self
        """
        if not hasattr(self, "gap_"):
            self._validate_params()
            self._init_state()
        step = check_int(step, "step", minimum=0)
        if self.n_updates_ and step <= self.step_:
            raise ValueError(
                f"step must be greater than the previous step {self.step_}. Got {step} "
                "instead."
            )
        items = np.unique(_check_items(item_ids))
        alpha = float(self.alpha)
        for j in range(int(self.n_hashes)):
            buckets = np.unique(self._hash(items, j))
            last = self.last_step_[j, buckets]
            seen = last >= 0
            hit = buckets[seen]
            self.gap_[j, hit] = (1.0 - alpha) * self.gap_[j, hit] + alpha * (
                step - last[seen]
            )
            self.last_step_[j, buckets] = step
        self.step_ = step
        self.n_updates_ += 1
        return self

    def probability(self, item_ids: np.ndarray) -> np.ndarray:
        """Estimated probability that each item appears in a batch.

        Parameters
        ----------
        item_ids : array-like of int
            Item ids, any shape.

        Returns
        -------
        ndarray of float64, same shape as ``item_ids``
            ``1 / max_j B_j[h_j(item)]``; ``1 / init_gap`` before any update.
            For the logQ correction subtract ``log`` of it from the logits.
        """
        items = _check_items(item_ids)
        if not hasattr(self, "gap_"):
            self._validate_params()
            return np.full(items.shape, 1.0 / float(self.init_gap))
        flat = items.reshape(-1)
        gaps = np.stack([self.gap_[j, self._hash(flat, j)] for j in range(self.n_hashes)])
        return (1.0 / gaps.max(axis=0)).reshape(items.shape)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Parameters and counters as JSON-able metadata, the bucket arrays as numpy arrays.

        Returns
        -------
        meta : dict
            Format, version, constructor parameters, ``n_updates`` and ``step``.
        arrays : dict of str to ndarray
            ``last_step``, ``gap`` and ``hash_keys``, loadable with
            ``np.load(..., allow_pickle=False)``; :meth:`from_state` inverts both.
        """
        if not hasattr(self, "gap_"):
            self._validate_params()
            self._init_state()
        meta = {"format": _STATE_FORMAT, "version": _STATE_VERSION,
                "n_buckets": int(self.n_buckets), "n_hashes": int(self.n_hashes), "alpha": float(self.alpha),
                "seed": int(self.seed), "init_gap": float(self.init_gap),
                "n_updates": int(self.n_updates_), "step": int(self.step_)}
        arrays = {"last_step": self.last_step_.copy(), "gap": self.gap_.copy(), "hash_keys": self.hash_keys_.copy()}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, Any]) -> StreamingFrequencyEstimator:
        """Rebuild an estimator from :meth:`to_state` output.

        Parameters
        ----------
        meta : mapping
            The metadata, for example read back from JSON.
        arrays : mapping of str to array-like
            For example the ``NpzFile`` of ``np.load(path, allow_pickle=False)``.

        Returns
        -------
        StreamingFrequencyEstimator

        Raises
        ------
        ValueError
            On a missing key, another format version or inconsistent shapes.
        """
        check_state(dict(meta), _STATE_FORMAT, _STATE_VERSION, (*_PARAMS, "n_updates", "step"))
        missing = [key for key in _ARRAYS if key not in arrays]
        if missing:
            raise ValueError(f"state arrays must hold the keys {list(_ARRAYS)}. Got them without {missing} instead.")
        est = cls(**{name: meta[name] for name in _PARAMS})
        est._validate_params()
        shape = (est.n_hashes, est.n_buckets)
        wanted = {"last_step": (shape, np.int64), "gap": (shape, np.float64), "hash_keys": ((est.n_hashes,), np.uint64)}
        for key, (want_shape, want_dtype) in wanted.items():
            array = np.asarray(arrays[key])
            if array.shape != want_shape or array.dtype != want_dtype:
                raise ValueError(
                    f"state {key} must be {np.dtype(want_dtype).name} with shape "
                    f"{want_shape}. Got {array.dtype.name} with shape {array.shape} "
                    "instead."
                )
        est.last_step_ = np.array(arrays["last_step"])
        est.gap_ = np.array(arrays["gap"])
        est.hash_keys_ = np.array(arrays["hash_keys"])
        est.n_updates_ = int(meta["n_updates"])
        est.step_ = int(meta["step"])
        return est

    def _validate_params(self) -> None:
        check_int(self.n_buckets, "n_buckets", minimum=1)
        check_int(self.n_hashes, "n_hashes", minimum=1)
        check_int(self.seed, "seed", minimum=0)
        check_float(self.alpha, "alpha", low=0.0, high=1.0, low_open=True)
        check_float(self.init_gap, "init_gap", low=0.0, low_open=True)

    def _init_state(self) -> None:
        shape = (int(self.n_hashes), int(self.n_buckets))
        self.last_step_ = np.full(shape, -1, dtype=np.int64)
        self.gap_ = np.full(shape, float(self.init_gap), dtype=np.float64)
        rng = np.random.default_rng(self.seed)
        self.hash_keys_ = rng.integers(
            0, np.iinfo(np.uint64).max, size=shape[0], dtype=np.uint64, endpoint=True
        )
        self.n_updates_ = 0
        self.step_ = -1

    def _hash(self, items: np.ndarray, j: int) -> np.ndarray:
        # Keying the input before the splitmix64 finaliser gives each array an
        # independent-looking bucket assignment; uint64 arithmetic wraps mod 2**64.
        z = items.view(np.uint64) ^ self.hash_keys_[j]
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z ^= z >> np.uint64(31)
        return (z % np.uint64(self.n_buckets)).astype(np.int64)


def _check_items(item_ids) -> np.ndarray:
    array = np.asarray(item_ids)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"item_ids must have an integer dtype. Got {array.dtype} instead.")
    return np.ascontiguousarray(array, dtype=np.int64)
