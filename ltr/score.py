"""Batch scoring: ``python -m ltr.score BUNDLE LOGS --start D --end D --out FILE``.

Scores the exposures of the days ``start..end`` (inclusive) point-in-time: each row's
statistics come from the logs strictly before its day, so a day is scored as it would have
been online at its start, whatever the logs hold afterwards. Writes ``request_id, item_id,
score`` (CSV, or Parquet when FILE ends in ``.parquet``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.logs import day_index, format_day, parse_day

__all__ = ["main", "score_logs"]


def score_logs(ranker, logs, start: int | str, end: int | str, tz: str = "UTC") -> pd.DataFrame:
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
    """
    from ltr.logs import join_samples
    from ltr.serving import Ranker

    if not isinstance(ranker, Ranker):
        ranker = Ranker.load(ranker)
    first = parse_day(start, "start") if isinstance(start, str) else int(start)
    last = parse_day(end, "end") if isinstance(end, str) else int(end)
    if last < first:
        raise ValueError(f"end must be on or after start ({format_day(first)}). Got {format_day(last)} instead.")
    samples = join_samples(logs).samples
    if tz != "UTC":
        samples = samples.assign(day=day_index(samples["ts"].to_numpy(), tz))
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


def write_scores(frame: pd.DataFrame, out: str | Path) -> None:
    """Write scores as Parquet (``.parquet``) or CSV (anything else)."""
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        # 17 significant digits so a CSV round trip keeps every float64 exactly.
        frame.to_csv(out, index=False, float_format="%.17g")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    from ltr.train import _Parser

    parser = _Parser(prog="python -m ltr.score",
                     description="Score the exposures of --start..--end point-in-time with a ranker bundle.")
    parser.add_argument("bundle", help="bundle directory written by python -m ltr.train")
    parser.add_argument("logs", help="logs directory (Parquet/CSV tables)")
    parser.add_argument("--start", required=True, help="first day to score, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="last day to score (inclusive), YYYY-MM-DD")
    parser.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    parser.add_argument("--tz", default="UTC", help="time zone of calendar days (default UTC)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage mistake (1): a status, not an exception
        return int(exc.code or 0)
    try:
        from ltr.logs import read_logs
        from ltr.serving import Ranker

        start = parse_day(args.start, "start")
        end = parse_day(args.end, "end")
        ranker = Ranker.load(args.bundle)
        scores = score_logs(ranker, read_logs(args.logs, tz=args.tz), start, end, tz=args.tz)
        write_scores(scores, args.out)
    except (ValueError, TypeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"scored {len(scores)} exposures of {args.start}..{args.end} with {ranker.model.name}; "
          f"mean score {np.mean(scores['score']):.4f}; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
