"""Recall ablation on held-out days (seed 000's table) beside textbook references.

Rows: NIP, two-tower, NIP without cascade samples, NIP without in-batch negatives, item-CF,
hot list, the RRF fusion of item-CF + hot + NIP (weights learned on the last training day),
and the references popularity, cosine item-CF and EASE (``recall.references``). Columns:
hitrate@50/100/1200 of the held-out days' clicked (and ordered) items. NIP rows score every
item (``exact``, the model's own quality) unless ``--graph``; two-tower uses hnswlib.

Worlds are simulated with the recall options on (exposures drawn from the ranker's top
``--exposure-depth``, ``--interaction``), one table per ``--seeds`` value; or ``--logs`` (a
contract log directory) / ``--slice`` (the KuaiRand development slice directory).

    python bench/bench_recall_ablation.py --items 50000 --users 20000 --days 14 --candidates 900 --seeds 0,1,2
    python bench/bench_recall_ablation.py --slice ../shared/data/kuairand-pure-dev --holdout 1
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_real_recall import _settings, slice_logs

from eval.metrics import hitrate_at_k
from ltr.logs import Logs, day_index, join_samples, read_logs
from ltr.simulate import simulate_world
from recall.hot import HotRecall
from recall.itemcf import ItemCFRecall
from recall.merge import MergedRecall
from recall.neural import NIPRecall, TwoTowerRecall
from recall.references import ReferenceRecall

KS = (50, 100, 1200)


def _hitrate(candidates: pd.DataFrame, targets: pd.DataFrame) -> list[float]:
    if not len(targets):
        return [float("nan")] * len(KS)
    table = hitrate_at_k(candidates, targets, list(KS))
    return [float(table.loc[k, "hitrate"]) for k in KS]


def _models(args: argparse.Namespace) -> dict[str, object]:
    torch_params = {"epochs": args.epochs, "threads": args.threads, "seed": args.seed}
    settings = _settings(args.set)
    nip = {**torch_params, **settings.get("nip", {})}
    two_tower = {**torch_params, **settings.get("two_tower", {})}
    return {
        "NIP (full cascade)": NIPRecall(**{**nip, "cascade": True}),  # type: ignore[arg-type]
        "two-tower": TwoTowerRecall(**{**two_tower, "cascade": True}),  # type: ignore[arg-type]
        "NIP no cascade samples": NIPRecall(**{**nip, "cascade": False}),  # type: ignore[arg-type]
        "two-tower no cascade samples": TwoTowerRecall(**{**two_tower, "cascade": False}),  # type: ignore[arg-type]
        "NIP no cascade, no in-batch negatives": NIPRecall(  # type: ignore[arg-type]
            **{**nip, "cascade": False, "in_batch": False}),
        "item-CF": ItemCFRecall(),
        "hot": HotRecall(),
        "fused item-CF+hot+NIP (no cascade)": MergedRecall(sources=("itemcf", "hot", "nip"), learn_weights=True,
                                                           source_params={"nip": {**nip, "cascade": False}}),
        "ref popularity": ReferenceRecall("popularity"),
        "ref cosine item-CF": ReferenceRecall("cosine"),
        "ref EASE": ReferenceRecall("ease"),
    }


def run(logs: Logs, args: argparse.Namespace, title: str) -> pd.DataFrame:
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    end = int(days.max()) - args.holdout
    held = logs.requests.loc[days > end]
    samples = join_samples(logs).samples
    samples = samples.loc[samples["request_id"].isin(held["request_id"])]
    clicks = samples.loc[samples["click"] > 0, ["request_id", "item_id"]]
    orders = samples.loc[samples["order"] > 0, ["request_id", "item_id"]]
    held = held.loc[held["request_id"].isin(clicks["request_id"])]  # requests without a target count for nothing
    print(f"\n== {title}: {len(held):,d} held-out requests with clicks, {len(clicks):,d} clicked and "
          f"{len(orders):,d} ordered targets, {0 if logs.items is None else len(logs.items):,d} items", flush=True)
    wanted = None if args.only is None else set(args.only.split(","))
    rows = {}
    for name, model in _models(args).items():
        if wanted is not None and name not in wanted:
            continue
        t0 = time.perf_counter()
        model.fit(logs, end)  # type: ignore[attr-defined]
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        options = {"exact": True} if isinstance(model, NIPRecall) and not args.graph else {}
        if isinstance(model, MergedRecall):  # RRF weights learned per K: its list at K is retrieved at K
            lists = [model.retrieve(held, logs, k) for k in KS]
            rows[name] = [_hitrate(c, t)[j] for t in (clicks, orders) for j, c in enumerate(lists)]
        else:
            cands = model.retrieve(held, logs, max(KS), **options)  # type: ignore[attr-defined]
            rows[name] = _hitrate(cands, clicks) + _hitrate(cands, orders)
        print(f"  {name}: fit {fit_s:.0f}s, retrieve {time.perf_counter() - t0:.0f}s; "
              + " ".join(f"{v:.4f}" for v in rows[name]), flush=True)
    columns = [f"click@{k}" for k in KS] + [f"order@{k}" for k in KS]
    table = pd.DataFrame(rows, index=columns).T
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(table.to_string())
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", default=None, help="contract log directory")
    parser.add_argument("--slice", default=None, help="the KuaiRand development slice directory")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--candidates", type=int, default=900)
    parser.add_argument("--exposure-depth", type=int, default=100)
    parser.add_argument("--interaction", default="max")
    parser.add_argument("--holdout", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--graph", action="store_true", help="NIP retrieval through the graph instead of exact")
    parser.add_argument("--seeds", default="0", help="simulated worlds, one per seed")
    parser.add_argument("--seed", type=int, default=0, help="model seed")
    parser.add_argument("--only", default=None, help="comma-separated row names (default all)")
    parser.add_argument("--set", action="append", default=[], metavar="SOURCE.PARAM=VALUE",
                        help="a parameter of the torch rows (nip, two_tower; the fused row's NIP too), "
                             "e.g. --set nip.refit=False (repeatable)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # a script, not library code
    if args.slice:
        run(slice_logs(Path(args.slice), 60), args, f"KuaiRand slice {args.slice}")
    elif args.logs:
        run(read_logs(args.logs), args, args.logs)
    else:
        for seed in (int(s) for s in args.seeds.split(",")):
            logs = simulate_world(users=args.users, items=args.items, days=args.days, seed=seed,
                                  candidates_per_request=args.candidates, exposure_depth=args.exposure_depth,
                                  interaction=args.interaction).logs
            run(logs, args, f"world seed {seed} ({args.items:,d} items, {args.days} days, "
                            f"{args.candidates} candidates, interaction {args.interaction})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
