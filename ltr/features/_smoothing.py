"""Beta priors for CTR smoothing, fitted per key family from (clicks, exposures) counts.

Model: each key ``i`` (an item, a user x category pair ...) has a click rate
``p_i ~ Beta(alpha, beta)`` and ``clicks_i ~ Binomial(exposures_i, p_i)``. The smoothed
rate is the posterior mean ``(clicks + alpha) / (exposures + alpha + beta)``, so one
click in one exposure is pulled towards the family's mean instead of reading 1.0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma

from ltr._validation import check_choice, check_float, check_int
from ltr.artifacts import check_state

__all__ = ["BetaPrior", "PriorFitWarning", "fit_beta_prior"]

_FORMAT = "ltr.BetaPrior"
_FORMAT_VERSION = 1
_METHODS = ("moments", "mle")
# Below this, alpha + beta no longer smooths anything measurable and digamma/betaln
# lose precision near 0.
_MIN_STRENGTH = 1e-6
_LOGIT_BOUND = 30.0


class PriorFitWarning(UserWarning):
    """The data could not pin down the prior's strength, so the cap was used."""


@dataclass(frozen=True)
class BetaPrior:
    """A fitted Beta(alpha, beta) prior on a key family's click rate.

    Parameters
    ----------
    alpha : float
        Prior pseudo-clicks, > 0.
    beta : float
        Prior pseudo-non-clicks, > 0.
    method : str
        How it was fitted: ``"moments"``, ``"mle"`` (or any label for a hand-set prior).
    n_keys : int
        Number of keys (with at least one exposure) it was fitted on.
    """

    alpha: float
    beta: float
    method: str
    n_keys: int

    def __post_init__(self) -> None:
        for name in ("alpha", "beta"):
            object.__setattr__(self, name, check_float(getattr(self, name), name, low=0.0, low_open=True))
        if not isinstance(self.method, str):
            raise TypeError(f"method must be a str. Got {self.method!r} instead.")
        object.__setattr__(self, "n_keys", check_int(self.n_keys, "n_keys", minimum=0))

    @property
    def mean(self) -> float:
        """Prior mean click rate, ``alpha / (alpha + beta)``."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def strength(self) -> float:
        """Prior weight in exposures, ``alpha + beta``."""
        return self.alpha + self.beta

    def smooth(self, clicks: Any, exposures: Any) -> np.ndarray:
        """Posterior-mean click rate ``(clicks + alpha) / (exposures + alpha + beta)``.

        Parameters
        ----------
        clicks : array-like of float
            Click counts (non-negative; may be time-decayed, so not necessarily integers).
        exposures : array-like of float
            Exposure counts, broadcastable with ``clicks``; 0 gives the prior mean.

        Returns
        -------
        rate : ndarray of float64
            Smoothed rates in (0, 1), shape of the broadcast inputs. Increasing in
            ``clicks`` and, for ``clicks / exposures`` fixed, moving from the prior
            mean towards the raw rate as ``exposures`` grows.
        """
        c = _as_float(clicks, "clicks")
        n = _as_float(exposures, "exposures")
        for name, values in (("clicks", c), ("exposures", n)):
            bad = ~np.isfinite(values) | (values < 0)
            if bad.any():
                first = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), values.shape)
                raise ValueError(
                    f"{name} must be finite and >= 0. Got {float(values[first])!r} at index "
                    f"{tuple(int(i) for i in first)} instead."
                )
        return (c + self.alpha) / (n + self.alpha + self.beta)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export as JSON-serialisable metadata (no arrays needed).

        Returns
        -------
        meta : dict
            ``format``, ``version``, ``alpha``, ``beta``, ``method``, ``n_keys``.
        arrays : dict
            Empty.
        """
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "alpha": self.alpha,
            "beta": self.beta,
            "method": self.method,
            "n_keys": self.n_keys,
        }
        return meta, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> BetaPrior:
        """Rebuild from :meth:`to_state` output.

        Parameters
        ----------
        meta : dict
            As returned by :meth:`to_state` (possibly after a JSON round trip).
        arrays : mapping of str -> ndarray
            As returned by :meth:`to_state` (unused).

        Returns
        -------
        prior : BetaPrior
            Equal to the exported prior.
        """
        check_state(meta, _FORMAT, _FORMAT_VERSION, ("alpha", "beta", "method", "n_keys"))
        return cls(alpha=meta["alpha"], beta=meta["beta"], method=meta["method"], n_keys=meta["n_keys"])


def fit_beta_prior(
    clicks: Any,
    exposures: Any,
    method: str = "moments",
    *,
    max_strength: float | None = None,
) -> BetaPrior:
    """Fit a Beta prior on click rates across the keys of one family.

    Parameters
    ----------
    clicks : array-like of float, shape (n_keys,)
        Clicks per key, ``0 <= clicks <= exposures``.
    exposures : array-like of float, shape (n_keys,)
        Exposures per key. Keys with fewer than 1 exposure carry no information about
        their rate and are ignored.
    method : {"moments", "mle"}, default="moments"
        ``"moments"``: the Beta-Binomial method-of-moments estimator with exposure
        weights, which subtracts the binomial noise from the observed spread of
        per-key CTRs (see Notes). ``"mle"``: maximise the Beta-Binomial likelihood
        with L-BFGS-B, started from the moments estimate.
    max_strength : float or None, default=None
        Cap on ``alpha + beta``; None means the family's total exposures (the prior
        never outweighs all the data it was fitted on).

    Returns
    -------
    prior : BetaPrior
        The fitted prior; ``n_keys`` counts the keys used.

    Raises
    ------
    ValueError
        Empty or mismatched inputs, negative or non-finite counts, clicks above
        exposures, or no key with at least one exposure.

    Warns
    -----
    PriorFitWarning
        When the keys cannot separate between-key variation from binomial noise
        (a single key, or every key with exactly one exposure): the strength is set
        to the cap. Also when the MLE optimiser stops without improving on the
        moments estimate, which is then returned.

    Notes
    -----
    With ``N = sum(n_i)``, ``m = sum(k_i) / N`` and ``S = sum(n_i (k_i/n_i - m)^2)``
    over ``K`` keys, the Beta-Binomial model gives
    ``E[S] = m(1-m) [rho (N - sum(n_i^2)/N) + (1 - rho)(K - 1)]`` with
    ``rho = 1 / (alpha + beta + 1)``; solving for ``rho`` gives the moments estimate,
    ``alpha + beta = 1/rho - 1``, ``alpha = m (alpha + beta)``.

    Degenerate families, both methods:

    - spread no larger than binomial noise (e.g. every key has the same CTR):
      ``rho <= 0``, i.e. no detectable difference between keys, so the strength goes
      to the cap (``max_strength``) and every key smooths to about the mean;
    - no clicks at all (or clicks on every exposure): the mean is taken as
      ``(C + 0.5) / (N + 1)`` so that alpha and beta stay positive, and the
      strength is the cap;
    - the MLE works on ``(logit(mean), log(alpha + beta))``, a smooth
      reparametrisation of ``(log alpha, log beta)`` in which the cap is a plain
      box bound.

    Examples
    --------
    >>> prior = fit_beta_prior([1, 3, 0, 10], [10, 30, 5, 50])
    >>> bool(prior.smooth(1, 1) < 0.5)
    True
    """
    check_choice(method, "method", _METHODS)
    k, n = _validate_counts(clicks, exposures)
    total_n = float(n.sum())
    total_k = float(k.sum())
    if max_strength is None:
        cap = total_n
    else:
        cap = check_float(max_strength, "max_strength", low=_MIN_STRENGTH, low_open=True)
    n_keys = int(k.size)

    if total_k == 0.0 or total_k == total_n:
        mean = (total_k + 0.5) / (total_n + 1.0)
        return _prior(mean, cap, method, n_keys)

    mean = total_k / total_n
    denom = total_n - float(np.dot(n, n)) / total_n - (n_keys - 1)
    # denom is 0 exactly when K == 1 or every n_i == 1; allow for rounding.
    if denom <= 1e-9 * total_n:
        warnings.warn(
            f"The Beta prior strength is not identifiable from {n_keys} key(s) (a single "
            f"key, or every key with one exposure); using the cap alpha + beta = {cap:g}.",
            PriorFitWarning,
            stacklevel=2,
        )
        return _prior(mean, cap, method, n_keys)

    spread = float(np.dot(n, (k / n - mean) ** 2))
    rho = (spread / (mean * (1.0 - mean)) - (n_keys - 1)) / denom
    strength = cap if rho <= 0 else min(max(1.0 / rho - 1.0, _MIN_STRENGTH), cap)
    if method == "moments":
        return _prior(mean, strength, method, n_keys)
    return _fit_mle(k, n, mean, strength, cap, n_keys)


def _prior(mean: float, strength: float, method: str, n_keys: int) -> BetaPrior:
    return BetaPrior(
        alpha=mean * strength, beta=(1.0 - mean) * strength, method=method, n_keys=n_keys
    )


def _fit_mle(
    k: np.ndarray, n: np.ndarray, mean0: float, strength0: float, cap: float, n_keys: int
) -> BetaPrior:
    # Keys with identical (clicks, exposures) contribute identical terms; many
    # families have few distinct pairs, so evaluate each pair once.
    pairs, weights = np.unique(np.column_stack([k, n]), axis=0, return_counts=True)
    kk, nn = pairs[:, 0], pairs[:, 1]
    w = weights / weights.sum()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        u, v = theta
        m = 1.0 / (1.0 + math.exp(-u))
        s = math.exp(v)
        a, b = m * s, (1.0 - m) * s
        loglik = np.dot(w, betaln(kk + a, nn - kk + b)) - betaln(a, b)
        common = digamma(s) - np.dot(w, digamma(nn + s))
        d_a = np.dot(w, digamma(kk + a)) - digamma(a) + common
        d_b = np.dot(w, digamma(nn - kk + b)) - digamma(b) + common
        # Chain rule: da/du = s m (1-m) = -db/du, da/dv = a, db/dv = b.
        grad_u = s * m * (1.0 - m) * (d_a - d_b)
        grad_v = a * d_a + b * d_b
        return -float(loglik), -np.array([grad_u, grad_v])

    log_min, log_cap = math.log(_MIN_STRENGTH), math.log(cap)
    u0 = float(np.clip(math.log(mean0 / (1.0 - mean0)), -_LOGIT_BOUND, _LOGIT_BOUND))
    v0 = float(np.clip(math.log(strength0), log_min, log_cap))
    result = minimize(
        objective,
        np.array([u0, v0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOGIT_BOUND, _LOGIT_BOUND), (log_min, log_cap)],
        options={"maxiter": 500, "ftol": 1e-13, "gtol": 1e-9},
    )
    if not result.success and result.fun > objective(np.array([u0, v0]))[0]:
        warnings.warn(
            f"The Beta-Binomial MLE did not converge ({result.message}); using the "
            "moments estimate instead.",
            PriorFitWarning,
            stacklevel=3,
        )
        return _prior(mean0, strength0, "mle", n_keys)
    u, v = result.x
    mean = 1.0 / (1.0 + math.exp(-u))
    return _prior(mean, math.exp(v), "mle", n_keys)


def _as_float(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric. Got {type(values).__name__} instead.") from exc
    return array


def _validate_counts(clicks: Any, exposures: Any) -> tuple[np.ndarray, np.ndarray]:
    k = _as_float(clicks, "clicks")
    n = _as_float(exposures, "exposures")
    for name, values in (("clicks", k), ("exposures", n)):
        if values.ndim != 1 or values.size == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D array (one entry per key). "
                f"Got shape {values.shape} instead."
            )
    if k.shape != n.shape:
        raise ValueError(
            f"clicks and exposures must have the same length. Got {k.size} and {n.size} instead."
        )
    for name, values in (("clicks", k), ("exposures", n)):
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if bad.size:
            raise ValueError(
                f"{name} must be finite and >= 0. Got {float(values[bad[0]])!r} at key index "
                f"{int(bad[0])} instead."
            )
    over = np.flatnonzero(k > n)
    if over.size:
        i = int(over[0])
        raise ValueError(
            f"clicks must be <= exposures for every key. Got clicks={float(k[i])!r} > "
            f"exposures={float(n[i])!r} at key index {i} instead."
        )
    used = n >= 1.0
    if not used.any():
        raise ValueError(
            "exposures must be >= 1 for at least one key to fit a prior. "
            f"Got a maximum of {float(n.max())!r} instead."
        )
    return k[used], n[used]
