"""``python -m ltr.simulate OUT --users N --items M --days D --seed S [--shards K]``: write a synthetic
world's logs (with ``--shards``, partitioned, simulated one user shard at a time: ltr/simulate/_shards.py)."""
from __future__ import annotations

import sys

from ltr._cli import command, parser
from ltr.simulate._shards import write_sharded_world
from ltr.simulate._world import simulate_world


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 bad parameters, 2 usage error)."""
    cli = parser("ltr.simulate", "Simulate a recommender world's logs.")
    cli.add_argument("out", help="output directory")
    cli.add_argument("--users", type=int, default=2000)
    cli.add_argument("--items", type=int, default=3000)
    cli.add_argument("--days", type=int, default=14)
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--requests-per-user-day", type=float, default=0.5)
    cli.add_argument("--candidates", type=int, default=200, help="candidates per request (before dedup)")
    cli.add_argument("--click-lift", type=float, default=0.0, help="extra relative click lift in treatment")
    cli.add_argument("--aa", action="store_true", help="A/A world: both buckets get the control ranker")
    cli.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    cli.add_argument("--shards", type=int, default=None,
                     help="simulate the users in this many shards, one at a time, and write the world partitioned "
                          "(each shard a part file of every day; no truth.json)")
    args = cli.parse_args(argv)
    params = {"users": args.users, "items": args.items, "days": args.days, "seed": args.seed,
              "requests_per_user_day": args.requests_per_user_day, "candidates_per_request": args.candidates,
              "click_lift": args.click_lift, "aa": args.aa}
    if args.shards is not None:
        if args.format != "parquet":
            cli.error(f"--shards writes partitioned Parquet. Got --format {args.format} instead.")
        written = write_sharded_world(args.out, args.shards, **params)
        counts = ", ".join(f"{k} {v:,d}" for k, v in sorted(written["rows"].items()))
        print(f"wrote {args.out} (partitioned, {args.shards} shards of {min(written['users']):,d}.."
              f"{max(written['users']):,d} users): {counts}")
        return 0
    world = simulate_world(**params)
    world.save(args.out, fmt=args.format)
    rows = world.truth["rows"]
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v:,d}" for k, v in sorted(rows.items())))
    print(f"true CTR by bucket {world.truth['true_ctr_by_bucket']}, planted lift {world.truth['planted_ctr_lift']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
