"""``python -m recall.retrieve DIR LOGS --start YYYY-MM-DD --end YYYY-MM-DD --k K --out FILE``.

Writes request_id, item_id, score, rank, source for every request of those days (Parquet
when FILE ends in .parquet, else CSV), each using the user's state as of the request.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from ltr.artifacts import ArtifactError
from ltr.logs import LogValidationError, day_index, parse_day, read_logs
from recall.base import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recall.retrieve", description="Retrieve candidates per request.")
    parser.add_argument("source", help="directory written by python -m recall.train")
    parser.add_argument("logs", help="log directory")
    parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    parser.add_argument("--k", type=int, default=1200, help="candidates per request (default 1200)")
    parser.add_argument("--exact", action="store_true", help="score every item (graph-searched models only)")
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    args = parser.parse_args(argv)
    try:
        if args.k < 1:
            raise ValueError(f"--k must be an int >= 1. Got {args.k} instead.")
        start, end = parse_day(args.start, "--start"), parse_day(args.end, "--end")
        if end < start:
            raise ValueError(f"--end must not be before --start ({args.start}). Got {args.end} instead.")
        source = load(args.source)
        logs = read_logs(args.logs, tz=args.tz)
        days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
        requests = logs.requests.loc[(days >= start) & (days <= end)]
        if len(requests) == 0:
            raise ValueError(f"no requests between {args.start} and {args.end} in {args.logs}.")
        kwargs = {}
        if args.exact:
            if "exact" not in inspect.signature(source.retrieve).parameters:
                raise ValueError(f"--exact applies to graph-searched sources (nip, two_tower), not {source.kind!r}.")
            kwargs["exact"] = True
        candidates = source.retrieve(requests, logs, args.k, **kwargs)
    except (LogValidationError, ArtifactError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        candidates.to_parquet(out, index=False)
    else:
        candidates.to_csv(out, index=False)
    print(f"wrote {len(candidates):,d} candidates for {candidates['request_id'].nunique():,d} requests to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
