"""Benchmark: NANN-style graph search with a non-inner-product scorer vs exact.

A clustered item catalogue, an hnswlib L2 graph on the item vectors, and a
fixed random torch MLP over [interest, item, interest * item] as the scorer
(no user vector, so not an inner product). For several ef0 values it prints
recall@K against the exact top-K, the share of the catalogue scored, the number
of scorer calls (search rounds) per batch, and the latency per query, batched
and one query at a time, on ``--threads`` torch threads (2 by default, the
serving budget); "(scorer)" is the part of it spent inside the model, the rest
is the search's own overhead.

The target for the trained NIP model is recall >= 0.98 while scoring <= 3% of
the items in < 10 ms per query; a random MLP has no reason to agree with the L2
geometry of the graph, so its figures are a pessimistic stand-in.

    python bench/bench_hnsw_search.py                 # 200k items
    python bench/bench_hnsw_search.py --items 20000   # quick run
    python bench/bench_hnsw_search.py --graph-cache bench/out/g200k.bin  # reuse the graph
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recall.hnsw import LayeredBeamSearch, build_index, exact_search, read_graph, save


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--single-queries", type=int, default=50,
                        help="queries timed one at a time")
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--ef0", type=int, nargs="+", default=[400, 800, 1500, 2500])
    parser.add_argument("--expand", type=int, nargs="+", default=[32],
                        help="expand_per_round values")
    parser.add_argument("--ef-upper", type=int, nargs="+", default=[32, 128],
                        help="ef_upper values (beam width on levels >= 1)")
    parser.add_argument("--rounds-upper", type=int, default=4)
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--graph-cache", type=Path, default=None,
                        help="hnswlib index file to reuse (written if missing)")
    return parser.parse_args()


def _world(args):
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim)).astype(np.float32)
    assign = rng.integers(0, args.clusters, size=args.items)
    items = centres[assign] + 0.35 * rng.standard_normal((args.items, args.dim))
    # A user's interest mixes two clusters they like, plus noise.
    picks = rng.integers(0, args.clusters, size=(args.queries, 2))
    weights = rng.dirichlet([1.0, 1.0], size=args.queries).astype(np.float32)
    interest = (weights[:, :1] * centres[picks[:, 0]] + weights[:, 1:] * centres[picks[:, 1]]
                + 0.35 * rng.standard_normal((args.queries, args.dim)))
    return items.astype(np.float32), interest.astype(np.float32)


def _scorer(items, interest, args):
    torch.manual_seed(args.seed)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(3 * args.dim, args.hidden), torch.nn.ReLU(),
        torch.nn.Linear(args.hidden, args.hidden // 2), torch.nn.ReLU(),
        torch.nn.Linear(args.hidden // 2, 1),
    ).eval()
    item_t = torch.from_numpy(items)
    user_t = torch.from_numpy(interest)

    def score_fn(query_index: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            u = user_t[torch.from_numpy(query_index)]
            v = item_t[torch.from_numpy(item_ids)]
            return mlp(torch.cat((u, v, u * v), dim=1)).squeeze(1).numpy()

    return score_fn


def main() -> None:
    args = _parse_args()
    torch.set_num_threads(args.threads)
    items, interest = _world(args)
    score_fn = _scorer(items, interest, args)
    print(f"catalogue {args.items} items x {args.dim} dims in {args.clusters} clusters, "
          f"{args.queries} queries, k={args.k}, torch threads={torch.get_num_threads()}")

    start = time.perf_counter()
    cache = args.graph_cache
    if cache is not None and cache.exists():
        graph = read_graph(cache, args.dim)
        print(f"graph read from {cache}: {time.perf_counter() - start:.1f} s")
    else:
        index = build_index(items, M=args.M, ef_construction=args.ef_construction,
                            seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            path = cache if cache is not None else Path(tmp) / "items.bin"
            save(index, path)
            graph = read_graph(path, args.dim)
        del index
        print(f"hnswlib build (1 thread) + parse: {time.perf_counter() - start:.1f} s")
    if graph.n_nodes != args.items:
        raise SystemExit(f"--graph-cache holds {graph.n_nodes} items, not {args.items}")
    print(f"graph: max level {graph.max_level}, M={graph.M}")

    queries = np.arange(args.queries)
    start = time.perf_counter()
    exact = exact_search(score_fn, queries, args.items, args.k,
                         batch_size=max(args.items, 1 << 18))
    exact_ms = 1e3 * (time.perf_counter() - start) / args.queries
    print(f"exact: {exact_ms:.1f} ms/query (scores 100% of items)")

    timer = _TimedScorer(score_fn)
    header = (f"{'ef_up':>5} {'ef0':>5} {'expand':>6} {'recall@' + str(args.k):>10} "
              f"{'scored %':>9} {'calls':>6} {'batch ms/q':>11} {'(scorer)':>9} "
              f"{'single ms/q':>12} {'(scorer)':>9}")
    print(header)
    for ef_upper in args.ef_upper:
        for expand in args.expand:
            for ef0 in args.ef0:
                search = LayeredBeamSearch(
                    ef0=ef0, ef_upper=ef_upper, rounds_upper=args.rounds_upper,
                    expand_per_round=expand, query_batch_size=args.queries,
                ).fit(graph)
                timer.reset()
                start = time.perf_counter()
                found = search.search(timer, queries, args.k)
                batch_ms = 1e3 * (time.perf_counter() - start) / args.queries
                batch_scorer_ms = 1e3 * timer.seconds / args.queries
                calls = timer.calls
                timer.reset()
                start = time.perf_counter()
                for q in queries[: args.single_queries]:
                    search.search(timer, np.array([q]), args.k)
                single_ms = 1e3 * (time.perf_counter() - start) / args.single_queries
                single_scorer_ms = 1e3 * timer.seconds / args.single_queries
                recall = np.mean([
                    np.intersect1d(a[a >= 0], b[b >= 0]).size / args.k
                    for a, b in zip(found.labels, exact.labels, strict=True)
                ])
                share = 100 * found.n_scored.mean() / args.items
                print(f"{ef_upper:>5} {ef0:>5} {expand:>6} {recall:>10.4f} {share:>9.2f} "
                      f"{calls:>6} {batch_ms:>11.2f} {batch_scorer_ms:>9.2f} "
                      f"{single_ms:>12.2f} {single_scorer_ms:>9.2f}", flush=True)


class _TimedScorer:
    """Wraps a scorer to split latency into model time and search overhead."""

    def __init__(self, score_fn) -> None:
        self.score_fn = score_fn
        self.reset()

    def reset(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, query_index: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self.score_fn(query_index, item_ids)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


if __name__ == "__main__":
    main()
