"""``python -m ltr.simulate OUT --users N --items M --days D --seed S``: write a synthetic world's logs."""
from __future__ import annotations

import argparse
import sys

from ltr.simulate._world import simulate_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ltr.simulate", description="Simulate a recommender world's logs.")
    parser.add_argument("out", help="output directory")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--requests-per-user-day", type=float, default=0.5)
    parser.add_argument("--candidates", type=int, default=200, help="candidates per request (before dedup)")
    parser.add_argument("--click-lift", type=float, default=0.0, help="extra relative click lift in treatment")
    parser.add_argument("--aa", action="store_true", help="A/A world: both buckets get the control ranker")
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    args = parser.parse_args(argv)
    try:
        world = simulate_world(users=args.users, items=args.items, days=args.days, seed=args.seed,
                               requests_per_user_day=args.requests_per_user_day,
                               candidates_per_request=args.candidates, click_lift=args.click_lift, aa=args.aa)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    world.save(args.out, fmt=args.format)
    rows = world.truth["rows"]
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v:,d}" for k, v in sorted(rows.items())))
    print(f"true CTR by bucket {world.truth['true_ctr_by_bucket']}, planted lift {world.truth['planted_ctr_lift']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
