"""Graph search vs exact scoring for a NIP model trained to convergence, per search setting.

Simulates a world (recall options on: exposures drawn from the ranker's top
``--exposure-depth``, the ``--interaction`` user-item interaction), trains NIP with early
stopping on the last training day (its curve is printed), then prints

* the model's held-out click hitrate@K (exact scoring) next to a popularity list's;
* per (flatness, ef_upper, ef): recall of the exact top-K, share of the catalogue scored,
  single-request latency p50/p99 (``model.search`` of one request with ``logs=None``: the
  history lookup and the profile are included) and batched throughput.

Goal (issue 12): recall >= 0.98 scoring <= 3% of the items, single-request p99 <= 10 ms on 2
cores, at 200k items. ``--save DIR`` keeps the trained models and ``--load DIR`` reuses them (same
world options and seed) to re-measure the search without training again.

    python bench/bench_nip_search.py --items 200000 --users 20000 --days 8 --candidates 100
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.metrics import hitrate_at_k
from ltr.logs import day_index, join_samples
from ltr.simulate import simulate_world
from recall.neural import NIPRecall
from recall.references import ReferenceRecall


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--exposure-depth", type=int, default=50)
    parser.add_argument("--interaction", default="max")
    parser.add_argument("--queries", type=int, default=200, help="held-out requests searched in a batch")
    parser.add_argument("--hit-requests", type=int, default=0,
                        help="held-out requests (with clicks) sampled for the hitrate; 0 = all of them")
    parser.add_argument("--single", type=int, default=100, help="requests timed one at a time")
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--ef", default="200,300,400,600")
    parser.add_argument("--ef-upper", default="32,128")
    parser.add_argument("--expand", default="8,32", help="expand_per_round values")
    parser.add_argument("--flatness", default="0,0.1")
    parser.add_argument("--exhaustive-upper", default="0,1024", help="exhaustive_upper values")
    parser.add_argument("--latency-threads", default="1,2", help="threads for the single-request latency")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="training and batched search threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None,
                        help="save each trained model to SAVE/flatness-<value> (to --load it later)")
    parser.add_argument("--load", type=Path, default=None,
                        help="load the models from LOAD/flatness-<value> instead of training them "
                             "(same world options and seed as when they were saved)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    torch.set_num_threads(args.threads)  # a script, not library code
    t0 = time.perf_counter()
    logs = simulate_world(users=args.users, items=args.items, days=args.days, seed=args.seed,
                          candidates_per_request=args.candidates, exposure_depth=args.exposure_depth,
                          interaction=args.interaction).logs
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    end = int(days.max()) - 1
    held = logs.requests.loc[days > end]
    samples = join_samples(logs).samples
    targets = samples.loc[(samples["click"] > 0) & samples["request_id"].isin(held["request_id"]),
                          ["request_id", "item_id"]]
    held = held.loc[held["request_id"].isin(targets["request_id"])]
    if args.hit_requests and len(held) > args.hit_requests:  # exact scoring of every item is the cost
        held = held.sample(n=args.hit_requests, random_state=args.seed).reset_index(drop=True)
        targets = targets.loc[targets["request_id"].isin(held["request_id"])]
    print(f"world: {args.items:,d} items, {len(logs.requests):,d} requests, {len(logs.clicks):,d} clicks; "
          f"{len(targets):,d} held-out clicks ({time.perf_counter() - t0:.0f}s)", flush=True)
    popular = ReferenceRecall("popularity").fit(logs, end).retrieve(held, logs, args.k)
    pop_hit = float(hitrate_at_k(popular, targets, args.k)["hitrate"].iloc[0])
    queries = held.sample(n=min(args.queries, len(held)), random_state=args.seed).reset_index(drop=True)
    for flatness in (float(v) for v in args.flatness.split(",")):
        t0 = time.perf_counter()
        if args.load is not None:
            model = cast(NIPRecall, NIPRecall.load(args.load / f"flatness-{flatness}"))
            model.threads = args.threads
        else:
            model = NIPRecall(epochs=args.epochs, flatness=flatness, threads=args.threads, seed=args.seed)
            model.fit(logs, end)
        if args.save is not None:
            model.save(args.save / f"flatness-{flatness}")
        curve = ", ".join(f"{p['epoch']:.0f}: loss {p['loss']:.3f} val {p.get('val_hitrate', float('nan')):.4f}"
                          for p in model.curve_)
        exact_all = model.search(held, None, args.k, exact=True)
        rows = np.repeat(held["request_id"].to_numpy(), exact_all.labels.shape[1])
        found = targets.merge(
            pd_frame(rows, model.item_table_.item_ids[exact_all.labels.ravel()]), on=["request_id", "item_id"])
        verb = "loaded" if args.load is not None else "trained"
        print(f"\nflatness {flatness}: {verb} in {time.perf_counter() - t0:.0f}s; curve {curve}")
        print(f"held-out click hitrate@{args.k}: NIP exact {len(found) / len(targets):.4f}, "
              f"popularity {pop_hit:.4f}", flush=True)
        _search_table(model, queries, args)
    return 0


def pd_frame(request_ids: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"request_id": request_ids, "item_id": item_ids})


def _search_table(model: NIPRecall, queries, args: argparse.Namespace) -> None:
    k, n_items = args.k, model.item_table_.n
    exact = model.search(queries, None, k, exact=True)
    lat_threads = [int(v) for v in args.latency_threads.split(",")]
    lat_cols = " ".join(f"{'p50@' + str(t):>7} {'p99@' + str(t):>7} {'cpu50@' + str(t):>7} {'cpu99@' + str(t):>7}"
                        for t in lat_threads)
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}; latency in ms of one request "
          f"(search, history lookup included) at {args.latency_threads} threads, wall clock (p50, p99) and "
          f"process CPU time (cpu50, cpu99); retr: the whole retrieve() of one request (logs=None, "
          f"exclude_seen), wall clock, at {lat_threads[0]} thread(s)")
    print(f"{'exh_up':>6} {'ef_upper':>8} {'expand':>6} {'ef':>5} {'recall@' + str(k):>10} {'scored %':>9} "
          f"{lat_cols} {'retr p50':>8} {'retr p99':>8} {'batch q/s':>9}")
    settings = [(int(x), int(u), int(e)) for x in args.exhaustive_upper.split(",")
                for u in args.ef_upper.split(",") for e in args.expand.split(",")]
    for exhaustive, ef_upper, expand in settings:
        model.exhaustive_upper, model.ef_upper, model.expand_per_round = exhaustive, ef_upper, expand
        model.searcher_ = model._searcher()  # the bench switches the fitted search's settings
        for ef in (int(v) for v in args.ef.split(",")):
            if ef < k:
                continue
            model.threads = args.threads
            t0 = time.perf_counter()
            graph = model.search(queries, None, k, ef_search=ef)
            batch_qps = len(queries) / (time.perf_counter() - t0)
            recall = np.mean([np.intersect1d(g[g >= 0], e[e >= 0]).size / max((e >= 0).sum(), 1)
                              for g, e in zip(graph.labels, exact.labels, strict=True)])
            lat = []
            for threads in lat_threads:
                model.threads = threads
                lat += list(_latency(lambda one, ef=ef: model.search(one, None, k, ef_search=ef), queries, args))
            model.threads, model.ef_search = lat_threads[0], ef
            retr = _latency(lambda one: model.retrieve(one, None, k), queries, args)
            model.ef_search = None
            share = 100 * graph.n_scored.mean() / n_items
            print(f"{exhaustive:>6} {ef_upper:>8} {expand:>6} {ef:>5} {recall:>10.4f} {share:>8.2f}% "
                  + " ".join(f"{v:>7.2f}" for v in lat) + f" {retr[0]:>8.2f} {retr[1]:>8.2f} {batch_qps:>9.0f}",
                  flush=True)
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)


def _latency(call, queries: pd.DataFrame, args: argparse.Namespace) -> tuple[float, ...]:
    """Wall-clock p50, p99 and process CPU time p50, p99 in ms of ``call(one_request_frame)`` over the
    first ``--single`` queries (after one warm-up call). On a shared machine the CPU time shows
    the cost when the wall clock shows the wait for a core too."""
    frames = [queries.iloc[[i]] for i in range(min(args.single, len(queries)))]
    call(frames[0])
    times, cpu = [], []
    for one in frames:
        t0, c0 = time.perf_counter(), time.process_time()
        call(one)
        times.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
    return tuple(float(v) for v in (*np.percentile(times, [50, 99]), *np.percentile(cpu, [50, 99])))


if __name__ == "__main__":
    sys.exit(main())
