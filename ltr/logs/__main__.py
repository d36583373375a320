"""``python -m ltr.logs validate LOGS``: check a log directory and print its join report."""
from __future__ import annotations

import sys

from ltr._cli import add_tz, command, parser
from ltr.logs._funnel import bucket_funnel
from ltr.logs._join import join_samples
from ltr.logs._read import read_logs


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 bad logs, 2 usage error)."""
    cli = parser("ltr.logs", "Log contract tools.")
    sub = cli.add_subparsers(dest="command", required=True)
    val = sub.add_parser("validate", help="check a log directory against the contract and print the join report")
    val.add_argument("logs", help="log directory")
    add_tz(val)
    val.add_argument("--attribution-window-days", type=float, default=7.0,
                     help="orders without request_id are attributed to the user's latest click on the item "
                          "within this window")
    args = cli.parse_args(argv)

    logs = read_logs(args.logs, tz=args.tz)
    result = join_samples(logs, attribution_window_days=args.attribution_window_days)
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
