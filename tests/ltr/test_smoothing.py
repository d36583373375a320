"""Tests for ltr.smoothing: Beta prior fitting (moments, MLE) and smoothing."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import betabinom

from ltr.features._smoothing import BetaPrior, PriorFitWarning, fit_beta_prior

METHODS = ["moments", "mle"]


def _simulate(seed: int, alpha: float, beta: float, n_keys: int = 4000):
    rng = np.random.default_rng(seed)
    exposures = rng.integers(5, 200, n_keys)
    rates = rng.beta(alpha, beta, n_keys)
    clicks = rng.binomial(exposures, rates)
    return clicks, exposures


# ----------------------------------------------------------------------------- references
def _ref_moments(clicks, exposures) -> tuple[float, float]:
    """Beta-Binomial moment estimator, written key by key."""
    pairs = [(float(k), float(n)) for k, n in zip(clicks, exposures, strict=True) if n >= 1]
    total_n = sum(n for _, n in pairs)
    mean = sum(k for k, _ in pairs) / total_n
    spread = 0.0
    sum_sq = 0.0
    for k, n in pairs:
        spread += n * (k / n - mean) ** 2
        sum_sq += n * n
    n_keys = len(pairs)
    # E[spread] = m(1-m) [rho (N - sum n^2 / N) + (1 - rho)(K - 1)]
    rho = (spread / (mean * (1 - mean)) - (n_keys - 1)) / (total_n - sum_sq / total_n - (n_keys - 1))
    strength = 1 / rho - 1
    return mean * strength, (1 - mean) * strength


def _ref_mle(clicks, exposures, start: tuple[float, float]) -> tuple[float, float, float]:
    """Nelder-Mead on the summed scipy betabinom log-pmf over (log alpha, log beta)."""
    clicks = np.asarray(clicks)
    exposures = np.asarray(exposures)

    def nll(theta):
        a, b = np.exp(theta)
        return -float(np.sum(betabinom.logpmf(clicks, exposures, a, b)))

    res = minimize(
        nll, np.log(start), method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-9, "maxiter": 4000}
    )
    a, b = np.exp(res.x)
    return float(a), float(b), -res.fun


def _loglik(clicks, exposures, a, b) -> float:
    return float(np.sum(betabinom.logpmf(clicks, exposures, a, b)))


# --------------------------------------------------------------------------- recovery
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("alpha", "beta"), [(2.0, 48.0), (0.5, 10.0), (5.0, 20.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_simulated_prior(method, alpha, beta, seed):
    # Tolerance: 4000 keys with 5-200 exposures; over 30 seeds the worst relative
    # error seen was 10% for alpha/beta and 5% for the mean (both methods).
    clicks, exposures = _simulate(seed, alpha, beta)
    prior = fit_beta_prior(clicks, exposures, method)
    assert prior.method == method and prior.n_keys == clicks.size
    assert prior.alpha == pytest.approx(alpha, rel=0.15)
    assert prior.beta == pytest.approx(beta, rel=0.15)
    assert prior.mean == pytest.approx(alpha / (alpha + beta), rel=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moments_match_keywise_reference(seed):
    clicks, exposures = _simulate(seed, 1.5, 30.0, n_keys=300)
    exposures[:10] = 0  # ignored keys
    clicks[:10] = 0
    prior = fit_beta_prior(clicks, exposures, "moments")
    a, b = _ref_moments(clicks, exposures)
    assert prior.alpha == pytest.approx(a, rel=1e-10)
    assert prior.beta == pytest.approx(b, rel=1e-10)
    assert prior.n_keys == 290


@pytest.mark.parametrize("seed", [0, 1])
def test_mle_matches_scipy_betabinom_reference(seed):
    clicks, exposures = _simulate(seed, 1.0, 20.0, n_keys=400)
    prior = fit_beta_prior(clicks, exposures, "mle")
    a, b, ref_ll = _ref_mle(clicks, exposures, start=(3.0, 3.0))
    ours_ll = _loglik(clicks, exposures, prior.alpha, prior.beta)
    assert ours_ll >= ref_ll - 1e-6
    assert prior.alpha == pytest.approx(a, rel=2e-3)
    assert prior.beta == pytest.approx(b, rel=2e-3)
    # The MLE is at least as likely as the moments estimate.
    moments = fit_beta_prior(clicks, exposures, "moments")
    assert ours_ll >= _loglik(clicks, exposures, moments.alpha, moments.beta) - 1e-9


def test_hand_computed_moments():
    # Keys (1/4, 3/4): N = 8, m = 0.5, S = 4 * 0.0625 * 2 = 0.5, S / m(1-m) = 2,
    # sum n^2 / N = 4, rho = (2 - 1) / (8 - 4 - 1) = 1/3, alpha + beta = 2.
    prior = fit_beta_prior([1, 3], [4, 4], "moments")
    assert prior.alpha == pytest.approx(1.0)
    assert prior.beta == pytest.approx(1.0)


# ------------------------------------------------------------------------- smoothing
@pytest.mark.parametrize("method", METHODS)
def test_one_click_in_one_exposure_is_not_ctr_one(method):
    clicks, exposures = _simulate(3, 2.0, 48.0, n_keys=1000)
    prior = fit_beta_prior(clicks, exposures, method)
    smoothed = prior.smooth(1, 1)
    assert smoothed < 0.1
    assert smoothed == pytest.approx((1 + prior.alpha) / (1 + prior.alpha + prior.beta))
    assert prior.smooth(0, 0) == pytest.approx(prior.mean)


def test_smoothing_is_monotone_and_shrinks_less_with_more_data():
    prior = BetaPrior(alpha=2.0, beta=38.0, method="manual", n_keys=0)
    clicks = np.arange(0, 101)
    rates = prior.smooth(clicks, 100)
    assert np.all(np.diff(rates) > 0)
    assert np.all((rates > 0) & (rates < 1))
    raw = 0.3
    exposures = np.array([1, 10, 100, 1000, 10000])
    smoothed = prior.smooth(raw * exposures, exposures)
    assert np.all(np.diff(np.abs(smoothed - raw)) < 0)
    assert smoothed[0] == pytest.approx((0.3 + 2) / (1 + 40))


def test_smooth_broadcasts_and_validates():
    prior = BetaPrior(1.0, 9.0, "manual", 0)
    out = prior.smooth(np.array([[0], [1]]), np.array([0, 10, 100]))
    assert out.shape == (2, 3)
    with pytest.raises(ValueError, match=r"clicks must be finite and >= 0. Got -1.0 at index \(1,\)"):
        prior.smooth([0, -1], [1, 1])
    with pytest.raises(ValueError, match=r"exposures must be finite and >= 0. Got nan"):
        prior.smooth([0], [np.nan])


# ----------------------------------------------------------------------- degenerate data
@pytest.mark.parametrize("method", METHODS)
def test_identical_ctr_hits_the_cap(method):
    exposures = np.array([10, 20, 50, 100, 200, 500] * 5)
    clicks = exposures // 10
    prior = fit_beta_prior(clicks, exposures, method)
    assert prior.strength == pytest.approx(exposures.sum(), rel=1e-6)
    # At a finite strength the Beta-Binomial MLE of the mean is 0.1000909 here (checked
    # with scipy.stats.betabinom and a bounded scalar search), not exactly 0.1.
    assert prior.mean == pytest.approx(0.1, rel=1e-6 if method == "moments" else 1e-3)
    capped = fit_beta_prior(clicks, exposures, method, max_strength=1000.0)
    assert capped.strength == pytest.approx(1000.0, rel=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_no_clicks_gives_positive_alpha_near_zero_mean(method):
    exposures = np.array([5, 50, 500, 3])
    prior = fit_beta_prior(np.zeros(4), exposures, method)
    assert prior.alpha > 0 and prior.beta > 0
    assert prior.mean == pytest.approx(0.5 / (exposures.sum() + 1))
    assert prior.strength == pytest.approx(exposures.sum())
    assert prior.smooth(0, 10) < 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_all_clicked_gives_positive_beta(method):
    prior = fit_beta_prior([3, 7], [3, 7], method)
    assert prior.beta > 0
    assert prior.mean == pytest.approx(10.5 / 11)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("clicks", "exposures"),
    [([3], [10]), ([0, 1, 1, 0, 1], [1, 1, 1, 1, 1])],
    ids=["single-key", "all-single-exposures"],
)
def test_unidentifiable_strength_warns_and_uses_cap(method, clicks, exposures):
    with pytest.warns(PriorFitWarning, match="not identifiable"):
        prior = fit_beta_prior(clicks, exposures, method, max_strength=50.0)
    assert prior.strength == pytest.approx(50.0)
    assert prior.mean == pytest.approx(sum(clicks) / sum(exposures))


@pytest.mark.parametrize("method", METHODS)
def test_overdispersed_beyond_beta_is_clipped_positive(method):
    # Every key is all-or-nothing with many exposures: rho >= 1, strength -> tiny.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prior = fit_beta_prior([0, 100, 0, 100], [100, 100, 100, 100], method)
    assert 0 < prior.strength < 1e-2
    assert prior.mean == pytest.approx(0.5, abs=1e-6)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("clicks", "exposures", "match"),
    [
        ([], [], r"clicks must be a non-empty 1-D array \(one entry per key\). Got shape \(0,\) instead."),
        ([[1, 2]], [[3, 4]], r"clicks must be a non-empty 1-D array .* Got shape \(1, 2\)"),
        ([1, 2], [3], "clicks and exposures must have the same length. Got 2 and 1 instead."),
        ([1, -1], [3, 3], r"clicks must be finite and >= 0. Got -1.0 at key index 1"),
        ([1, np.nan], [3, 3], r"clicks must be finite and >= 0. Got nan at key index 1"),
        ([1, 5], [3, 4], r"clicks must be <= exposures for every key. Got clicks=5.0 > exposures=4.0 at key index 1"),
        ([0, 0], [0, 0.5], r"exposures must be >= 1 for at least one key"),
    ],
)
def test_bad_counts(clicks, exposures, match):
    with pytest.raises(ValueError, match=match):
        fit_beta_prior(clicks, exposures)


def test_bad_method_and_cap():
    with pytest.raises(ValueError, match=r"method must be one of \['mle', 'moments'\]. Got 'em' instead."):
        fit_beta_prior([1], [2], "em")
    with pytest.raises(ValueError, match=r"max_strength must be a float in \(1e-06, inf\). Got -1.0 instead."):
        fit_beta_prior([1, 2], [5, 5], max_strength=-1.0)


# ----------------------------------------------------------------------- serialisation
def test_state_json_round_trip_and_frozen():
    prior = fit_beta_prior(*_simulate(4, 2.0, 30.0, n_keys=500), method="mle")
    meta, arrays = prior.to_state()
    assert arrays == {}
    restored = BetaPrior.from_state(json.loads(json.dumps(meta)), arrays)
    assert restored == prior
    with pytest.raises(dataclasses.FrozenInstanceError):
        prior.alpha = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, r"alpha must be a float in \(0.0, inf\). Got 0.0 instead."),
        ({"beta": math.inf}, r"beta must be a float in \(0.0, inf\). Got inf instead."),
        ({"n_keys": -1}, r"n_keys must be an int in \[0, inf\). Got -1 instead."),
    ],
)
def test_beta_prior_validation(kwargs, match):
    params = {"alpha": 1.0, "beta": 1.0, "method": "moments", "n_keys": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        BetaPrior(**params)


def test_from_state_rejects_other_format():
    with pytest.raises(ValueError, match=r"state must have format 'ltr.BetaPrior' version 1"):
        BetaPrior.from_state({"format": "x", "version": 1}, {})
