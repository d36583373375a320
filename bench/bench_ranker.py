"""Benchmark the ltr rankers: inputs comparison, serving latency, training time at scale.

Prints (never asserts):

1. held-out AUC / logloss / calibration of LR and of LightGBM on each input representation
   (one-hot bins, raw continuous values + category codes, both) on the fixture world;
2. in-process serving latency of ``Ranker.score`` for one request with 300 candidates
   (p50/p99 over repeated requests), end to end and model only;
3. LR and LightGBM training time on ``--rows`` rows (default 2,000,000), made by resampling
   the fixture's training feature rows, so the sparsity pattern is the real one.

Usage::

    python bench/bench_ranker.py [--logs fixtures/world] [--train-end 2026-01-15]
                                 [--rows 2000000] [--rounds 300] [--repeats 200] [--threads 2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr import Ranker
from ltr.bundle import design_matrix
from ltr.logs import read_logs
from ltr.models import make_model
from ltr.train import default_feature_params, prepare_training, train_ranker

ROOT = Path(__file__).resolve().parents[1]


def _candidates(samples: pd.DataFrame, day: int, n: int, rng: np.random.Generator) -> list[pd.DataFrame]:
    """Frames of ``n`` candidate items for each request of ``day``."""
    requests = samples.loc[samples["day"] == day].drop_duplicates("request_id")
    items = samples["item_id"].unique()
    frames = []
    for row in requests.itertuples(index=False):
        frames.append(pd.DataFrame({
            "request_id": np.full(n, row.request_id),
            "user_id": np.full(n, row.user_id),
            "item_id": rng.choice(items, size=n, replace=False),
            "ts": np.full(n, row.ts, dtype=np.int64),
            "device": np.full(n, row.device, dtype=object),
            "recall_source": rng.choice(np.asarray(samples["recall_source"].unique(), dtype=object), size=n),
        }))
    return frames


def _percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1e3
    return (f"p50 {np.percentile(ms, 50):6.2f} ms   p99 {np.percentile(ms, 99):6.2f} ms   "
            f"mean {ms.mean():6.2f} ms   min {ms.min():6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", default=str(ROOT / "fixtures" / "world"))
    parser.add_argument("--train-end", default="2026-01-15")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows for the training-time benchmark")
    parser.add_argument("--rounds", type=int, default=300, help="LightGBM num_boost_round")
    parser.add_argument("--repeats", type=int, default=200, help="requests timed for serving latency")
    parser.add_argument("--candidates", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="LightGBM training threads")
    parser.add_argument("--skip-scale", action="store_true", help="skip the training-time benchmark")
    args = parser.parse_args()

    logs = read_logs(args.logs)
    # Each model on its own default features (ltr.train's), as a user trains it.
    prepared = {}
    for kind in ("lr", "lgbm"):
        started = time.perf_counter()
        prepared[kind] = data = prepare_training(logs, args.train_end, feature_params=default_feature_params(kind))
        print(f"{kind} features: {data.window['train_rows']} training rows, {data.train_features.X.shape[1]} "
              f"one-hot columns, {data.train_features.dense.shape[1]} raw columns, "
              f"fitted in {time.perf_counter() - started:.1f}s")

    print("\n== held-out comparison "
          f"({data.window['eval_start']}..{data.window['eval_end']}, {len(data.held_out)} rows) ==")
    lgbm_params = {"num_boost_round": args.rounds, "num_threads": args.threads}  # most rounds: early stopping
    rankers = {}
    header = f"{'model':6} {'inputs':7} {'AUC':>7} {'online':>7} {'logloss':>8} {'pred/actual':>11} {'fit s':>7}"
    print(header)
    for name, inputs, params in [("lr", "onehot", {}), ("lgbm", "onehot", lgbm_params),
                                 ("lgbm", "dense", lgbm_params), ("lgbm", "both", lgbm_params)]:
        ranker = train_ranker(logs, name, inputs=inputs, model_params=params, data=prepared[name])
        m, t = ranker.metadata["metrics"], ranker.metadata["training"]
        print(f"{name:6} {inputs:7} {m['auc']:7.4f} {m['online_auc']:7.4f} {m['logloss']:8.4f} "
              f"{m['calibration_ratio']:11.3f} {t['fit_seconds']:7.1f}")
        rankers[(name, inputs)] = ranker

    print(f"\n== serving latency: one request, {args.candidates} candidates, in-process, "
          f"{args.repeats} requests ==")
    rng = np.random.default_rng(0)
    first_day = int(data.held_out["day"].min())
    frames = _candidates(data.samples, first_day, args.candidates, rng)
    frames = [frames[i % len(frames)] for i in range(args.repeats)]
    print("(score() is Ranker.score end to end: frame checks, features, model, wall clock; 'score CPU' the same"
          " calls' CPU time on the scoring thread; 'features' is Ranker.transform; 'model' the model's predict on"
          " its output; compiled = Ranker.load(..., compiled=True), lleaves)")
    for key, compiled in [(("lr", "onehot"), False), (("lgbm", "dense"), False), (("lgbm", "dense"), True),
                          (("lgbm", "both"), False), (("lgbm", "both"), True)]:
        trained = rankers[key]
        started = time.perf_counter()
        ranker = Ranker(trained.features, trained.model, trained.inputs, trained.metadata, compiled=compiled)
        build = time.perf_counter() - started
        predict = ranker._trees.predict if ranker._trees is not None else ranker.model.predict
        started = time.perf_counter()
        ranker.score(frames[0])  # the day's first request builds its per-day tables (every item)
        first = time.perf_counter() - started
        for frame in frames[:20]:
            ranker.score(frame)
        total, cpu, features_only, model_only = [], [], [], []
        for frame in frames:
            t0 = time.perf_counter()
            X, _ = ranker.transform(frame)
            t1 = time.perf_counter()
            predict(X)
            t2 = time.perf_counter()
            c2 = time.thread_time()
            ranker.score(frame)
            cpu.append(time.thread_time() - c2)
            t3 = time.perf_counter()
            features_only.append(t1 - t0)
            model_only.append(t2 - t1)
            total.append(t3 - t2)
        label = f"{key[0]:5} {key[1]:6}" + (" compiled" if compiled else " " * 9)
        note = f"   first request of the day {first * 1e3:.1f} ms" + (f", compiled in {build:.1f}s" if compiled else "")
        print(f"{label} score()   {_percentiles(total)}{note}")
        # CPU time of the scoring thread: what a request costs even when other jobs hold the cores.
        print(f"{'':22} score CPU {_percentiles(cpu)}")
        print(f"{'':22} features  {_percentiles(features_only)}")
        print(f"{'':22} model     {_percentiles(model_only)}")

    if args.skip_scale:
        return
    print(f"\n== training time at {args.rows:,} rows (fixture training rows resampled) ==")
    idx = np.random.default_rng(1).integers(0, data.window["train_rows"], size=args.rows)
    y = data.train["click"].to_numpy()[idx]
    for name, inputs, params in [("lr", "onehot", {}), ("lgbm", "dense", lgbm_params)]:
        X, names = design_matrix(prepared[name].train_features, inputs)
        X = X[idx]
        model = make_model(name, **params)
        t0 = time.perf_counter()
        model.fit(X, y, feature_names=names)
        elapsed = time.perf_counter() - t0
        if name == "lr":
            n_iter, converged = getattr(model, "n_iter_", None), getattr(model, "converged_", None)
            extra = f", lbfgs iterations {n_iter}, converged {converged}"
        else:
            extra = f", {args.rounds} rounds, {args.threads} threads"
        shape = f"{X.shape[0]:,} x {X.shape[1]}" + (f", nnz {X.nnz:,}" if sp.issparse(X) else " dense")
        print(f"{name:5} {inputs:7} {shape}: {elapsed:.1f}s{extra}")


if __name__ == "__main__":
    main()
