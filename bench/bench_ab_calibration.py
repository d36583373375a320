"""Calibration and power of the A/B CTR test in a clustered world.

A/A: ``--splits`` random 50/50 user splits spread over ``--worlds`` independently drawn worlds
of ``--users`` users (lognormal exposures per user, beta-distributed user CTR). For every
split it reports whether the delta-method CTR test of ``eval.ab`` (user-randomised) and a
naive exposure-level two-proportion z-test reject at alpha = 0.05. The splits are vectorised:
an (users x splits) 0/1 assignment matrix times the per-user moment columns gives every
split's sufficient statistics in one product, then the same private functions that
``eval.ab.compare_buckets`` uses turn them into p-values (the first split is also run through
``compare_buckets`` on the exposure-level frame as a cross-check).

Power: the world size needed for 80% power against a planted +3% relative CTR lift is derived
from the delta-method variance of a large pilot world (``--pilot-users``; heavy-tailed
exposures make a small pilot's variance noisy), designed for 85% to leave room for simulation
noise; ``--power-runs`` fresh worlds of that size, half of the users treated with CTR x 1.03,
give the share of runs where the test detects the lift (p < 0.05 and positive).

Exit status 1 when the A/A false-positive rate is outside [0.04, 0.06] or the power is
below 0.8.

Usage: python bench/bench_ab_calibration.py [--splits 5000] [--worlds 5] [--users 20000]
       [--power-runs 400] [--pilot-users 500000] [--power-users N] [--lift 0.03] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.ab import compare_buckets
from eval.ab._stats import (
    _ctr_split_pvalues,
    _diff_test,
    _estimate_from_moments,
    _moment_columns,
    _relative_lift,
)

ALPHA = 0.05
MEAN_CTR = 0.05
CONCENTRATION = 12.0  # beta(a, b) with a + b = 12: strong user heterogeneity in CTR
LOG_MU, LOG_SIGMA = 1.5, 1.2  # lognormal exposures per user: mean ~9.5, heavy right tail


def draw_world(rng: np.random.Generator, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    exposures = np.ceil(rng.lognormal(LOG_MU, LOG_SIGMA, n_users)).astype(np.int64)
    ctr = rng.beta(MEAN_CTR * CONCENTRATION, (1 - MEAN_CTR) * CONCENTRATION, n_users)
    return exposures, ctr


def library_pvalue(clicks: np.ndarray, exposures: np.ndarray, treated: np.ndarray) -> float:
    """CTR p-value of eval.ab.compare_buckets on the exposure-level frame of one split."""
    user = np.repeat(np.arange(exposures.size), exposures)
    within = np.arange(user.size) - np.repeat(np.cumsum(exposures) - exposures, exposures)
    samples = pd.DataFrame(
        {
            "request_id": np.arange(user.size),
            "user_id": user,
            "bucket": np.where(treated[user], "treatment", "control"),
            "click": (within < clicks[user]).astype(np.int8),
            "order": np.zeros(user.size, dtype=np.int8),
            "day": np.zeros(user.size, dtype=np.int64),
        }
    )
    table = compare_buckets(samples, "control", "treatment").table
    return float(table.loc[table["metric"] == "ctr", "p_value"].iloc[0])


def binomial_interval(k: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a rejection rate."""
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def run_aa(args: argparse.Namespace, rng: np.random.Generator) -> float:
    per_world = math.ceil(args.splits / args.worlds)
    delta_all, naive_all = [], []
    print(f"A/A: {args.worlds} worlds x {per_world} splits, {args.users} users each "
          f"(lognormal({LOG_MU}, {LOG_SIGMA}) exposures, beta CTR mean {MEAN_CTR}, "
          f"concentration {CONCENTRATION:g})")
    start = time.perf_counter()
    for w in range(args.worlds):
        exposures, ctr = draw_world(rng, args.users)
        clicks = rng.binomial(exposures, ctr)
        delta_w, naive_w = [], []
        for s0 in range(0, per_world, args.chunk):
            k = min(args.chunk, per_world - s0)
            assign = rng.random((args.users, k)) < 0.5
            d, nv = _ctr_split_pvalues(clicks, exposures, assign)
            if w == 0 and s0 == 0:
                check = library_pvalue(clicks, exposures, assign[:, 0])
                print(f"  cross-check split 0: compare_buckets p={check:.6f}, "
                      f"vectorised p={d[0]:.6f}")
            delta_w.append(d)
            naive_w.append(nv)
        d, nv = np.concatenate(delta_w), np.concatenate(naive_w)
        delta_all.append(d)
        naive_all.append(nv)
        print(f"  world {w}: mean exposures/user {exposures.mean():.2f}, max {exposures.max()}, "
              f"CTR {clicks.sum() / exposures.sum():.4f} | FPR delta {np.mean(d < ALPHA):.4f}  "
              f"naive {np.mean(nv < ALPHA):.4f}")
    elapsed = time.perf_counter() - start
    delta, naive = np.concatenate(delta_all), np.concatenate(naive_all)
    n = delta.size
    k_delta, k_naive = int(np.sum(delta < ALPHA)), int(np.sum(naive < ALPHA))
    lo, hi = binomial_interval(k_delta, n)
    nlo, nhi = binomial_interval(k_naive, n)
    print(f"  {'test':<34}{'FPR at 0.05':>12}{'95% interval':>22}")
    print(f"  {'delta method (user-randomised)':<34}{k_delta / n:>12.4f}"
          f"{f'[{lo:.4f}, {hi:.4f}]':>22}")
    print(f"  {'naive binomial (exposure-level)':<34}{k_naive / n:>12.4f}"
          f"{f'[{nlo:.4f}, {nhi:.4f}]':>22}")
    print(f"  {n} splits in {elapsed:.1f} s")
    return k_delta / n


def required_users(clicks: np.ndarray, exposures: np.ndarray, lift: float,
                   power: float) -> tuple[int, float]:
    """Users (both arms) for `power` against `lift` from the pilot's per-user variance."""
    ratio, var = _estimate_from_moments(
        _moment_columns(clicks, exposures).sum(axis=0)
    )
    per_user_var = var * clicks.size  # variance of the linearised per-user variable
    z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(power)
    n_arm = 2 * per_user_var * z * z / (ratio * ratio * math.log1p(lift) ** 2)
    return int(math.ceil(2 * n_arm / 10_000) * 10_000), float(ratio)


def run_power(args: argparse.Namespace, rng: np.random.Generator) -> float:
    pilot_exposures, pilot_ctr = draw_world(rng, args.pilot_users)
    pilot_clicks = rng.binomial(pilot_exposures, pilot_ctr)
    n_users, _ = required_users(pilot_clicks, pilot_exposures, args.lift, 0.85)
    how = f"sized on a {args.pilot_users}-user pilot world for 85% design power"
    if args.power_users is not None:
        n_users, how = args.power_users, "given by --power-users"
    z = stats.norm.ppf(1 - ALPHA / 2)
    print(f"Power: +{args.lift:.0%} relative CTR lift, {n_users} users per experiment "
          f"({how}), {args.power_runs} experiments")
    start = time.perf_counter()
    detected, lifts, covered = [], [], []
    chunk = max(1, 4_000_000 // n_users)
    for r0 in range(0, args.power_runs, chunk):
        k = min(chunk, args.power_runs - r0)
        exposures = np.ceil(rng.lognormal(LOG_MU, LOG_SIGMA, (n_users, k))).astype(np.int64)
        ctr = rng.beta(MEAN_CTR * CONCENTRATION, (1 - MEAN_CTR) * CONCENTRATION, (n_users, k))
        treated = rng.random((n_users, k)) < 0.5
        clicks = rng.binomial(exposures, np.minimum(ctr * np.where(treated, 1 + args.lift, 1), 1))
        x, y = exposures.astype(np.float64), clicks.astype(np.float64)
        moments = {}
        for arm, mask in (("t", treated), ("c", ~treated)):
            m = mask.astype(np.float64)
            moments[arm] = np.stack(
                [m.sum(0), (y * m).sum(0), (x * m).sum(0), (y * y * m).sum(0),
                 (x * x * m).sum(0), (x * y * m).sum(0)], axis=-1)
        m_t, v_t = _estimate_from_moments(moments["t"])
        m_c, v_c = _estimate_from_moments(moments["c"])
        p = _diff_test(m_c, v_c, m_t, v_t)
        lift, low, high = _relative_lift(m_c, v_c, m_t, v_t, z)
        detected.append((p < ALPHA) & (lift > 0))
        lifts.append(lift)
        covered.append((low < args.lift) & (args.lift < high))
    elapsed = time.perf_counter() - start
    detected_all = np.concatenate(detected)
    lifts_all = np.concatenate(lifts)
    power = float(detected_all.mean())
    lo, hi = binomial_interval(int(detected_all.sum()), detected_all.size)
    print(f"  power {power:.3f} [{lo:.3f}, {hi:.3f}], mean estimated lift "
          f"{lifts_all.mean():+.4f}, CI coverage {np.concatenate(covered).mean():.3f}, "
          f"{elapsed:.1f} s")
    return power


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=5000, help="A/A splits in total (>= 1000)")
    parser.add_argument("--worlds", type=int, default=5, help="worlds the splits are spread over")
    parser.add_argument("--users", type=int, default=20_000, help="users per A/A world")
    parser.add_argument("--chunk", type=int, default=250, help="splits per matrix product")
    parser.add_argument("--power-runs", type=int, default=400)
    parser.add_argument("--power-users", type=int, default=None,
                        help="users per power experiment (default: sized for 85%% power)")
    parser.add_argument("--pilot-users", type=int, default=500_000,
                        help="users of the pilot world that sizes the power experiment")
    parser.add_argument("--lift", type=float, default=0.03, help="planted relative CTR lift")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.splits < 1000:
        parser.error(f"--splits must be >= 1000. Got {args.splits} instead.")
    if min(args.worlds, args.power_runs, args.chunk) < 1 or min(args.users, args.pilot_users) < 100:
        parser.error("--worlds, --chunk and --power-runs must be >= 1 and --users, "
                     "--pilot-users >= 100.")
    rng = np.random.default_rng(args.seed)
    fpr = run_aa(args, rng)
    power = run_power(args, rng)
    ok_fpr = 0.04 <= fpr <= 0.06
    ok_power = power >= 0.8
    print(f"verdict: A/A FPR {fpr:.4f} {'within' if ok_fpr else 'OUTSIDE'} [0.04, 0.06]; "
          f"power {power:.3f} {'>=' if ok_power else '<'} 0.8")
    return 0 if ok_fpr and ok_power else 1


if __name__ == "__main__":
    sys.exit(main())
