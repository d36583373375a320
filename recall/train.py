"""``python -m recall.train LOGS --model nip|two_tower|itemcf|hot --train-end YYYY-MM-DD --out DIR``.

``--engine dask`` (item-CF and hot only) validates the partitions and counts on a Dask cluster
(``recall/_dask_counts.py``); NIP and two-tower training stay on one machine. The source is
saved into a temporary directory renamed to ``--out`` on success.
"""
from __future__ import annotations

import argparse
import sys

from ltr._cli import add_tz, command, parse_settings, parser
from ltr.distributed import EngineOptions, add_engine_options, atomic_directory, dask_client, engine_options, open_logs
from ltr.logs import parse_day, read_logs
from recall._dask_counts import DASK_SOURCES, fit_on_dask
from recall.base import SOURCES, RecallSource, source_class


def _fit_on_dask(source: RecallSource, args: argparse.Namespace, options: EngineOptions, train_end: int) -> None:
    if args.model not in DASK_SOURCES:
        raise ValueError(f"--engine dask trains --model {' or '.join(DASK_SOURCES)}. Got {args.model!r} instead: "
                         "NIP and two-tower train on one machine (leave out --engine dask).")
    with dask_client(options) as client:
        logs = open_logs(client, args.logs, tz=args.tz)
        fit_on_dask(source, logs, train_end)


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
    add_engine_options(cli)
    args = cli.parse_args(argv)
    options = engine_options(args)
    cls = source_class(args.model)
    params = parse_settings(cls, args.set)
    train_end = parse_day(args.train_end, "--train-end")
    source = cls(**params)
    if options.is_dask:
        _fit_on_dask(source, args, options, train_end)
    else:
        source.fit(read_logs(args.logs, tz=args.tz), train_end)
    with atomic_directory(args.out) as tmp:
        source.save(tmp)
    print(f"wrote {args.model} recall source to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
