"""Graph search vs exact scoring for a *trained* NIP model on a simulated catalogue.

Prints, for several bottom-level beam widths ``ef``: top-K recall of the layered graph
search against brute-force top-K (same model), the share of the catalogue scored per query,
and milliseconds per query. Goal (seed 000 / NANN): recall >= 0.98 scoring <= 3% of the
items, < 10 ms per query on 2 threads, at 200k items.

    .venv/bin/python bench/bench_nip_search.py --items 200000 --users 20000 --days 3
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ltr.logs import day_index
from ltr.simulate import simulate_world
from recall.neural._nip import NIPRecall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--queries", type=int, default=50, help="requests searched (exact scoring is the cost)")
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--ef", default="200,300,500,800")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # a script, not library code

    t0 = time.perf_counter()
    logs = simulate_world(users=args.users, items=args.items, days=args.days, seed=args.seed,
                          candidates_per_request=args.candidates).logs
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    end = int(days.max()) - 1
    print(f"world: {args.items:,d} items, {len(logs.requests):,d} requests, {len(logs.clicks):,d} clicks "
          f"({time.perf_counter() - t0:.1f}s)")
    t0 = time.perf_counter()
    model = NIPRecall(epochs=args.epochs, seed=args.seed, verbose=True).fit(logs, end)
    print(f"trained NIP on {model.n_train_positives_:,d} positives + indexed {model.item_table_.n:,d} items "
          f"({time.perf_counter() - t0:.1f}s); graph levels {model.graph_.max_level + 1}")
    held = logs.requests.loc[days > end]
    queries = held.sample(n=min(args.queries, len(held)), random_state=args.seed).sort_values("ts")

    t0 = time.perf_counter()
    exact = model.search(queries, logs, args.k, exact=True)
    exact_ms = 1000 * (time.perf_counter() - t0) / len(queries)
    n_items = model.item_table_.n
    print(f"exact: {exact_ms:.1f} ms/query (scores all {n_items:,d} items)")
    print(f"{'ef':>6} {'recall@' + str(args.k):>11} {'scored %':>9} {'ms/query':>9}")
    for ef in (int(v) for v in args.ef.split(",")):
        t0 = time.perf_counter()
        graph = model.search(queries, logs, args.k, ef_search=ef)
        ms = 1000 * (time.perf_counter() - t0) / len(queries)
        hits = [np.intersect1d(g[g >= 0], e[e >= 0]).size / max((e >= 0).sum(), 1)
                for g, e in zip(graph.labels, exact.labels, strict=True)]
        share = 100 * graph.n_scored.mean() / n_items
        print(f"{ef:>6} {np.mean(hits):>11.4f} {share:>8.2f}% {ms:>9.1f}")


if __name__ == "__main__":
    main()
