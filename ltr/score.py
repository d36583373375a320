"""Batch scoring: ``python -m ltr.score BUNDLE LOGS --start D --end D --out FILE``.

Scores the exposures of the days ``start..end`` (inclusive) point-in-time: each row's
statistics come from the logs strictly before its day, so a day is scored as it would have
been online at its start, whatever the logs hold afterwards. Writes ``request_id, item_id,
score`` (CSV, or Parquet when FILE ends in ``.parquet``). With ``--engine dask`` on partitioned
logs, the rows are scored on the workers and written as a directory partitioned like the logs
(:mod:`ltr.distributed._score`), with the same scores.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ltr._cli import add_ts_unit, add_tz, command, parser, write_frame
from ltr.distributed import add_engine_options, dask_client, engine_options, open_logs
from ltr.distributed._score import score_on_dask
from ltr.features import labelled_samples
from ltr.logs import Logs, as_day, format_day, parse_day, read_logs
from ltr.serving import Ranker

__all__ = ["main", "score_logs"]


def score_logs(ranker: Ranker | str | Path, logs: Logs, start: int | str, end: int | str,
               tz: str = "UTC") -> pd.DataFrame:
    """Point-in-time scores of every exposure of the days ``start..end``.

    Parameters
    ----------
    ranker : ltr.serving.Ranker or path to a bundle
    logs : ltr.logs.Logs
    start, end : str "YYYY-MM-DD" or int day index (inclusive)
    tz : str, default "UTC"

    Returns
    -------
    DataFrame
        ``request_id, item_id, score`` in the samples' time order.

    Raises
    ------
    ValueError
        ``end`` before ``start``, or no exposure in the range.
    TypeError
        ``start`` or ``end`` is neither a date string nor a day index.
    """
    if not isinstance(ranker, Ranker):
        ranker = Ranker.load(ranker)
    first = as_day(start, "start")
    last = as_day(end, "end")
    if last < first:
        raise ValueError(f"end must be on or after start ({format_day(first)}). Got {format_day(last)} instead.")
    samples = labelled_samples(logs, tz)
    days = samples["day"].to_numpy()
    mask = (days >= first) & (days <= last)
    if not mask.any():
        span = f"{format_day(int(days.min()))} to {format_day(int(days.max()))}" if len(days) else "no days"
        raise ValueError(
            f"start..end must contain exposures (the logs span {span}). "
            f"Got {format_day(first)}..{format_day(last)} instead."
        )
    rows = samples.loc[mask].reset_index(drop=True)
    scores = ranker.score(rows, history=samples)
    return pd.DataFrame({"request_id": rows["request_id"].to_numpy(), "item_id": rows["item_id"].to_numpy(),
                         "score": scores})


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 user error, 2 usage error)."""
    cli = parser("ltr.score", "Score the exposures of --start..--end point-in-time with a ranker bundle.")
    cli.add_argument("bundle", help="bundle directory written by python -m ltr.train")
    cli.add_argument("logs", help="logs directory (Parquet/CSV tables)")
    cli.add_argument("--start", required=True, help="first day to score, YYYY-MM-DD")
    cli.add_argument("--end", required=True, help="last day to score (inclusive), YYYY-MM-DD")
    cli.add_argument("--out", required=True,
                     help="output file (.parquet or .csv); with --engine dask a directory of Parquet files "
                          "partitioned like the logs")
    add_tz(cli)
    add_ts_unit(cli)
    add_engine_options(cli)
    args = cli.parse_args(argv)
    options = engine_options(args)

    start = parse_day(args.start, "start")
    end = parse_day(args.end, "end")
    ranker = Ranker.load(args.bundle)
    if options.is_dask:
        with dask_client(options) as client:
            opened = open_logs(client, args.logs, tz=args.tz, ts_unit=args.ts_unit)
            rows = score_on_dask(opened, ranker, start, end, args.out)
        print(f"scored {rows} exposures of {args.start}..{args.end} with {ranker.model.name} on Dask; "
              f"written to {args.out} (partitioned like the logs)")
        return 0
    scores = score_logs(ranker, read_logs(args.logs, tz=args.tz, ts_unit=args.ts_unit), start, end, tz=args.tz)
    write_frame(scores, args.out)
    print(f"scored {len(scores)} exposures of {args.start}..{args.end} with {ranker.model.name}; "
          f"mean score {np.mean(scores['score']):.4f}; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
