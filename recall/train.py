"""``python -m recall.train LOGS --model nip|two_tower|itemcf|hot --train-end YYYY-MM-DD --out DIR``."""
from __future__ import annotations

import argparse
import sys

from ltr.logs import LogValidationError, parse_day, read_logs
from recall._cli import parse_settings
from recall.base import SOURCES, _source_class


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recall.train", description="Fit a recall source on logs.")
    parser.add_argument("logs", help="log directory (see python -m ltr.logs validate)")
    parser.add_argument("--model", required=True, help=f"one of {sorted(SOURCES)}")
    parser.add_argument("--train-end", required=True, help="last training day, YYYY-MM-DD (inclusive)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--tz", default="UTC", help="time zone of calendar days")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="model parameter, e.g. --set epochs=3 (repeatable)")
    args = parser.parse_args(argv)
    try:
        cls = _source_class(args.model)
        params = parse_settings(cls, args.set)
        train_end = parse_day(args.train_end, "--train-end")
        logs = read_logs(args.logs, tz=args.tz)
        source = cls(**params).fit(logs, train_end)
    except (LogValidationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    source.save(args.out)
    print(f"wrote {args.model} recall source to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
