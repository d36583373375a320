"""CUPED: variance reduction with each unit's same metric in a pre-period as the covariate."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["cuped_arms"]


def _linearised(y: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Ratio of sums and its per-unit linearisation ``(y - R x) / mean(x)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = y.sum() / x.sum()
        return float(ratio), (y - ratio * x) / x.mean()


def cuped_arms(
    arms: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[list[float], list[float]]:
    """CUPED-adjusted estimates and variances of two arms, theta pooled across them.

    Each arm is ``(y, x, y_pre, x_pre)``. The experiment ratio ``R_a`` and its pre-period
    counterpart ``P_a`` are linearised to ``L`` and ``L_pre``; ``theta = sum L L_pre /
    sum L_pre**2`` over both arms (both have mean 0 in each arm), the estimate is
    ``R_a - theta (P_a - P_pooled)`` and its variance ``mean((L - theta L_pre)**2) / n_a``.
    """
    lin = [_linearised(y, x) for y, x, _, _ in arms]
    pre_x_total = [xp.sum() for _, _, _, xp in arms]
    if min(pre_x_total) > 0:
        pre = [_linearised(yp, xp) for _, _, yp, xp in arms]
        cross = sum(float(np.dot(lin_pre, lin_y)) for (_, lin_y), (_, lin_pre) in zip(lin, pre, strict=True))
        denom = sum(float(np.dot(lp, lp)) for _, lp in pre)
        theta = cross / denom if denom > 0 and np.isfinite(cross) else 0.0
        pooled = sum(yp.sum() for _, _, yp, _ in arms) / sum(pre_x_total)
    else:
        # No pre-period denominator in an arm: nothing to adjust with.
        pre = [(0.0, np.zeros_like(lin_y)) for _, lin_y in lin]
        theta, pooled = 0.0, 0.0
    est, var = [], []
    for (ratio, lin_y), (pre_ratio, lin_pre) in zip(lin, pre, strict=True):
        est.append(ratio - theta * (pre_ratio - pooled))
        with np.errstate(invalid="ignore"):
            var.append(float(np.mean((lin_y - theta * lin_pre) ** 2)) / lin_y.size)
    return est, var
