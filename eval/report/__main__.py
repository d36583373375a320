"""``python -m eval.report LOGS``: the experiment readout (text, Markdown, HTML or JSON)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from eval.funnel import RECALL_KS
from eval.report._readout import FORMATS, _Steps, build_readout, render
from ltr.artifacts import ArtifactError
from ltr.logs import LogValidationError, format_day, join_samples, parse_day, read_logs
from ltr.score import score_logs
from ltr.serving import Ranker
from recall.base import validate_candidates


def _read_candidates(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--candidates file {path!r} does not exist.")
    frame = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    return validate_candidates(frame, name=f"candidates file {p.name}")


def _bundle_scores(bundle: str, logs, samples: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Point-in-time scores of the exposures after the bundle's training window (held-out rows only)."""
    ranker = Ranker.load(bundle)
    train_end = parse_day(ranker.metadata["training"]["train_end"], "bundle train_end")
    last = int(samples["day"].max())
    if last <= train_end:
        raise ValueError(f"the bundle was trained up to {format_day(train_end)}; the logs have no later day "
                         "to score offline (offline AUC needs held-out days).")
    scores = score_logs(ranker, logs, train_end + 1, last, tz=logs.tz)
    return scores, f"offline ({ranker.model.name})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.report", description="Experiment readout from logs.")
    parser.add_argument("logs", help="log directory")
    parser.add_argument("--bundle", help="ranker bundle (python -m ltr.train) for offline AUC and calibration")
    parser.add_argument("--candidates", action="append", default=[], metavar="FILE",
                        help="recall candidates file (request_id, item_id, rank, source); repeatable")
    parser.add_argument("--control")
    parser.add_argument("--treatment")
    parser.add_argument("--unit", choices=["user", "request"], default="user")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--adjust", choices=["holm", "bh"], help="adjust p-values across metrics")
    parser.add_argument("--start", help="first experiment day YYYY-MM-DD (default: first day of the logs)")
    parser.add_argument("--end", help="last experiment day YYYY-MM-DD (default: last day)")
    parser.add_argument("--cuped", action="store_true", help="CUPED with the days before --start as pre-period")
    parser.add_argument("--k", type=int, action="append", help="recall cut-off K (repeatable; default 50 100 1200)")
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument("--out", help="write the readout here (default: stdout)")
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    try:
        # One numbered sequence across the CLI's own steps and build_readout's six.
        steps = _Steps(6 + 2 + bool(args.bundle), args.quiet)
        logs = steps("read and validate logs", read_logs, args.logs, tz=args.tz)
        joined = steps("join samples", join_samples, logs)
        samples = joined.samples
        for name in ("control", "treatment"):
            value = getattr(args, name)
            requests = logs.requests
            if value is not None and ("bucket" not in requests.columns or value not in set(requests["bucket"])):
                known = sorted(set(requests["bucket"])) if "bucket" in requests.columns else []
                raise ValueError(f"--{name} must be one of the buckets {known}. Got {value!r} instead.")
        for k in args.k or []:
            if k < 1:
                raise ValueError(f"--k must be an int >= 1. Got {k} instead.")
        offline, name = (None, "offline")
        if args.bundle:
            offline, name = steps("score held-out days with the bundle", _bundle_scores, args.bundle, logs, samples)
        candidates = {}
        for path in args.candidates:
            frame = _read_candidates(path)
            sources = frame["source"].unique() if "source" in frame.columns else []
            label = str(sources[0]) if len(sources) == 1 else Path(path).stem
            candidates[label if label not in candidates else Path(path).stem] = frame
        readout = build_readout(
            logs, samples, control=args.control, treatment=args.treatment, unit=args.unit, alpha=args.alpha,
            adjust=args.adjust, start_day=parse_day(args.start, "--start") if args.start else None,
            end_day=parse_day(args.end, "--end") if args.end else None, cuped=args.cuped,
            offline_scores=offline, offline_name=name, candidates=candidates,
            ks=tuple(args.k) if args.k else RECALL_KS, quiet=args.quiet, join_report=joined.report.to_dict(),
            _progress=steps,
        )
        readout["logs"] = str(args.logs)
        text = render(readout, args.format)
    except (LogValidationError, ArtifactError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        if not args.quiet:
            print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
