"""Recall on real logs: the project's sources beside textbook references, two protocols.

Input: a contract log directory (``python -m ltr.logs import ...``), or the KuaiRand
development slice directory itself (``interactions.parquet``, ``items.csv``, ``users.csv``),
converted here with the importer's rules (requests = a user's consecutive exposures in one
tab at most ``--gap`` seconds apart, ms timestamps, Asia/Shanghai days, ``tag`` as category).

Train on days up to ``--train-end``, then on the next day:

* **next item**: each user's first click of the day (users who clicked before); Hit@10/50/100
  of the list retrieved for that click's request (history strictly before the request);
* **funnel**: every clicked item of the day's requests; hitrate@50/100/1200.

Rows: textbook popularity, cosine item-CF over all history and EASE (``recall.references``),
and the project's item-CF, hot list, NIP (exact and graph search), two-tower and the RRF
fusion (weights learned on the last training day, one set per K: its list at each K is
retrieved at that K, and the sources fitted inside it are printed alone beside it). The last
lines give the best project source's Hit@10 over the better of cosine item-CF and EASE.

    python bench/bench_real_recall.py ../shared/data/kuairand-pure-dev --train-end 2022-04-29
"""
from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.metrics import hitrate_at_k
from ltr.logs import Logs, day_index, events_with_users, from_frames, parse_day, read_logs
from recall.hot import HotRecall
from recall.itemcf import ItemCFRecall
from recall.merge import MARGIN_Z, MergedRecall
from recall.neural import NIPRecall, TwoTowerRecall
from recall.references import ReferenceRecall

NEXT_KS = (10, 50, 100)
FUNNEL_KS = (50, 100, 1200)
TZ = "Asia/Shanghai"


def slice_logs(root: Path, gap: int) -> Logs:
    """The KuaiRand slice as contract logs (the importer's rules, see module docstring)."""
    flat = pd.read_parquet(root / "interactions.parquet").sort_values(["user_id", "time_ms"], kind="stable")
    ts = flat["time_ms"].to_numpy(dtype=np.int64) // 1000
    user, tab = flat["user_id"].to_numpy(), flat["tab"].to_numpy()
    new = np.r_[True, (user[1:] != user[:-1]) | (tab[1:] != tab[:-1]) | (np.diff(ts) > gap)]
    request = np.cumsum(new)
    first = np.flatnonzero(new)
    position = np.arange(len(flat)) - first[request - 1] + 1
    requests = pd.DataFrame({"request_id": request[first], "ts": ts[first], "user_id": user[first],
                             "tab": tab[first].astype(str)})
    exposures = pd.DataFrame({"request_id": request, "item_id": flat["video_id"].to_numpy(), "ts": ts,
                              "position": position})
    clicked = flat["is_click"].to_numpy(dtype=float) > 0
    clicks = exposures.loc[clicked, ["request_id", "item_id", "ts"]]
    items = pd.read_csv(root / "items.csv")
    items = pd.DataFrame({"item_id": items["video_id"],
                          "category": items["tag"].astype("string").fillna("none").astype(str)})
    users = pd.read_csv(root / "users.csv")
    users = users[["user_id", *[c for c in ("user_active_degree", "is_lowactive_period", "follow_user_num_range",
                                             "register_days_range") if c in users.columns]]].astype(str)
    users["user_id"] = users["user_id"].astype(np.int64)
    return from_frames(requests=requests, exposures=exposures, clicks=clicks.reset_index(drop=True),
                       items=items, users=users, tz=TZ)


def next_item_targets(logs: Logs, day: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests and targets of each user's first click on ``day`` (users with earlier clicks)."""
    clicks = events_with_users(logs, "clicks").sort_values(["ts", "request_id"], kind="stable")
    first_ever = clicks.groupby("user_id")["ts"].min()
    today = clicks.loc[day_index(clicks["ts"].to_numpy(), logs.tz) == day].drop_duplicates("user_id")
    today = today.loc[first_ever.reindex(today["user_id"]).to_numpy() < today["ts"].to_numpy()]
    return (logs.requests.loc[logs.requests["request_id"].isin(today["request_id"])],
            today[["request_id", "item_id"]].reset_index(drop=True))


def _hitrates(candidates: pd.DataFrame, targets: pd.DataFrame, ks: tuple[int, ...]) -> list[float]:
    table = hitrate_at_k(candidates, targets, list(ks))
    return [float(table.loc[k, "hitrate"]) for k in ks]


def _fused_rows(source: MergedRecall, name: str, reads: tuple, ks: tuple[tuple[int, ...], ...]
                ) -> dict[str, list[float]]:
    """The fused row retrieved at each K (weights learned per K), and each source fitted inside
    it alone (its top max(K) cut at K), then its margin over the best of them."""
    rows = {name: [_hitrates(source.retrieve(req, logs, k), targets, (k,))[0]
                   for (req, logs, targets), part in zip(reads, ks, strict=True) for k in part]}
    for sub, fitted in source.sources_.items():
        rows[f"  {sub} (fitted inside the fused row)"] = [
            v for (req, logs, targets), part in zip(reads, ks, strict=True)
            for v in _hitrates(fitted.retrieve(req, logs, max(part)), targets, part)]
    best = np.max([v for key, v in rows.items() if key != name], axis=0)
    flat = [k for part in ks for k in part]
    print(f"  {name}: margin_z {source.margin_z}, margin per K {source.margin_by_k_}", flush=True)
    print(f"  {name}: weights per K {source.weights_by_k_}, depth {source.depth_by_k_}; minus the best of its sources: "
          + ", ".join(f"@{k} {d:+.4f}" for k, d in zip(flat, np.array(rows[name]) - best, strict=True)), flush=True)
    return rows


def _settings(pairs: list[str]) -> dict[str, dict[str, object]]:
    """``--set itemcf.alpha=0.9`` -> {"itemcf": {"alpha": 0.9}} (values as Python literals)."""
    out: dict[str, dict[str, object]] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        source, _, name = key.partition(".")
        out.setdefault(source, {})[name] = ast.literal_eval(value)
    return out


def sources(args: argparse.Namespace) -> dict[str, object]:
    torch_params = {"epochs": args.epochs, "threads": args.threads, "seed": args.seed, "verbose": args.verbose}
    settings = _settings(args.set)
    return {
        "ref popularity": ReferenceRecall("popularity"),
        "ref cosine item-CF": ReferenceRecall("cosine"),
        "ref EASE": ReferenceRecall("ease", lam=args.ease_lambda),
        "itemcf": ItemCFRecall(**settings.get("itemcf", {})),  # type: ignore[arg-type]
        "hot": HotRecall(**settings.get("hot", {})),  # type: ignore[arg-type]
        "nip (exact)": NIPRecall(**{**torch_params, **settings.get("nip", {})}),  # type: ignore[arg-type]
        "two-tower": TwoTowerRecall(**{**torch_params, **settings.get("two_tower", {})}),  # type: ignore[arg-type]
        "fused itemcf+hot+nip (learned RRF)": MergedRecall(
            sources=("itemcf", "hot", "nip"), learn_weights=True, margin_z=args.margin_z,
            source_params={"itemcf": settings.get("itemcf", {}), "hot": settings.get("hot", {}),
                           "nip": {**torch_params, **settings.get("nip", {})}}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", help="contract log directory, or the KuaiRand slice directory")
    parser.add_argument("--train-end", required=True, help="last training day, YYYY-MM-DD (the next day is tested)")
    parser.add_argument("--gap", type=int, default=60, help="request gap in seconds (slice conversion)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--ease-lambda", type=float, default=200.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="print the NIP / two-tower training curves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--funnel-ks", default=",".join(map(str, FUNNEL_KS)), help="funnel hitrate@K columns")
    parser.add_argument("--margin-z", type=float, default=MARGIN_Z,
                        help="the fused row's noise margin (MergedRecall margin_z; 0: none)")
    parser.add_argument("--only", default=None, help="comma-separated row names to run (default all)")
    parser.add_argument("--set", action="append", default=[], metavar="SOURCE.PARAM=VALUE",
                        help="a parameter of a source (itemcf, hot, nip, two_tower; the fused row's too), "
                             "e.g. --set hot.bin_hours=24 or --set nip.cascade=False (repeatable)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # a script, not library code
    root = Path(args.logs)
    logs = slice_logs(root, args.gap) if (root / "interactions.parquet").is_file() else read_logs(root, tz=TZ)
    funnel_ks = tuple(int(v) for v in args.funnel_ks.split(","))
    train_end = parse_day(args.train_end, "--train-end")
    test_day = train_end + 1
    next_req, next_targets = next_item_targets(logs, test_day)
    days = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    funnel_req = logs.requests.loc[days == test_day]
    funnel_targets = logs.clicks.loc[logs.clicks["request_id"].isin(funnel_req["request_id"]),
                                     ["request_id", "item_id"]].drop_duplicates()
    # Requests without clicks hold no target: retrieving for them changes no hitrate.
    funnel_req = funnel_req.loc[funnel_req["request_id"].isin(funnel_targets["request_id"])]
    n_items = 0 if logs.items is None else len(logs.items)
    print(f"{len(logs.requests):,d} requests, {len(logs.clicks):,d} clicks, {n_items:,d} items; "
          f"test day {args.train_end} + 1: {len(next_targets):,d} next-item targets, "
          f"{len(funnel_targets):,d} funnel targets in {len(funnel_req):,d} requests")
    wanted = None if args.only is None else set(args.only.split(","))
    rows = {}
    for name, source in sources(args).items():
        if wanted is not None and name not in wanted:
            continue
        t0 = time.perf_counter()
        source.fit(logs, train_end)  # type: ignore[attr-defined]
        fit_s = time.perf_counter() - t0
        if isinstance(source, MergedRecall):
            t0 = time.perf_counter()
            rows.update(_fused_rows(source, name, ((next_req, logs, next_targets), (funnel_req, logs, funnel_targets)),
                                    (NEXT_KS, funnel_ks)))
            print(f"  {name}: fit {fit_s:.1f}s, retrieve {time.perf_counter() - t0:.1f}s; "
                  + " ".join(f"{v:.4f}" for v in rows[name]), flush=True)
            continue
        # The NIP model is fitted once and read twice: exact scoring and its graph search.
        readings = ([(name, {"exact": True}), ("nip (graph search)", {})] if "exact" in name
                    else [(name, {})])
        for row, options in readings:
            t0 = time.perf_counter()
            nxt = source.retrieve(next_req, logs, max(NEXT_KS), **options)  # type: ignore[attr-defined]
            fun = source.retrieve(funnel_req, logs, max(funnel_ks), **options)  # type: ignore[attr-defined]
            rows[row] = _hitrates(nxt, next_targets, NEXT_KS) + _hitrates(fun, funnel_targets, funnel_ks)
            print(f"  {row}: fit {fit_s:.1f}s, retrieve {time.perf_counter() - t0:.1f}s; "
                  + " ".join(f"{v:.4f}" for v in rows[row]), flush=True)
    header = [f"next Hit@{k}" for k in NEXT_KS] + [f"funnel @{k}" for k in funnel_ks]
    table = pd.DataFrame(rows, index=header).T
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(table.to_string())
    refs = [n for n in ("ref cosine item-CF", "ref EASE") if n in table.index]
    ours = [n for n in table.index if not n.startswith("ref ")]
    if refs and ours:
        best_ref = table.loc[refs, "next Hit@10"].max()
        best = table.loc[ours, "next Hit@10"].idxmax()
        print(f"best project source at next Hit@10: {best} {table.loc[best, 'next Hit@10']:.4f} = "
              f"{table.loc[best, 'next Hit@10'] / best_ref:.3f} x the better reference ({best_ref:.4f})")
        if "itemcf" in table.index and "ref cosine item-CF" in table.index:
            print(f"itemcf / cosine item-CF at next Hit@10: "
                  f"{table.loc['itemcf', 'next Hit@10'] / table.loc['ref cosine item-CF', 'next Hit@10']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
