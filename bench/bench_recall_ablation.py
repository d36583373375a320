"""Recall ablation on held-out days (seed 000's table): hitrate@50/100/1200 of clicked and
ordered items for NIP, two-tower, NIP without cascade samples, NIP without in-batch negatives.

Models train on days up to the last ``--holdout`` days of a simulated world (or ``--logs``)
and retrieve for every held-out request from clicks strictly before it. NIP rows score every
item (``exact``, the model's own quality) unless ``--graph``; two-tower uses hnswlib.

    .venv/bin/python bench/bench_recall_ablation.py --logs fixtures/world
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from eval.metrics import hitrate_at_k
from ltr.logs import day_index, join_samples, read_logs
from ltr.simulate import simulate_world
from recall.neural._nip import NIPRecall
from recall.neural._two_tower import TwoTowerRecall

KS = (50, 100, 1200)


def _hitrate(candidates: pd.DataFrame, targets: pd.DataFrame) -> list[float]:
    table = hitrate_at_k(candidates, targets, list(KS))
    return [float(table.loc[k, "hitrate"]) for k in KS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", default=None, help="log directory (default: simulate a world)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--holdout", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--graph", action="store_true", help="NIP retrieval through the graph instead of exact")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # a script, not library code

    logs = read_logs(args.logs) if args.logs else simulate_world(
        users=args.users, items=args.items, days=args.days, seed=args.seed).logs
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    end = int(days.max()) - args.holdout
    held = logs.requests.loc[days > end]
    samples = join_samples(logs).samples
    samples = samples.loc[samples["request_id"].isin(held["request_id"])]
    clicks = samples.loc[samples["click"] > 0, ["request_id", "item_id"]]
    orders = samples.loc[samples["order"] > 0, ["request_id", "item_id"]]
    print(f"{len(held):,d} held-out requests, {len(clicks):,d} clicked and {len(orders):,d} ordered targets, "
          f"{logs.items['item_id'].nunique():,d} items")
    models = {
        "NIP (full cascade)": NIPRecall(epochs=args.epochs, seed=args.seed),
        "two-tower": TwoTowerRecall(epochs=args.epochs, seed=args.seed),
        "NIP no cascade samples": NIPRecall(epochs=args.epochs, seed=args.seed, cascade=False),
        "NIP no in-batch negatives": NIPRecall(epochs=args.epochs, seed=args.seed, in_batch=False),
    }
    header = "".join(f"{'click@' + str(k):>12}" for k in KS) + "".join(f"{'order@' + str(k):>12}" for k in KS)
    rows = []
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(logs, end)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        exact = isinstance(model, NIPRecall) and not args.graph
        cands = model.retrieve(held, logs, max(KS), exact=exact)
        rows.append((name, _hitrate(cands, clicks) + _hitrate(cands, orders), fit_s, time.perf_counter() - t0))
        print(f"  {name}: fit {fit_s:.0f}s, retrieve {rows[-1][3]:.0f}s", flush=True)
    print(f"{'model':<28}{header}")
    for name, values, _, _ in rows:
        print(f"{name:<28}" + "".join(f"{v:>12.4f}" for v in values))
    print("\nrelative to two-tower:")
    tt = rows[1][1]
    for name, values, _, _ in rows:
        lifts = [(v / t - 1) * 100 if t else float("nan") for v, t in zip(values, tt, strict=True)]
        print(f"{name:<28}" + "".join(f"{lift:>+11.1f}%" for lift in lifts))


if __name__ == "__main__":
    main()
