"""Private statistics behind :mod:`eval.ab`.

Everything here works on numpy arrays and broadcasts, so the same code serves one comparison
(scalars) and thousands of vectorised A/A splits (arrays) in ``bench/bench_ab_calibration.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

#: A scalar estimate or an array of them (one per simulated split); everything here broadcasts.
Floats = float | np.ndarray

# Column order of the per-arm moment vectors returned by `_moments`.
MOMENT_NAMES = ("n", "sum_y", "sum_x", "sum_yy", "sum_xx", "sum_xy")


def _moment_columns(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per-unit columns whose column sums are the moments ``MOMENT_NAMES`` (shape (n, 6))."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    return np.column_stack([np.ones_like(y), y, x, y * y, x * x, x * y])


def _moments(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Moments ``MOMENT_NAMES`` of one arm's per-unit numerators ``y`` and denominators ``x``."""
    return _moment_columns(y, x).sum(axis=0)


def _ratio_estimate(
    n: np.ndarray,
    sum_y: np.ndarray,
    sum_x: np.ndarray,
    sum_yy: np.ndarray,
    sum_xx: np.ndarray,
    sum_xy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Ratio of sums ``sum_y / sum_x`` and its delta-method variance.

    With ``R = sum_y / sum_x`` and ``L_i = (y_i - R x_i) / mean(x)`` (the linearised per-unit
    variable, whose mean is exactly 0), ``Var(R) ~= mean(L_i ** 2) / n``. Plug-in (ddof=0)
    moments are used: with ``x_i = 1`` this is the variance of a mean, and with one Bernoulli
    ``y_i`` per unit it is the textbook ``p (1 - p) / n``. A mean metric is the ratio with
    ``x_i = 1``. Zero denominators give NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.divide(sum_y, sum_x)
        mean_x = np.divide(sum_x, n)
        # Expanded form so the same function serves sufficient statistics from split sums.
        resid_sq = (sum_yy - 2.0 * ratio * sum_xy + ratio * ratio * sum_xx) / n
        # Cancellation can leave a tiny negative number where the true value is 0.
        resid_sq = np.maximum(resid_sq, 0.0)
        var = resid_sq / (mean_x * mean_x * n)
    return ratio, var


def _estimate_from_moments(moments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_ratio_estimate` on a moment array whose last axis follows ``MOMENT_NAMES``."""
    m = np.asarray(moments, dtype=np.float64)
    return _ratio_estimate(m[..., 0], m[..., 1], m[..., 2], m[..., 3], m[..., 4], m[..., 5])


def _diff_test(m_c: Floats, v_c: Floats, m_t: Floats, v_t: Floats) -> np.ndarray:
    """Two-sided Wald p-value of ``m_t - m_c`` with unpooled variances (NaN when se is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.asarray(v_c, dtype=np.float64) + v_t)
        z = np.where(se > 0, (np.asarray(m_t, dtype=np.float64) - m_c) / se, np.nan)
    return 2.0 * stats.norm.sf(np.abs(z))


def _on_family(p_values: np.ndarray, adjust_sorted: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Adjusted p-values along the last axis (each row of a batch is one family).

    NaN entries are not part of the family and stay NaN. ``adjust_sorted(q, m)`` maps the
    ascending p-values ``q`` of each row (NaN entries sorted last) and the family sizes ``m``
    (one per row) to their adjusted values.
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.reshape(-1, p.shape[-1]) if p.ndim else p.reshape(1, 1)
    order = np.argsort(flat, axis=-1, kind="stable")  # NaN sorts last
    q = np.take_along_axis(flat, order, axis=-1)
    m = np.count_nonzero(~np.isnan(flat), axis=-1)[:, None]
    adjusted = adjust_sorted(q, m)
    out = np.empty_like(flat)
    np.put_along_axis(out, order, adjusted, axis=-1)
    out[np.isnan(flat)] = np.nan
    return out.reshape(p.shape)


def _ctr_split_pvalues(
    clicks: np.ndarray, exposures: np.ndarray, assign: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """CTR p-values of treatment vs control for each column of a 0/1 assignment matrix.

    ``clicks`` and ``exposures`` hold one value per unit; ``assign`` has one row per unit
    and one column per split (1 = treatment). Returns the delta-method p-values on per-unit
    sums (what :func:`eval.ab.compare_buckets` reports) and the naive exposure-level
    two-proportion p-values, which ignore that exposures cluster in units; the A/A tests and
    ``bench/bench_ab_calibration.py`` show that the naive test's false positive rate is
    inflated.
    """
    cols = _moment_columns(clicks, exposures)
    total = cols.sum(axis=0)
    treat = np.asarray(assign, dtype=np.float64).T @ cols
    ctrl = total - treat
    m_t, v_t = _estimate_from_moments(treat)
    m_c, v_c = _estimate_from_moments(ctrl)
    delta = _diff_test(m_c, v_c, m_t, v_t)
    pooled = total[1] / total[2]
    se_naive = np.sqrt(pooled * (1 - pooled) * (1 / treat[:, 2] + 1 / ctrl[:, 2]))
    naive = 2 * stats.norm.sf(np.abs(m_t - m_c) / se_naive)
    return delta, naive


def _holm_sorted(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    rank = np.arange(q.shape[-1])
    with np.errstate(invalid="ignore"):
        scaled = np.minimum(1.0, (m - rank) * q)
    # NaN entries sit after the family: they must not break the running maximum.
    return np.fmax.accumulate(np.where(np.isnan(q), -np.inf, scaled), axis=-1)


def _benjamini_hochberg_sorted(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    rank = np.arange(1, q.shape[-1] + 1)
    adj = np.where(np.isnan(q), np.inf, q * m / rank)
    return np.minimum(1.0, np.minimum.accumulate(adj[..., ::-1], axis=-1)[..., ::-1])


def _holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values along the last axis; NaN entries are not part of the family."""
    return _on_family(p_values, _holm_sorted)


def _benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values along the last axis; NaN entries are not part
    of the family."""
    return _on_family(p_values, _benjamini_hochberg_sorted)


def _adjusted(p_values: np.ndarray, adjust: str | None) -> np.ndarray:
    """p-values adjusted along the last axis by ``"holm"`` or ``"bh"``; a copy when ``adjust`` is None."""
    if adjust == "holm":
        return _holm(p_values)
    if adjust == "bh":
        return _benjamini_hochberg(p_values)
    return np.array(p_values, dtype=np.float64)


def _chi2_goodness_of_fit(observed: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Pearson chi-square statistic and p-value of counts against expected proportions."""
    obs = np.asarray(observed, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    expected = obs.sum() * w / w.sum()
    chi2 = float(np.sum((obs - expected) ** 2 / expected))
    p_value = float(stats.chi2.sf(chi2, df=obs.size - 1))
    return chi2, p_value


def wilson_interval(k: Floats, n: Floats, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``k / n`` at ``level``."""
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.maximum(centre - half, 0.0), np.minimum(centre + half, 1.0)
