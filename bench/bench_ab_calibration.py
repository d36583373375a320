"""Calibration and power of the readout's A/B decisions in a clustered world.

A/A (``--splits`` random 50/50 user splits over ``--worlds`` independently drawn worlds of
``--users`` users: lognormal exposures per user, beta-distributed user CTR, beta-distributed
orders per click): for every split, every one of the seven metrics is tested as the readout
tests it (``eval.ab._selfcheck.split_row_stats``: the same row inference as
``eval.ab.compare_buckets``, vectorised over splits; split 0 is cross-checked against
``compare_buckets`` on the exposure-level frame), and the readout's decision rule
(``eval.ab._decide.decide``: primary metric CTR at alpha, the others Holm-adjusted behind it)
says whether the readout flags anything. Printed: the false-positive rate of each metric, the
rate at which at least one metric has raw p < 0.05 (the old readout's "any flag"), the readout's
family-wise rate, and a naive exposure-level CTR test for contrast.

Sequential monitoring: ``--seq-splits`` A/A splits of a 14-day world (users arrive and return
on random days), each looked at after every day on the cumulative data, as a team that checks
the dashboard daily would. Printed: the share of splits rejected at any look by the
fixed-horizon test and by the always-valid confidence sequence (``--sequential``).

Power: the world size needed for 80% power against a planted +3% relative CTR lift is derived
from the delta-method variance of a large pilot world (``--pilot-users``), designed for 85%;
``--power-runs`` fresh worlds of that size, half of the users treated with CTR x 1.03. Printed:
the share detected by the Wald test at alpha (the readout before this change) and by the
readout's decision (the primary metric is still tested at alpha, so the two are the same runs
and the same numbers), and by the sequential test for comparison.

Exit status 1 unless every per-metric A/A rate is in [0.04, 0.06], the readout's family-wise
rate and the sequential rate are at most 0.05, and the power is at least 0.8. The family-wise
rate of the gated readout is the size of the primary test itself, so for a test calibrated at
exactly alpha it sits at 0.05 up to simulation error: it counts as at most 0.05 when it is not
significantly above (the lower end of its 95% interval is at most 0.05), and both the strict and
the statistical reading are printed. Heavy-tailed worlds differ in how their tails fall, so the
splits are spread over many worlds (20 by default) to measure the rate, not one world's quirks.

Usage: python bench/bench_ab_calibration.py [--splits 20000] [--worlds 20] [--users 20000]
       [--seq-splits 2000] [--seq-users 20000] [--power-runs 400] [--pilot-users 500000]
       [--power-users N] [--lift 0.03] [--seed 0]
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

from eval.ab import Inference, compare_buckets
from eval.ab._decide import decide
from eval.ab._inference import arm_moments, infer
from eval.ab._selfcheck import split_row_stats
from eval.ab._stats import _ctr_split_pvalues, _estimate_from_moments, _moment_columns, wilson_interval
from eval.ab._units import METRICS_BY_UNIT, metric_columns

ALPHA = 0.05
MEAN_CTR = 0.05
CONCENTRATION = 12.0  # beta(a, b) with a + b = 12: strong user heterogeneity in CTR
LOG_MU, LOG_SIGMA = 1.5, 1.2  # lognormal exposures per user: mean ~9.5, heavy right tail
ORDER_A, ORDER_B = 2.0, 8.0  # beta orders per click: mean 0.2
METRICS = [name for name, _, _ in METRICS_BY_UNIT["user"]]
PRIMARY = np.array([name == "ctr" for name in METRICS])


def draw_world(rng: np.random.Generator, n_users: int) -> dict[str, np.ndarray]:
    exposures = np.ceil(rng.lognormal(LOG_MU, LOG_SIGMA, n_users)).astype(np.int64)
    ctr = rng.beta(MEAN_CTR * CONCENTRATION, (1 - MEAN_CTR) * CONCENTRATION, n_users)
    clicks = rng.binomial(exposures, ctr)
    orders = rng.binomial(clicks, rng.beta(ORDER_A, ORDER_B, n_users))
    return {"exposures": exposures, "clicks": clicks, "orders": orders}


def metric_matrix(sums: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [metric_columns(sums, num, den) for _, num, den in METRICS_BY_UNIT["user"]]
    return np.column_stack([y for y, _ in pairs]), np.column_stack([x for _, x in pairs])


def library_pvalues(sums: dict[str, np.ndarray], treated: np.ndarray) -> np.ndarray:
    """p-values of eval.ab.compare_buckets on the exposure-level frame of one split."""
    exposures = sums["exposures"]
    user = np.repeat(np.arange(exposures.size), exposures)
    within = np.arange(user.size) - np.repeat(np.cumsum(exposures) - exposures, exposures)
    samples = pd.DataFrame({
        "request_id": np.arange(user.size), "user_id": user,
        "bucket": np.where(treated[user], "treatment", "control"),
        "click": (within < sums["clicks"][user]).astype(np.int8),
        "order": (within < sums["orders"][user]).astype(np.int8),
        "day": np.zeros(user.size, dtype=np.int64)})
    table = compare_buckets(samples, "control", "treatment", adjust=None).table
    return table.set_index("metric").loc[METRICS, "p_value"].to_numpy()


def rate_line(name: str, k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"  {name:<34}{k / n:>10.4f}{f'[{lo:.4f}, {hi:.4f}]':>22}"


def run_aa(args: argparse.Namespace, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    per_world = math.ceil(args.splits / args.worlds)
    print(f"A/A: {args.worlds} worlds x {per_world} splits, {args.users} users each (lognormal({LOG_MU}, "
          f"{LOG_SIGMA}) exposures, beta CTR mean {MEAN_CTR}, concentration {CONCENTRATION:g}, beta({ORDER_A:g}, "
          f"{ORDER_B:g}) orders per click)")
    start = time.perf_counter()
    p_all, naive_all = [], []
    for w in range(args.worlds):
        sums = draw_world(rng, args.users)
        y, x = metric_matrix(sums)
        for s0 in range(0, per_world, args.chunk):
            assign = rng.random((args.users, min(args.chunk, per_world - s0))) < 0.5
            p = split_row_stats(y, x, assign, Inference()).p_value
            if w == 0 and s0 == 0:
                ref = library_pvalues(sums, assign[:, 0])
                print(f"  cross-check split 0: max |compare_buckets p - vectorised p| = "
                      f"{np.nanmax(np.abs(ref - p[0])):.2e}")
            p_all.append(p)
            naive_all.append(_ctr_split_pvalues(sums["clicks"], sums["exposures"], assign)[1])
    p, naive = np.concatenate(p_all), np.concatenate(naive_all)
    n = p.shape[0]
    hits = np.nan_to_num(p, nan=1.0) < ALPHA
    readout = decide(p, PRIMARY, np.zeros(len(METRICS), int), "holm", ALPHA).significant.any(axis=1)
    print(f"  {'test':<34}{'rate':>10}{'95% interval':>22}")
    for j, name in enumerate(METRICS):
        print(rate_line(f"{name}{' (primary)' if PRIMARY[j] else ''}", int(hits[:, j].sum()), n))
    print(rate_line("any metric at raw p < 0.05", int(hits.any(axis=1).sum()), n))
    print(rate_line("readout flags anything (gated Holm)", int(readout.sum()), n))
    print(rate_line("naive exposure-level CTR test", int((naive < ALPHA).sum()), n))
    print(f"  {n} splits in {time.perf_counter() - start:.1f} s")
    return hits.mean(axis=0), int(readout.sum()), n


def daily_world(rng: np.random.Generator, n_users: int, days: int) -> tuple[np.ndarray, ...]:
    """Per-(user, day) exposures and clicks: users visit on random days (rate beta(1, 2))."""
    visits = rng.random((n_users, days)) < rng.beta(1.0, 2.0, n_users)[:, None]
    exposures = np.where(visits, np.ceil(rng.lognormal(1.0, 1.0, (n_users, days))), 0).astype(np.int64)
    ctr = rng.beta(MEAN_CTR * CONCENTRATION, (1 - MEAN_CTR) * CONCENTRATION, n_users)
    return exposures, rng.binomial(exposures, ctr[:, None])


def run_sequential(args: argparse.Namespace, rng: np.random.Generator) -> tuple[float, float]:
    days = 14
    exposures, clicks = daily_world(rng, args.seq_users, days)
    cum_x, cum_y = np.cumsum(exposures, axis=1).astype(float), np.cumsum(clicks, axis=1).astype(float)
    print(f"Sequential: {args.seq_splits} A/A splits of one {days}-day world of {args.seq_users} users, CTR "
          f"looked at after every day (cumulative); confidence sequence tuned at 5000 units")
    start = time.perf_counter()
    rejected = {False: [], True: []}
    for s0 in range(0, args.seq_splits, args.chunk):
        assign = (rng.random((args.seq_users, min(args.chunk, args.seq_splits - s0))) < 0.5).astype(float)
        any_look = {False: np.zeros(assign.shape[1], bool), True: np.zeros(assign.shape[1], bool)}
        for d in range(days):
            columns = _moment_columns(cum_y[:, d], cum_x[:, d])
            columns[:, 0] = cum_x[:, d] > 0  # units seen so far
            treat = assign.T @ columns
            ctrl = columns.sum(axis=0)[None, :] - treat
            for sequential in (False, True):
                rs = infer(arm_moments(ctrl), arm_moments(treat), ctrl[:, 0] + treat[:, 0],
                           Inference(sequential=sequential))
                any_look[sequential] |= rs.p_value < ALPHA
        for sequential in (False, True):
            rejected[sequential].append(any_look[sequential])
    n = args.seq_splits
    fixed, seq = (int(np.concatenate(rejected[s]).sum()) for s in (False, True))
    print(f"  {'rejected at any of 14 looks':<34}{'rate':>10}{'95% interval':>22}")
    print(rate_line("fixed-horizon test, peeked daily", fixed, n))
    print(rate_line("confidence sequence (--sequential)", seq, n))
    print(f"  {time.perf_counter() - start:.1f} s")
    return fixed / n, seq / n


def required_users(sums: dict[str, np.ndarray], lift: float, power: float) -> int:
    """Users (both arms) for `power` against `lift` from the pilot's per-user variance."""
    ratio, var = _estimate_from_moments(_moment_columns(sums["clicks"], sums["exposures"]).sum(axis=0))
    per_user_var = var * sums["clicks"].size
    z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(power)
    n_arm = 2 * per_user_var * z * z / (ratio * ratio * math.log1p(lift) ** 2)
    return int(math.ceil(2 * n_arm / 10_000) * 10_000)


def run_power(args: argparse.Namespace, rng: np.random.Generator) -> float:
    n_users = args.power_users or required_users(draw_world(rng, args.pilot_users), args.lift, 0.85)
    how = "given by --power-users" if args.power_users else f"sized on a {args.pilot_users}-user pilot for 85%"
    print(f"Power: +{args.lift:.0%} relative CTR lift, {n_users} users per experiment ({how}), "
          f"{args.power_runs} experiments")
    start = time.perf_counter()
    wald, readout, sequential = [], [], []
    for r0 in range(0, args.power_runs, max(1, 4_000_000 // n_users)):
        k = min(max(1, 4_000_000 // n_users), args.power_runs - r0)
        exposures = np.ceil(rng.lognormal(LOG_MU, LOG_SIGMA, (n_users, k)))
        ctr = rng.beta(MEAN_CTR * CONCENTRATION, (1 - MEAN_CTR) * CONCENTRATION, (n_users, k))
        treated = rng.random((n_users, k)) < 0.5
        clicks = rng.binomial(exposures.astype(np.int64), np.minimum(ctr * np.where(treated, 1 + args.lift, 1), 1))
        arms = []
        for mask in (~treated, treated):
            m, y = mask.astype(float), clicks.astype(float)
            arms.append(np.stack([m.sum(0), (y * m).sum(0), (exposures * m).sum(0), (y * y * m).sum(0),
                                  (exposures * exposures * m).sum(0), (exposures * y * m).sum(0)], axis=-1))
        for settings, out in ((Inference(), readout), (Inference(sequential=True), sequential)):
            rs = infer(arm_moments(arms[0]), arm_moments(arms[1]), float(n_users), settings)
            decision = decide(rs.p_value[:, None], np.array([True]), np.array([0]), "holm", ALPHA)
            out.append(decision.significant[:, 0] & (rs.treatment > rs.control))
        (m_c, v_c), (m_t, v_t) = _estimate_from_moments(arms[0]), _estimate_from_moments(arms[1])
        z = (m_t - m_c) / np.sqrt(v_c + v_t)
        wald.append((2 * stats.norm.sf(np.abs(z)) < ALPHA) & (z > 0))
    print(f"  {'detected':<34}{'rate':>10}{'95% interval':>22}")
    for name, hits in (("Wald test at alpha (before)", wald), ("readout decision (now)", readout),
                       ("sequential readout decision", sequential)):
        h = np.concatenate(hits)
        print(rate_line(name, int(h.sum()), h.size))
    print(f"  {time.perf_counter() - start:.1f} s")
    return float(np.concatenate(readout).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=20_000, help="A/A splits in total (>= 1000)")
    parser.add_argument("--worlds", type=int, default=20, help="worlds the splits are spread over")
    parser.add_argument("--users", type=int, default=20_000, help="users per A/A world")
    parser.add_argument("--seq-splits", type=int, default=2000, help="A/A splits of the 14-day world (>= 1000)")
    parser.add_argument("--seq-users", type=int, default=20_000, help="users of the 14-day world")
    parser.add_argument("--chunk", type=int, default=250, help="splits per matrix product")
    parser.add_argument("--power-runs", type=int, default=400)
    parser.add_argument("--power-users", type=int, default=None,
                        help="users per power experiment (default: sized for 85%% power)")
    parser.add_argument("--pilot-users", type=int, default=500_000,
                        help="users of the pilot world that sizes the power experiment")
    parser.add_argument("--lift", type=float, default=0.03, help="planted relative CTR lift")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.splits, args.seq_splits) < 1000:
        parser.error(f"--splits and --seq-splits must be >= 1000. Got {args.splits}, {args.seq_splits} instead.")
    if min(args.worlds, args.power_runs, args.chunk) < 1 or min(args.users, args.seq_users, args.pilot_users) < 100:
        parser.error("--worlds, --chunk and --power-runs must be >= 1 and the user counts >= 100.")
    rng = np.random.default_rng(args.seed)
    fpr, family_hits, n_splits = run_aa(args, rng)
    family = family_hits / n_splits
    family_low = float(wilson_interval(family_hits, n_splits)[0])
    peeked, sequential = run_sequential(args, rng)
    power = run_power(args, rng)
    ok = {"per-metric A/A rates in [0.04, 0.06]": bool(np.all((fpr >= 0.04) & (fpr <= 0.06))),
          f"readout family-wise rate <= 0.05 (strictly: {'yes' if family <= 0.05 else 'no'}; 95% lower bound "
          f"{family_low:.4f})": family_low <= 0.05,
          "sequential rate under 14 daily looks <= 0.05": sequential <= 0.05,
          "power >= 0.8": power >= 0.8}
    print(f"verdict: per-metric A/A rates {fpr.min():.4f} .. {fpr.max():.4f}; readout family-wise {family:.4f}; "
          f"daily peeking fixed {peeked:.4f} vs sequential {sequential:.4f}; power {power:.3f}")
    for name, good in ok.items():
        print(f"  {'ok  ' if good else 'FAIL'} {name}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
