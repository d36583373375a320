"""Inference for one metric row: the p-value and the interval of the lift come from one test.

Three methods, chosen per row (everything broadcasts over leading axes, so the same code
serves one readout and thousands of vectorised A/A splits):

``delta``
    The Wald test of the difference of the two arm estimates, ``z = (t - c) / sqrt(v_t +
    v_c)`` with their delta-method variances on per-unit sums, gives the two-sided p-value.
    The interval of the lift is the Fieller interval: every ratio ``rho`` that the same test
    does not reject, ``(t - rho c)**2 <= k**2 (v_t + rho**2 v_c)``, minus 1. At ``rho = 1`` this
    is the test of the p-value, so the interval excludes 0 exactly when ``p < alpha``
    (``k = z_{1 - alpha / 2}``). When the control estimate is within ``k`` standard errors of 0
    the set has no upper bound (reported as ``inf``). The Wald test of the difference is kept rather than a test of
    ``log(t / c)`` because it stays calibrated on heavy-tailed units: one heavy user inflates
    both the mean and the variance of its arm, which the difference test absorbs and the
    log-ratio test does not (A/A false-positive rate 0.043 against 0.078 for exposures per
    user on the fixture world, whose skewness is 13).
``exact``
    When an arm has fewer than ``min_events`` events (the metric's numerator count, e.g.
    orders), the normal approximation fails (a zero-variance arm makes a Wald test
    "significant" on 4 orders against 0). The row then uses the exact conditional
    test of two Poisson rates: given the total ``N = x_c + x_t``, ``x_t`` is binomial with
    ``pi = w_t / (w_t + w_c)`` under no effect (``w`` are the arms' denominators: units,
    exposures or clicks). The p-value is twice the smaller binomial tail and the interval of
    the rate ratio comes from the Clopper-Pearson interval of ``pi``: the inversion of the same
    two one-sided tests, so again the interval excludes 0 exactly when ``p < alpha``. It
    treats events as independent, which with so few events mostly means one event per unit.
``sequential``
    Always-valid inference (``sequential=True``): the asymptotic confidence sequence of
    Waudby-Smith et al. (2021, "Time-uniform central limit theory"), the normal-mixture
    boundary of Howard et al. (2021), for the same Wald statistic. With ``n`` units in both
    arms the critical multiplier is ``k(n)**2 = 2 (n rho2 + 1) / (n rho2) log(sqrt(n rho2 + 1) /
    alpha)`` instead of ``z_{1 - alpha / 2}`` and the always-valid p-value is ``min(1,
    sqrt(n rho2 + 1) exp(-z**2 n rho2 / (2 (n rho2 + 1))))``. The tuning ``rho2 = (-2 log alpha +
    log(1 - 2 log alpha)) / tuning_units`` makes the sequence tightest at ``tuning_units`` units
    (GrowthBook's default tuning is 5,000): the interval is valid at every look, however often
    one looks, at the price of being wider than a fixed-horizon interval (``k`` is 3.0 instead
    of 1.96 at the tuning size for alpha = 0.05). Rows with too few events have no always-valid
    test here: they are not tested.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from eval.ab._stats import Floats, _estimate_from_moments
from ltr._validation import check_bool, check_float, check_int

__all__ = ["MIN_EVENTS", "POWER", "SEQUENTIAL_TUNING_UNITS", "Inference", "RowStats", "arm_moments", "infer",
           "interval", "mde", "multiplier"]

#: Fewest events (numerator count) per arm for the normal approximation; fewer: exact test.
MIN_EVENTS = 30
#: Units (both arms) at which the confidence sequence is tightest, by default.
SEQUENTIAL_TUNING_UNITS = 5000
#: Power of the minimum detectable effect.
POWER = 0.8


# Method codes of RowStats.method.
DELTA, EXACT, SEQUENTIAL, UNDEFINED = 0, 1, 2, 3
METHOD_NAMES = ("delta", "exact", "sequential", "undefined")


@dataclass(frozen=True)
class Inference:
    """How every row is tested.

    Parameters
    ----------
    alpha : float, default 0.05
        Two-sided significance level; intervals are at level ``1 - alpha`` before adjustment.
    min_events : int, default 30
        An arm with fewer events than this sends the row to the exact test.
    sequential : bool, default False
        Always-valid confidence sequences instead of fixed-horizon intervals.
    tuning_units : int, default 5000
        Units (both arms) at which the confidence sequence is tightest; fix it before looking.
    """

    alpha: float = 0.05
    min_events: int = MIN_EVENTS
    sequential: bool = False
    tuning_units: int = SEQUENTIAL_TUNING_UNITS

    def checked(self) -> Inference:
        """``self`` after checking every field (raises ValueError/TypeError naming the field)."""
        check_float(self.alpha, "alpha", low=0, high=1, low_open=True, high_open=True)
        check_int(self.min_events, "min_events", minimum=1)
        check_bool(self.sequential, "sequential")
        check_int(self.tuning_units, "tuning_units", minimum=1)
        return self


@dataclass(frozen=True)
class RowStats:
    """What a row's test needs to give its p-value and its interval at any level (arrays)."""

    control: np.ndarray
    treatment: np.ndarray
    var_control: np.ndarray
    var_treatment: np.ndarray
    lift: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    method: np.ndarray
    events: tuple[np.ndarray, np.ndarray]
    weights: tuple[np.ndarray, np.ndarray]
    n_units: np.ndarray


def arm_moments(moments: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Estimate, delta-method variance, event count (sum of numerators) and weight (sum of
    denominators) of arms given by moment arrays (last axis ``MOMENT_NAMES``)."""
    m = np.asarray(moments, dtype=np.float64)
    mean, var = _estimate_from_moments(m)
    return mean, var, m[..., 1], m[..., 2]


def _rho2(alpha: float, tuning_units: int) -> float:
    log_a = np.log(alpha)
    return float((-2.0 * log_a + np.log1p(-2.0 * log_a)) / tuning_units)


def multiplier(alpha: Floats, n_units: Floats, settings: Inference) -> np.ndarray:
    """Critical multiplier of ``se`` at two-sided level ``alpha``: the normal quantile, or the
    confidence-sequence boundary at ``n_units`` when ``settings.sequential``."""
    a = np.asarray(alpha, dtype=np.float64)
    if not settings.sequential:
        return np.asarray(stats.norm.isf(a / 2.0))
    # rho2 stays tuned at the design alpha: an adjusted level only changes the log term.
    nr = np.asarray(n_units, dtype=np.float64) * _rho2(settings.alpha, settings.tuning_units)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(2.0 * (nr + 1.0) / nr * np.log(np.sqrt(nr + 1.0) / a))


def _p_from_z(z: np.ndarray, n_units: np.ndarray, settings: Inference) -> np.ndarray:
    if not settings.sequential:
        return 2.0 * stats.norm.sf(np.abs(z))
    nr = n_units * _rho2(settings.alpha, settings.tuning_units)
    with np.errstate(over="ignore", invalid="ignore"):
        log_p = 0.5 * np.log1p(nr) - z * z * nr / (2.0 * (nr + 1.0))
    return np.minimum(1.0, np.exp(log_p))


def _exact_p(x_c: np.ndarray, x_t: np.ndarray, w_c: np.ndarray, w_t: np.ndarray) -> np.ndarray:
    """Twice the smaller tail of ``x_t ~ Binomial(x_c + x_t, w_t / (w_c + w_t))``."""
    total = x_c + x_t
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = w_t / (w_c + w_t)
        lower = stats.binom.cdf(x_t, total, pi)
        upper = stats.binom.sf(x_t - 1, total, pi)
    return np.where(total > 0, np.minimum(1.0, 2.0 * np.minimum(lower, upper)), np.nan)


def _exact_interval(rs: RowStats, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lift interval from the Clopper-Pearson interval of the conditional binomial."""
    (x_c, x_t), (w_c, w_t) = rs.events, rs.weights
    total = x_c + x_t
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(x_t > 0, stats.beta.ppf(alpha / 2.0, x_t, x_c + 1.0), 0.0)
        hi = np.where(x_c > 0, stats.beta.ppf(1.0 - alpha / 2.0, x_t + 1.0, x_c), 1.0)
        scale = w_c / w_t
        low = lo / (1.0 - lo) * scale - 1.0
        high = np.where(hi < 1.0, hi / (1.0 - hi) * scale - 1.0, np.inf)
    ok = total > 0
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def _fieller_interval(rs: RowStats, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lifts ``rho - 1`` with ``(t - rho c)**2 <= k**2 (v_t + rho**2 v_c)`` and ``rho >= 0``.

    The quadratic ``a rho**2 - 2 b rho + c <= 0`` has ``a = c_hat**2 - k**2 v_c``: when the control
    estimate is more than ``k`` standard errors from 0 (``a > 0``) the set is the interval between
    the roots; otherwise it is unbounded above, ``[r, inf)`` with ``r`` the larger root (the
    smaller one is never positive, as ``b >= 0``), or everything when there is no root. The upper
    bound is then ``inf``: the data cannot bound the lift, yet the set still excludes 0 exactly
    when the test rejects.
    """
    m_c, m_t, v_c, v_t = rs.control, rs.treatment, rs.var_control, rs.var_treatment
    a = m_c * m_c - k * k * v_c
    b = m_t * m_c
    c = m_t * m_t - k * k * v_t
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(disc, 0.0))
        bounded_low, bounded_high = (b - root) / a, (b + root) / a
        larger_root = np.where(a < 0, (b - root) / a, c / (2.0 * b))
    low = np.where(a > 0, bounded_low, np.where(disc >= 0, larger_root, 0.0))
    high = np.where(a > 0, bounded_high, np.inf)
    # The metrics are non-negative, so no ratio is below 0.
    return np.maximum(low, 0.0) - 1.0, high - 1.0


def infer(control: tuple[Floats, Floats, Floats, Floats], treatment: tuple[Floats, Floats, Floats, Floats],
          n_units: Floats, settings: Inference) -> RowStats:
    """Test rows given each arm's ``(estimate, variance, events, weight)``.

    ``n_units`` is the number of units in both arms (for the confidence sequence). Returns the
    :class:`RowStats` of every row: the method (``delta``, ``exact``, ``sequential`` or
    ``undefined``), ``z`` (NaN for the exact test), the p-value (NaN when undefined or, under
    ``sequential``, when the row has too few events) and what :func:`interval` needs.
    """
    m_c, v_c, x_c, w_c = (np.asarray(a, dtype=np.float64) for a in control)
    m_t, v_t, x_t, w_t = (np.asarray(a, dtype=np.float64) for a in treatment)
    n = np.asarray(n_units, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(m_c > 0, m_t / m_c - 1.0, np.nan)
        diff = m_t - m_c
        se = np.sqrt(v_t + v_c)
        z = np.where(se > 0, diff / se, np.where(diff == 0, np.nan, np.sign(diff) * np.inf))
    few = np.minimum(x_c, x_t) < settings.min_events
    normal = DELTA if not settings.sequential else SEQUENTIAL
    method = np.where(few, EXACT, normal)
    exact_p = _exact_p(x_c, x_t, w_c, w_t)
    p = np.where(few, np.nan if settings.sequential else exact_p, _p_from_z(z, n, settings))
    method = np.where(np.isnan(p) & ~(few & settings.sequential), UNDEFINED, method)
    # Far in the tail p underflows to 0; keep the smallest positive double so JSON never says 0.
    p = np.where(p == 0.0, np.finfo(np.float64).tiny, p)
    return RowStats(control=m_c, treatment=m_t, var_control=v_c, var_treatment=v_t, lift=lift,
                    z=np.where(few, np.nan, z), p_value=p, method=method, events=(x_c, x_t), weights=(w_c, w_t),
                    n_units=n)


def interval(rs: RowStats, alpha: Floats, settings: Inference) -> tuple[np.ndarray, np.ndarray]:
    """The lift interval of every row at two-sided level ``alpha`` (the same test as its p-value)."""
    a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), rs.lift.shape)
    low, high = _fieller_interval(rs, multiplier(a, rs.n_units, settings))
    exact_low, exact_high = _exact_interval(rs, a)
    is_exact = rs.method == EXACT
    low = np.where(is_exact, exact_low, low)
    high = np.where(is_exact, exact_high, high)
    undefined = (rs.method == UNDEFINED) | (is_exact & settings.sequential)
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def mde(rs: RowStats, settings: Inference, power: float = POWER) -> np.ndarray:
    """Smallest relative lift detected with probability ``power`` at the observed sample size.

    With ``K = k + z_power`` (``k`` the critical multiplier at ``alpha``: the normal quantile, or
    the confidence-sequence boundary under ``sequential``) and the relative variances ``s_c =
    v_c / c**2``, ``s_t = v_t / c**2`` observed now, the lift ``d`` solves ``d = K sqrt(s_c + (1 +
    d)**2 s_t)``: a treatment that multiplies every unit's metric by ``1 + d`` also multiplies the
    treatment arm's standard error, which a formula with the variances under no effect misses
    (it understates the MDE by 10% at lifts near 15%). Exact rows use the Poisson variances
    ``s = 1 / x``; ``inf`` when no lift is detectable.
    """
    (x_c, x_t) = rs.events
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = (rs.method == EXACT) | ~np.isfinite(rs.var_control / rs.control)
        s_c = np.where(exact, 1.0 / x_c, rs.var_control / rs.control**2)
        s_t = np.where(exact, 1.0 / x_t, rs.var_treatment / rs.control**2)
        k = multiplier(settings.alpha, rs.n_units, settings) + stats.norm.ppf(power)
        k2 = k * k
        room = 1.0 - k2 * s_t
        d = (k2 * s_t + np.sqrt(k2 * k2 * s_t * s_t + room * k2 * (s_c + s_t))) / room
    return np.where(room > 0, d, np.inf)
