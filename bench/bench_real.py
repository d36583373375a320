"""The whole chain on real logs shaped like the KuaiRand-Pure development slice, stage by stage.

    python bench/bench_real.py DIR [--out bench/out/real] [--train-end 2022-04-28] [--tz Asia/Shanghai]
                                   [--gap 60] [--k 10 50 200] [--python PY]

``DIR`` holds ``interactions.parquet`` (one row per exposure: ``user_id``, ``video_id``,
``time_ms`` in epoch milliseconds, ``tab``, ``is_click``, outcomes ...), ``items.csv`` (keyed by
``video_id``, category in ``tag``) and ``users.csv`` (keyed by ``user_id``): the development
slice, or ``fixtures/real/flat`` for a quick run. Every stage is a ``python -m`` command, as a
user runs it: import, validate, train LR and LightGBM (days up to ``--train-end``, evaluated on
the days after), score the evaluation days, train every recall source on the days before the
last and retrieve for the last day, merge, readout. Printed (never asserted): each stage's
wall time and peak memory (the child's own maximum resident set, from ``os.wait4``), the
rankers' AUC and GAUC (per user, exposure weighted) on the evaluation days, and each recall
source's hitrate@K of the last day's clicks. A stage that fails is reported with the end of its
error output; the stages that do not need it still run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd

from eval.metrics import auc, gauc, hitrate_at_k
from ltr.logs import daily_counts, format_day, join_samples, parse_day, read_logs

SOURCES = ("itemcf", "hot", "nip", "two_tower")


@dataclass
class Stage:
    """One command's outcome."""

    name: str
    seconds: float
    peak_mb: float
    status: int


@dataclass
class Runner:
    """Runs ``python -m ...`` stages, logging each one's output under ``out/stage_logs``."""

    python: str
    out: Path
    stages: list[Stage] = field(default_factory=list)

    def __call__(self, name: str, *args: str) -> bool:
        """Run one stage; print and record its wall time and peak memory; True when it succeeded."""
        log = self.out / "stage_logs" / f"{name.replace(' ', '_')}.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        started = time.perf_counter()
        with log.open("w") as sink:
            proc = subprocess.Popen([self.python, "-m", *args], stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
                                    env=env)
            # wait4 gives this child's own resource usage (ru_maxrss in KiB on Linux).
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stage = Stage(name, time.perf_counter() - started, usage.ru_maxrss / 1024, proc.returncode)
        self.stages.append(stage)
        mark = "ok" if stage.status == 0 else f"FAILED (exit {stage.status})"
        print(f"  {name:<22} {stage.seconds:8.1f} s  {stage.peak_mb:8.0f} MB  {mark}", flush=True)
        if stage.status != 0:
            tail = log.read_text().strip().splitlines()[-6:]
            print("\n".join(f"      | {line}" for line in tail), flush=True)
        return stage.status == 0


def ranker_metrics(out: Path, tz: str, models: list[str]) -> None:
    """AUC and GAUC of each scored model on the evaluation days."""
    samples = join_samples(read_logs(out / "logs", tz=tz)).samples
    keyed = samples.set_index(["request_id", "item_id"])[["user_id", "click"]]
    print("\nRanker on the evaluation days (scored point-in-time by python -m ltr.score)")
    print(f"  {'model':<6} {'rows':>8} {'ctr':>7} {'AUC':>7} {'GAUC':>7} {'users used':>11}")
    for model in models:
        path = out / f"scores_{model}.parquet"
        if not path.exists():
            print(f"  {model:<6} (no scores: an earlier stage failed)")
            continue
        scores = pd.read_parquet(path).join(keyed, on=["request_id", "item_id"])
        group = gauc(scores["click"], scores["score"], scores["user_id"])
        print(f"  {model:<6} {len(scores):>8,d} {scores['click'].mean():>7.4f} "
              f"{auc(scores['click'], scores['score']):>7.4f} {group.value:>7.4f} {group.n_groups_used:>11,d}")


def recall_metrics(out: Path, tz: str, day: int, ks: list[int], labels: list[str]) -> None:
    """Hitrate@K of the last day's clicks for each candidate file."""
    samples = join_samples(read_logs(out / "logs", tz=tz)).samples
    targets = samples.loc[(samples["day"] == day) & (samples["click"] == 1), ["request_id", "item_id"]]
    print(f"\nRecall on {format_day(day)}: hitrate@K of its {len(targets):,d} clicked exposures")
    print(f"  {'source':<10} " + " ".join(f"{'@' + str(k):>8}" for k in ks))
    for label in labels:
        path = out / f"candidates_{label}.parquet"
        if not path.exists():
            print(f"  {label:<10} (no candidates: an earlier stage failed)")
            continue
        table = hitrate_at_k(pd.read_parquet(path), targets, ks)
        print(f"  {label:<10} " + " ".join(f"{table.loc[k, 'hitrate']:>8.4f}" for k in ks))


def run_rankers(run: Runner, logs: str, train_end: str, last_day: str, tz: str) -> None:
    """Train LR and LightGBM up to ``train_end``; score the days after it."""
    eval_days = ["--start", format_day(parse_day(train_end) + 1), "--end", last_day]
    for model in ("lr", "lgbm"):
        bundle = str(run.out / f"ranker_{model}")
        if run(f"train {model}", "ltr.train", logs, "--model", model, "--train-end", train_end, "--tz", tz,
               "--out", bundle):
            run(f"score {model}", "ltr.score", bundle, logs, *eval_days, "--tz", tz,
                "--out", str(run.out / f"scores_{model}.parquet"))


def run_recall(run: Runner, logs: str, last: int, k: int, tz: str) -> list[str]:
    """Train every source on the days before ``last``, retrieve ``k`` for ``last``, merge; the labels made."""
    day, made = format_day(last), []
    for source in SOURCES:
        model = str(run.out / f"recall_{source}")
        if run(f"recall train {source}", "recall.train", logs, "--model", source, "--train-end",
               format_day(last - 1), "--tz", tz, "--out", model) and run(
                f"retrieve {source}", "recall.retrieve", model, logs, "--start", day, "--end", day, "--k", str(k),
                "--tz", tz, "--out", str(run.out / f"candidates_{source}.parquet")):
            made.append(source)
    if made:
        quotas = [arg for source in made for arg in ("--quota", f"{source}={k // len(made)}")]
        files = [str(run.out / f"candidates_{source}.parquet") for source in made]
        if run("merge", "recall.merge", *files, *quotas, "--out", str(run.out / "candidates_merged.parquet")):
            made.append("merged")
    return made


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("dir", type=Path, help="directory shaped like the KuaiRand-Pure development slice")
    cli.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "real")
    cli.add_argument("--train-end", default="2022-04-28")
    cli.add_argument("--tz", default="Asia/Shanghai")
    cli.add_argument("--gap", default="60", help="request gap in seconds (importer --gap)")
    cli.add_argument("--k", type=int, nargs="+", default=[10, 50, 200])
    cli.add_argument("--python", default=sys.executable)
    args = cli.parse_args(argv)
    run, tz = Runner(args.python, args.out.resolve()), args.tz
    run.out.mkdir(parents=True, exist_ok=True)
    logs = str(run.out / "logs")
    print(f"bench_real on {args.dir} -> {run.out}\n  {'stage':<22} {'wall':>10} {'peak RSS':>11}")

    if not run("import", "ltr.logs", "import", str(args.dir / "interactions.parquet"), "--out", logs,
               "--user-col", "user_id", "--item-col", "video_id", "--ts-col", "time_ms", "--ts-unit", "ms",
               "--click-col", "is_click", "--context-col", "tab", "--request-by", "tab", "--gap", args.gap,
               "--items", str(args.dir / "items.csv"), "--category-col", "tag", "--users", str(args.dir / "users.csv"),
               "--tz", tz):
        return 1
    run("validate", "ltr.logs", "validate", logs, "--tz", tz)
    days = daily_counts(read_logs(logs, tz=tz)).index
    run_rankers(run, logs, args.train_end, days[-1], tz)
    made = run_recall(run, logs, parse_day(days[-1]), max(args.k), tz)
    report = ["eval.report", logs, "--tz", tz, "--quiet"]
    if (run.out / "scores_lgbm.parquet").exists():
        report += ["--bundle", str(run.out / "ranker_lgbm")]
    report += [arg for label in made for arg in ("--candidates", str(run.out / f"candidates_{label}.parquet"))]
    for fmt in ("text", "json"):
        run(f"readout {fmt}", *report, "--format", fmt, "--out", str(run.out / f"readout.{fmt}"))

    ranker_metrics(run.out, tz, ["lr", "lgbm"])
    recall_metrics(run.out, tz, parse_day(days[-1]), args.k, [*SOURCES, "merged"])
    failed = [stage.name for stage in run.stages if stage.status != 0]
    print(f"\n{len(run.stages)} stages in {sum(s.seconds for s in run.stages):.0f} s, peak "
          f"{max(s.peak_mb for s in run.stages):.0f} MB; "
          + (f"failed: {', '.join(failed)} (see {run.out / 'stage_logs'})" if failed else "all ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
