"""Time ltr.metrics.auc / gauc (re-exported by eval.metrics) against scikit-learn and a pandas group-rank GAUC.

    .venv/bin/python bench/bench_metrics.py [--rows 10000000 --users 200000 --repeat 1]

Goals (not asserted): auc on 10M rows <= 1.0 s, gauc on 10M rows / 200k users <= 2 s,
on the reference machine where sklearn's roc_auc_score takes about 3.3 s.
Scores are float64 rounded to 6 decimals (many ties, not float32-exact, so gauc takes its
general path); a float32 copy shows the fast key path. Each result is checked against
the reference and the largest absolute difference is printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ltr.metrics import auc, gauc


def gauc_pandas(y: np.ndarray, s: np.ndarray, g: np.ndarray) -> float:
    """Exposure-weighted GAUC from per-group average ranks (Mann-Whitney), in pandas."""
    frame = pd.DataFrame({"g": g, "y": y.astype(np.int64), "s": s})
    frame["r"] = frame.groupby("g")["s"].rank(method="average")
    frame["ry"] = frame["r"] * frame["y"]
    agg = frame.groupby("g").agg(n=("y", "size"), pos=("y", "sum"), rank_sum=("ry", "sum"))
    neg = agg["n"] - agg["pos"]
    ok = (agg["pos"] > 0) & (neg > 0)
    a, neg = agg[ok], neg[ok]
    group_auc = (a["rank_sum"] - a["pos"] * (a["pos"] + 1) / 2) / (a["pos"] * neg)
    return float((group_auc * a["n"]).sum() / a["n"].sum())


def best_time(func: Callable[[], float], repeat: int) -> tuple[float, float]:
    times, value = [], float("nan")
    for _ in range(repeat):
        start = time.perf_counter()
        value = func()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: rows / 50")
    parser.add_argument("--repeat", type=int, default=1, help="report the best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.rows < 2:
        parser.error(f"--rows must be >= 2. Got {args.rows} instead.")
    users = args.users or max(args.rows // 50, 1)

    rng = np.random.default_rng(args.seed)
    g = rng.integers(0, users, args.rows)
    user_bias = rng.normal(0.0, 0.5, users)[g]
    s = np.round(rng.random(args.rows), 6)
    y = rng.random(args.rows) < 1.0 / (1.0 + np.exp(-(-2.5 + 1.5 * s + user_bias)))
    s32 = s.astype(np.float32)

    rows = []
    ours, v_ours = best_time(lambda: auc(y, s), args.repeat)
    ref, v_ref = best_time(lambda: roc_auc_score(y, s), args.repeat)
    rows.append(("auc float64", "sklearn roc_auc_score", ours, ref, abs(v_ours - v_ref), v_ours))
    ours32, v32 = best_time(lambda: auc(y, s32), args.repeat)
    rows.append(("auc float32", "(same reference)", ours32, ref, abs(v32 - roc_auc_score(y, s32)), v32))

    ours, v_ours = best_time(lambda: gauc(y, s, g).value, args.repeat)
    ref, v_ref = best_time(lambda: gauc_pandas(y, s, g), args.repeat)
    rows.append(("gauc float64", "pandas groupby-rank", ours, ref, abs(v_ours - v_ref), v_ours))
    ours32, v32 = best_time(lambda: gauc(y, s32, g).value, args.repeat)
    rows.append(("gauc float32", "(same reference)", ours32, ref, abs(v32 - gauc_pandas(y, s32, g)), v32))

    print(f"rows={args.rows:,d} users={users:,d} positives={int(y.sum()):,d} repeat={args.repeat}")
    print(f"{'metric':<13} {'reference':<22} {'ours s':>7} {'ref s':>7} {'speed-up':>8} {'|diff|':>9} {'value':>9}")
    for name, ref_name, t_ours, t_ref, diff, value in rows:
        print(f"{name:<13} {ref_name:<22} {t_ours:>7.3f} {t_ref:>7.3f} {t_ref / t_ours:>7.1f}x "
              f"{diff:>9.1e} {value:>9.6f}")
    worst = max(r[4] for r in rows)
    print("check: all equal within 1e-9" if worst <= 1e-9 else f"check: MISMATCH, largest |diff| = {worst:.3e}")


if __name__ == "__main__":
    main()
