"""``python -m ltr.logs validate LOGS``: check a log directory and print its join report."""
from __future__ import annotations

import argparse
import sys

from ltr.logs._contract import LogValidationError, read_logs
from ltr.logs._funnel import bucket_funnel
from ltr.logs._join import join_samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ltr.logs", description="Log contract tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    val = sub.add_parser("validate", help="check a log directory against the contract and print the join report")
    val.add_argument("logs", help="log directory")
    val.add_argument("--tz", default="UTC", help="time zone for calendar days (default UTC)")
    val.add_argument("--attribution-window-days", type=float, default=7.0,
                     help="orders without request_id are attributed to the user's latest click on the item within this window")
    args = parser.parse_args(argv)

    try:
        logs = read_logs(args.logs, tz=args.tz)
        result = join_samples(logs, attribution_window_days=args.attribution_window_days)
    except (LogValidationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"logs OK: {args.logs}")
    for name, frame in logs.tables().items():
        print(f"  {name:<11} {len(frame):>10,d} rows")
    print()
    print(result.report.to_text())
    print()
    print("Funnel per bucket")
    print(bucket_funnel(logs, result.samples).to_string(float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
