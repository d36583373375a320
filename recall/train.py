"""``python -m recall.train LOGS --model nip|two_tower|itemcf|hot --train-end YYYY-MM-DD --out DIR``."""
from __future__ import annotations

import sys

from ltr._cli import add_tz, command, parse_settings, parser
from ltr.logs import parse_day, read_logs
from recall.base import SOURCES, source_class


@command
def main(argv: list[str] | None = None) -> int:
    """Fit a recall source on the logs' days up to ``--train-end`` and save it to ``--out``."""
    cli = parser("recall.train", "Fit a recall source on logs.")
    cli.add_argument("logs", help="log directory (see python -m ltr.logs validate)")
    cli.add_argument("--model", required=True, help=f"one of {sorted(SOURCES)}")
    cli.add_argument("--train-end", required=True, help="last training day, YYYY-MM-DD (inclusive)")
    cli.add_argument("--out", required=True, help="output directory")
    add_tz(cli)
    cli.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="model parameter, e.g. --set epochs=3 (repeatable)")
    args = cli.parse_args(argv)
    cls = source_class(args.model)
    params = parse_settings(cls, args.set)
    train_end = parse_day(args.train_end, "--train-end")
    logs = read_logs(args.logs, tz=args.tz)
    cls(**params).fit(logs, train_end).save(args.out)
    print(f"wrote {args.model} recall source to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
