"""The Dask engine beside the single-machine engine, stage by stage (issue 14).

    python bench/bench_dask.py [--logs DIR | --users 29000 --items 30000 --days 14 --candidates 50 --seed 0
                                [--shards K]]
                               [--out bench/out/dask] [--workers 2] [--memory-limit 4GiB]
                               [--train-end YYYY-MM-DD] [--python PY]
                               [--engines local,dask] [--stages validate,readout,itemcf,hot,train,score]
                               [--train-args '--set num_boost_round=50 --no-refit']

Without ``--logs`` a world is simulated (``python -m ltr.simulate``; the defaults give about 2M
exposures) and written partitioned (``python -m ltr.logs partition``); with ``--shards K`` it is
simulated in ``K`` user shards of ``users / K`` users, one at a time, straight into the
partitioned layout (``python -m ltr.simulate --shards``, ltr/simulate/_shards.py: the same items
and calendar, disjoint users and requests; one process holds one shard), for worlds too large to
simulate in one process (an existing ``OUT/partitioned`` is reused). Then every stage runs
as the command a user runs, once per engine: ``local`` (pandas in the command's process) and
``dask`` (``--engine dask --scheduler ADDRESS`` on a LocalCluster this script starts, as a user
points the commands at an existing cluster). Stages: validate (every check and the join
report), readout (``eval.report``, JSON), item-CF and hot (``recall.train``).

Stages: validate (every check and the join report), readout (``eval.report``, JSON), item-CF and
hot (``recall.train``), train (``ltr.train --model lgbm``, the leakage check on, as on both
engines by default) and score (``ltr.score`` of the last day with the bundle the same
engine trained; a Parquet file locally, a directory partitioned like the logs on Dask).
``--engines dask`` runs the Dask engine alone (a world too big for the single-machine engine);
``--stages`` picks stages.

Printed, never asserted: wall time, the client's peak resident memory (the command's own
maximum RSS, from ``os.wait4``) and, for the Dask engine, the peak memory of each worker and of
all workers together (their RSS sampled every 0.2 s through the scheduler); whether the two
engines' readouts are byte-identical; the held-out AUC of each engine's LightGBM bundle.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ltr.logs import format_day, parse_day

#: (name, command after ``python -m`` with {logs} {out} {train_end}, whether it takes --engine dask)
STAGES = (
    ("validate", "ltr.logs validate {logs}", True),
    ("readout", "eval.report {logs} --format json --quiet --out {out}/readout.json", True),
    ("itemcf", "recall.train {logs} --model itemcf --train-end {train_end} --out {out}/itemcf", True),
    ("hot", "recall.train {logs} --model hot --train-end {train_end} --out {out}/hot", True),
    ("train", "ltr.train {logs} --model lgbm --train-end {train_end} --out {out}/bundle", True),
    ("score", "ltr.score {out}/bundle {logs} --start {last} --end {last} --out {scores}", True),
)


@dataclass
class Result:
    stage: str
    engine: str
    seconds: float
    client_mb: float
    workers_mb: float | None = None
    worker_max_mb: float | None = None
    ok: bool = True
    note: str = ""


class WorkerMemory:
    """Peak RSS of each worker while a stage runs, sampled through the scheduler."""

    def __init__(self, client) -> None:
        self.client = client
        self.total = 0.0
        self.each = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                rss = self.client.run(lambda: psutil.Process().memory_info().rss)
            except Exception:  # a worker restarting between samples: skip the sample
                rss = {}
            if rss:
                self.total = max(self.total, sum(rss.values()) / 2**20)
                self.each = max(self.each, max(rss.values()) / 2**20)
            self._stop.wait(0.2)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _run(python: str, module_args: str, extra: list[str]) -> tuple[float, float, bool, str]:
    """Wall seconds, peak RSS (MB) of the command, success, the end of its error output.

    The command runs under ``/usr/bin/time -f %M`` where there is one: Linux carries a process's
    peak RSS across ``exec``, so a command forked straight from this (large) process would report
    at least this process's size; ``time`` is small, and its child's peak is the command's own.
    """
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    timer = ["/usr/bin/time", "-f", "maxrss_kb=%M"] if Path("/usr/bin/time").exists() else []
    proc = subprocess.Popen([*timer, python, "-m", *module_args.split(), *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    peak_kb = float(usage.ru_maxrss)
    if timer:
        found = [line for line in err.splitlines() if line.startswith("maxrss_kb=")]
        peak_kb = float(found[-1].split("=")[1]) if found else float("nan")
        err = "\n".join(line for line in err.splitlines() if not line.startswith("maxrss_kb="))
    return seconds, peak_kb / 1024, os.waitstatus_to_exitcode(status) == 0, err.strip()[-300:]


def _world(args: argparse.Namespace, out: Path) -> Path:
    if args.logs:
        return Path(args.logs)
    flat = out / "world"
    if not (flat / "requests.parquet").exists():
        print(f"simulating {args.users:,d} users x {args.days} days ...", flush=True)
        subprocess.run([args.python, "-m", "ltr.simulate", str(flat), "--users", str(args.users), "--items",
                        str(args.items), "--days", str(args.days), "--candidates", str(args.candidates), "--seed",
                        str(args.seed)], check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return flat


def _simulate_sharded(args: argparse.Namespace, plogs: Path) -> tuple[float, float, bool, str]:
    """The sharded world simulated straight into ``plogs`` (reused when it is there)."""
    if (plogs / "requests").is_dir():
        print(f"reusing {plogs}", flush=True)
        return 0.0, 0.0, True, "reused"
    print(f"simulating {args.users:,d} users x {args.days} days in {args.shards} shards ...", flush=True)
    return _run(args.python, f"ltr.simulate {plogs} --users {args.users} --items {args.items} --days {args.days} "
                f"--candidates {args.candidates} --seed {args.seed} --shards {args.shards}", [])


def _summary(plogs: Path) -> tuple[dict[str, int], int, int]:
    """Rows per table (from the Parquet footers, nothing loaded) and the first and last day."""
    import pyarrow.parquet as pq

    rows = {table.name: sum(pq.ParquetFile(f).metadata.num_rows for f in table.rglob("*.parquet"))
            for table in plogs.iterdir() if table.is_dir() and not table.name.startswith(".")}
    days = sorted(parse_day(d.name.removeprefix("day="), "day") for d in (plogs / "requests").iterdir())
    return rows, days[0], days[-1]


def _print(r: Result) -> None:
    workers = "" if r.workers_mb is None else f"{r.workers_mb:>9,.0f} {r.worker_max_mb:>9,.0f}"
    status = "" if r.ok else f"  FAILED: {r.note}"
    print(f"{r.stage:<10} {r.engine:<6} {r.seconds:>8.1f} {r.client_mb:>10,.0f} {workers}{status}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logs", help="a flat log directory to take instead of simulating one")
    p.add_argument("--users", type=int, default=29_000)
    p.add_argument("--items", type=int, default=30_000)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--candidates", type=int, default=50, help="logged candidates per request of the simulated world")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shards", type=int, default=None,
                   help="simulate the world in this many user shards, straight into the partitioned layout")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "dask"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="4GiB", help="per Dask worker")
    p.add_argument("--train-end", help="last training day of the recall sources (default: the day before the last)")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--engines", default="local,dask", help="engines to run, comma-separated")
    p.add_argument("--stages", default=",".join(s[0] for s in STAGES), help="stages to run, comma-separated")
    p.add_argument("--train-args", default="",
                   help="more arguments of the train stage, e.g. '--set num_boost_round=50 --no-refit'")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plogs = out / "partitioned"
    if args.shards:
        seconds, rss, ok, err = _simulate_sharded(args, plogs)
        first = Result("simulate", "local", seconds, rss, ok=ok, note=err)
    else:
        flat = _world(args, out)
        seconds, rss, ok, err = _run(args.python, f"ltr.logs partition {flat} --out {plogs}", [])
        first = Result("partition", "local", seconds, rss, ok=ok, note=err)
    rows, first_day, last_day = _summary(plogs)
    train_end = args.train_end or format_day(last_day - 1)
    last = format_day(last_day)
    print(f"world: {rows.get('exposures', 0):,d} exposures, {rows.get('requests', 0):,d} requests, "
          f"{rows.get('candidates', 0):,d} candidates, days {format_day(first_day)}..{last}; train end {train_end}; "
          f"Dask workers: {args.workers} x 1 thread, memory limit {args.memory_limit} each")
    print(f"{'stage':<10} {'engine':<6} {'wall s':>8} {'client MB':>10} {'workers MB':>9} {'max 1 MB':>9}")
    _print(first)
    results = _stages(args, plogs, out, train_end, last)
    same = True
    if all((out / e / "readout.json").exists() for e in ("local", "dask")):
        same = (out / "local" / "readout.json").read_bytes() == (out / "dask" / "readout.json").read_bytes()
        print(f"readout JSON identical between engines: {same}")
    for engine in ("local", "dask"):
        manifest = out / engine / "bundle" / "manifest.json"
        if manifest.exists():
            metrics = json.loads(manifest.read_text())["metadata"]["metrics"]
            print(f"{engine} LightGBM held-out AUC {metrics['auc']:.4f} on {metrics['rows']:,d} rows")
    return 0 if all(r.ok for r in results) and same else 1


def _stages(args: argparse.Namespace, plogs: Path, out: Path, train_end: str, last: str) -> list[Result]:
    from distributed import Client, LocalCluster

    results = []
    engines = [e for e in ("local", "dask") if e in args.engines.split(",")]
    stages = args.stages.split(",")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory_limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        for name, command, _ in STAGES:
            if name not in stages:
                continue
            for engine in engines:
                target = out / engine
                target.mkdir(exist_ok=True)
                scores = target / ("scores" if engine == "dask" else "scores.parquet")
                text = command.format(logs=plogs, out=target, train_end=train_end, last=last, scores=scores)
                if name == "train" and args.train_args:
                    text = f"{text} {args.train_args}"
                extra = ["--engine", "dask", "--scheduler", cluster.scheduler_address] if engine == "dask" else []
                with WorkerMemory(client) as memory:
                    seconds, rss, ok, err = _run(args.python, text, extra)
                result = Result(name, engine, seconds, rss, ok=ok, note=err)
                if engine == "dask":
                    result.workers_mb, result.worker_max_mb = memory.total, memory.each
                results.append(result)
                _print(result)
    return results


if __name__ == "__main__":
    sys.exit(main())
