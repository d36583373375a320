"""Time the world simulator at about 1M exposures (goal: under a minute on 2 cores).

    .venv/bin/python bench/bench_simulate.py [--users 50000 --items 50000 --days 14]
"""
from __future__ import annotations

import argparse
import resource
import time

from ltr.simulate import simulate_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--requests-per-user-day", type=float, default=0.15)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    world = simulate_world(users=args.users, items=args.items, days=args.days, seed=args.seed,
                           requests_per_user_day=args.requests_per_user_day, candidates_per_request=args.candidates)
    seconds = time.perf_counter() - start
    rows = world.truth["rows"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'exposures':>10} {'candidates':>11} {'requests':>9} {'seconds':>8} {'exposures/s':>12} {'peak MiB':>9}")
    print(f"{rows['exposures']:>10,d} {rows['candidates']:>11,d} {rows['requests']:>9,d} {seconds:>8.1f} "
          f"{rows['exposures'] / seconds:>12,.0f} {peak:>9,.0f}")


if __name__ == "__main__":
    main()
