"""``python -m recall.retrieve DIR LOGS --start YYYY-MM-DD --end YYYY-MM-DD --k K --out FILE``.

Writes request_id, item_id, score, rank, source for every request of those days (Parquet
when FILE ends in .parquet, else CSV), each using the user's state as of the request.
"""
from __future__ import annotations

import inspect
import sys

from ltr._cli import add_tz, command, parser, write_frame
from ltr._validation import check_int
from ltr.logs import day_index, parse_day, read_logs
from recall.base import load


@command
def main(argv: list[str] | None = None) -> int:
    """Retrieve candidates for every request of the days ``--start`` .. ``--end``."""
    cli = parser("recall.retrieve", "Retrieve candidates per request.")
    cli.add_argument("source", help="directory written by python -m recall.train")
    cli.add_argument("logs", help="log directory")
    cli.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    cli.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    cli.add_argument("--k", type=int, default=1200, help="candidates per request (default 1200)")
    cli.add_argument("--exact", action="store_true", help="score every item (graph-searched models only)")
    cli.add_argument("--ef", type=int, default=None,
                     help="search beam width, >= --k (graph-searched models only; default: the source's ef_search)")
    add_tz(cli)
    cli.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    args = cli.parse_args(argv)
    k = check_int(args.k, "--k", minimum=1)
    start, end = parse_day(args.start, "--start"), parse_day(args.end, "--end")
    if end < start:
        raise ValueError(f"--end must not be before --start ({args.start}). Got {args.end} instead.")
    source = load(args.source)
    if args.exact and "exact" not in inspect.signature(source.retrieve).parameters:
        raise ValueError(f"--exact applies to graph-searched sources (nip, two_tower), not {source.kind!r}.")
    logs = read_logs(args.logs, tz=args.tz)
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    requests = logs.requests.loc[(days >= start) & (days <= end)]
    if len(requests) == 0:
        raise ValueError(f"no requests between {args.start} and {args.end} in {args.logs}.")
    if args.ef is not None:
        if not hasattr(source, "ef_search"):
            raise ValueError(f"--ef applies to graph-searched sources (nip, two_tower), not {source.kind!r}.")
        source.ef_search = check_int(args.ef, "--ef", minimum=1)  # a parameter of this run, not learned
    options = {"exact": True} if args.exact else {}
    candidates = source.retrieve(requests, logs, k, **options)
    out = write_frame(candidates, args.out)
    print(f"wrote {len(candidates):,d} candidates for {candidates['request_id'].nunique():,d} requests to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
