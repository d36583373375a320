"""``python -m eval.report LOGS``: the experiment readout (text, Markdown, HTML or JSON).

Exit status (:mod:`ltr._cli`): 0 on success, 2 for a usage error, 1 for bad input with a
one-paragraph ``error: ...`` on stderr. ``--engine dask`` validates and joins the partitions
on a Dask cluster and computes the same readout (:mod:`eval.report._dask`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from eval.ab import MIN_EVENTS, SEQUENTIAL_TUNING_UNITS, metric_names
from eval.funnel import RECALL_KS
from eval.report._build import LogFacts, build_readout, readout_of_tables
from eval.report._dask import dask_tables, logged_buckets
from eval.report._progress import Steps
from eval.report._render import FORMATS, render
from ltr._cli import add_tz, command, parser
from ltr._validation import check_choice, check_int
from ltr.distributed import EngineOptions, add_engine_options, dask_client, engine_options, open_logs
from ltr.logs import Logs, format_day, join_samples, parse_day, read_logs
from ltr.score import score_logs
from ltr.serving import Ranker
from recall.base import read_candidates, validate_candidates


def _parser() -> argparse.ArgumentParser:
    p = parser("eval.report", "Experiment readout from logs: the verdict first, then the details.")
    p.add_argument("logs", help="log directory")
    p.add_argument("--bundle", help="ranker bundle (python -m ltr.train) for offline AUC and calibration")
    p.add_argument("--candidates", action="append", default=[], metavar="FILE",
                   help="recall candidates file (request_id, item_id, rank, source); repeatable")
    p.add_argument("--control")
    p.add_argument("--treatment")
    p.add_argument("--unit", choices=["user", "request"], default="user",
                   help="randomisation unit (default user; the log contract assigns buckets per user)")
    p.add_argument("--primary", default="ctr",
                   help="the metric that decides the verdict (default ctr); the others are secondary")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the whole readout")
    p.add_argument("--adjust", choices=["holm", "bh", "none"], default="holm",
                   help="adjustment of the secondary metrics (default holm; none: exploratory, never flagged)")
    p.add_argument("--sequential", action="store_true",
                   help="always-valid confidence sequences: safe to look every day")
    p.add_argument("--tuning-units", type=int, default=SEQUENTIAL_TUNING_UNITS,
                   help="units (both arms) at which the confidence sequence is tightest (default 5000)")
    p.add_argument("--min-events", type=int, default=MIN_EVENTS,
                   help="fewer events than this in an arm: exact test for that metric (default 30)")
    p.add_argument("--segment", metavar="COL", help="lift of the primary metric per value of this requests column")
    p.add_argument("--start", help="first readout day YYYY-MM-DD (default: --experiment-start, else the first day)")
    p.add_argument("--end", help="last readout day YYYY-MM-DD (default: last day)")
    p.add_argument("--experiment-start", help="day the treatment went live YYYY-MM-DD; the CUPED pre-period is "
                   "the days before it (default: the days before --start)")
    p.add_argument("--cuped", action="store_true",
                   help="CUPED with the pre-period (refused when the arms already differ there)")
    p.add_argument("--aa-splits", type=int, default=500,
                   help="random halves of the control bucket for the A/A self-check (default 500; 0: off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the A/A self-check (default 0)")
    p.add_argument("--k", type=int, action="append", help="recall cut-off K (repeatable; default 50 100 1200)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--out", help="write the readout here (default: stdout)")
    add_tz(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    add_engine_options(p)
    return p


def _read_candidates(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--candidates file {path!r} does not exist.")
    return validate_candidates(read_candidates(p), name=f"candidates file {p.name}")


def _candidate_sets(paths: list[str]) -> dict[str, pd.DataFrame]:
    """Candidate frames by label: the file's single ``source``, else (or when taken) its file name."""
    candidates: dict[str, pd.DataFrame] = {}
    for path in paths:
        frame = _read_candidates(path)
        sources = frame["source"].unique() if "source" in frame.columns else []
        label = str(sources[0]) if len(sources) == 1 else Path(path).stem
        candidates[label if label not in candidates else Path(path).stem] = frame
    return candidates


def _bundle_scores(bundle: str, logs: Logs, samples: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Point-in-time scores of the exposures after the bundle's training window (held-out rows only)."""
    ranker = Ranker.load(bundle)
    train_end = parse_day(ranker.metadata["training"]["train_end"], "bundle train_end")
    last = int(samples["day"].max())
    if last <= train_end:
        raise ValueError(f"the bundle was trained up to {format_day(train_end)}; the logs have no later day "
                         "to score offline (offline AUC needs held-out days).")
    scores = score_logs(ranker, logs, train_end + 1, last, tz=logs.tz)
    return scores, f"offline ({ranker.model.name})"


def _check_options(args: argparse.Namespace, columns: list[str], buckets: tuple[str, ...]) -> None:
    """What can be checked against the logs (requests columns and buckets) before the slow steps."""
    for name in ("control", "treatment"):
        value = getattr(args, name)
        if value is not None and value not in buckets:
            raise ValueError(f"--{name} must be one of the buckets {list(buckets)}. Got {value!r} instead.")
    for k in args.k or []:
        check_int(k, "--k", minimum=1)
    check_choice(args.primary, "--primary", metric_names(args.unit))
    check_int(args.aa_splits, "--aa-splits", minimum=0)
    check_int(args.seed, "--seed", minimum=0)
    check_int(args.tuning_units, "--tuning-units", minimum=1)
    check_int(args.min_events, "--min-events", minimum=1)
    if args.cuped and args.unit != "user":
        raise ValueError(f"--cuped needs --unit user (requests do not recur across periods). Got --unit {args.unit} "
                         "instead.")
    if args.segment is not None and args.segment not in columns:
        raise ValueError(f"--segment must be a column of the requests table. Got {args.segment!r} instead "
                         f"(columns: {sorted(map(str, columns))}).")


def _write(text: str, out: str | None, quiet: bool) -> None:
    if not out:
        sys.stdout.write(text)
        return
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed: a failed run never leaves a readout that looks complete.
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    tmp.replace(target)
    if not quiet:
        print(f"wrote {out}", file=sys.stderr)


def _local_inputs(args: argparse.Namespace, steps: Steps) -> tuple[Logs, LogFacts, pd.DataFrame, dict]:
    with steps.step("read and validate logs"):
        logs = read_logs(args.logs, tz=args.tz)
    with steps.step("join samples"):
        joined = join_samples(logs)
    return logs, LogFacts.of(logs, joined.samples), joined.samples, joined.report.to_dict()


def _days(args: argparse.Namespace) -> dict[str, int | None]:
    return {name: parse_day(value, f"--{name.replace('_', '-')}") if value else None
            for name, value in (("start", args.start), ("end", args.end), ("experiment_start", args.experiment_start))}


def _dask_readout(args: argparse.Namespace, options: EngineOptions, steps: Steps) -> dict:
    """The readout from tables aggregated on a Dask cluster (:mod:`eval.report._dask`)."""
    for option, value in (("--bundle", args.bundle), ("--candidates", args.candidates)):
        if value:
            raise ValueError(f"{option} is not available with --engine dask yet (it needs the logs in memory); "
                             "run without --engine dask.")
    with dask_client(options) as client:
        with steps.step("read, validate and join the partitions on the Dask cluster"):
            logs = open_logs(client, args.logs, tz=args.tz)
        _check_options(args, logs.columns["requests"], logged_buckets(logs))
        with steps.step("aggregate the partitions on the Dask cluster"):
            facts, tables = dask_tables(logs, args.unit, args.segment)
        day = _days(args)
        return readout_of_tables(
            facts, tables, control=args.control, treatment=args.treatment, alpha=args.alpha,
            adjust=None if args.adjust == "none" else args.adjust, primary=args.primary,
            sequential=args.sequential, tuning_units=args.tuning_units, min_events=args.min_events,
            start_day=day["start"], end_day=day["end"], experiment_start=day["experiment_start"], cuped=args.cuped,
            aa_splits=args.aa_splits, seed=args.seed, quiet=args.quiet, join_report=logs.report.to_dict(),
            _progress=steps)


def _readout(args: argparse.Namespace, logs: Logs, samples: pd.DataFrame, offline: pd.DataFrame | None,
             name: str, join_report: dict, steps: Steps) -> dict:
    day = _days(args)
    return build_readout(
        logs, samples, control=args.control, treatment=args.treatment, unit=args.unit, alpha=args.alpha,
        adjust=None if args.adjust == "none" else args.adjust, primary=args.primary, sequential=args.sequential,
        tuning_units=args.tuning_units, min_events=args.min_events, segment=args.segment,
        start_day=day["start"], end_day=day["end"], experiment_start=day["experiment_start"], cuped=args.cuped,
        aa_splits=args.aa_splits, seed=args.seed, offline_scores=offline, offline_name=name,
        candidates=_candidate_sets(args.candidates), ks=tuple(args.k) if args.k else RECALL_KS, quiet=args.quiet,
        join_report=join_report, _progress=steps,
    )


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    options = engine_options(args)
    # One numbered sequence across the CLI's own steps and build_readout's six.
    steps = Steps(6 + 2 + bool(args.bundle), args.quiet)
    if options.is_dask:
        readout = _dask_readout(args, options, steps)
    else:
        logs, facts, samples, report = _local_inputs(args, steps)
        _check_options(args, list(logs.requests.columns), facts.buckets)
        offline, name = None, "offline"
        if args.bundle:
            with steps.step("score held-out days with the bundle"):
                offline, name = _bundle_scores(args.bundle, logs, samples)
        readout = _readout(args, logs, samples, offline, name, report, steps)
    readout["logs"] = str(args.logs)
    _write(render(readout, args.format), args.out, args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
