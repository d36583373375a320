"""``python -m eval.report LOGS``: the experiment readout (text, Markdown, HTML or JSON).

Exit status (:mod:`ltr._cli`): 0 on success, 2 for a usage error, 1 for bad input with a
one-paragraph ``error: ...`` on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from eval.funnel import RECALL_KS
from eval.report._build import build_readout
from eval.report._progress import Steps
from eval.report._render import FORMATS, render
from ltr._cli import add_tz, command, parser
from ltr._validation import check_int
from ltr.logs import Logs, format_day, join_samples, parse_day, read_logs
from ltr.score import score_logs
from ltr.serving import Ranker
from recall.base import read_candidates, validate_candidates


def _parser() -> argparse.ArgumentParser:
    p = parser("eval.report", "Experiment readout from logs.")
    p.add_argument("logs", help="log directory")
    p.add_argument("--bundle", help="ranker bundle (python -m ltr.train) for offline AUC and calibration")
    p.add_argument("--candidates", action="append", default=[], metavar="FILE",
                   help="recall candidates file (request_id, item_id, rank, source); repeatable")
    p.add_argument("--control")
    p.add_argument("--treatment")
    p.add_argument("--unit", choices=["user", "request"], default="user")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--adjust", choices=["holm", "bh"], help="adjust p-values across metrics")
    p.add_argument("--start", help="first experiment day YYYY-MM-DD (default: first day of the logs)")
    p.add_argument("--end", help="last experiment day YYYY-MM-DD (default: last day)")
    p.add_argument("--cuped", action="store_true", help="CUPED with the days before --start as pre-period")
    p.add_argument("--k", type=int, action="append", help="recall cut-off K (repeatable; default 50 100 1200)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--out", help="write the readout here (default: stdout)")
    add_tz(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
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


def _check_options(args: argparse.Namespace, requests: pd.DataFrame) -> None:
    """What can be checked against the logs before the slow steps."""
    for name in ("control", "treatment"):
        value = getattr(args, name)
        if value is not None and ("bucket" not in requests.columns or value not in set(requests["bucket"])):
            known = sorted(set(requests["bucket"])) if "bucket" in requests.columns else []
            raise ValueError(f"--{name} must be one of the buckets {known}. Got {value!r} instead.")
    for k in args.k or []:
        check_int(k, "--k", minimum=1)


def _write(text: str, out: str | None, quiet: bool) -> None:
    if not out:
        sys.stdout.write(text)
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    if not quiet:
        print(f"wrote {out}", file=sys.stderr)


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    # One numbered sequence across the CLI's own steps and build_readout's six.
    steps = Steps(6 + 2 + bool(args.bundle), args.quiet)
    with steps.step("read and validate logs"):
        logs = read_logs(args.logs, tz=args.tz)
    with steps.step("join samples"):
        joined = join_samples(logs)
    _check_options(args, logs.requests)
    offline, name = None, "offline"
    if args.bundle:
        with steps.step("score held-out days with the bundle"):
            offline, name = _bundle_scores(args.bundle, logs, joined.samples)
    readout = build_readout(
        logs, joined.samples, control=args.control, treatment=args.treatment, unit=args.unit, alpha=args.alpha,
        adjust=args.adjust, start_day=parse_day(args.start, "--start") if args.start else None,
        end_day=parse_day(args.end, "--end") if args.end else None, cuped=args.cuped,
        offline_scores=offline, offline_name=name, candidates=_candidate_sets(args.candidates),
        ks=tuple(args.k) if args.k else RECALL_KS, quiet=args.quiet, join_report=joined.report.to_dict(),
        _progress=steps,
    )
    readout["logs"] = str(args.logs)
    _write(render(readout, args.format), args.out, args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
