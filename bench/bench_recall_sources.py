"""Benchmark item-CF, hot list, their quota merge and their rank fusion on a simulated world,
beside the textbook references (popularity, cosine item-CF over all history, EASE).

Trains on every day but the last ``--test-days``, retrieves for every request of the held-out
days, and prints hitrate@K (share of clicked items found in the top K of the request's list;
``eval.metrics.hitrate_at_k``) overall, for users with click history before the request and
for cold users, plus fit/retrieve timings. The merged list at each K takes the two sources'
top K and merges them with quotas ``--itemcf-share`` x K and the rest for hot; the fused list
at each K is ``MergedRecall(learn_weights=True).retrieve(..., k=K)`` (RRF of the sources' top K,
weights learned for that K on the last training day; "fused one set" uses the one weight set
learned for all K together, ``learn_weights``); the other rows cut their top-max(K) list.

    python bench/bench_recall_sources.py --users 5000 --items 5000 --days 14 --seed 0
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.metrics import hitrate_at_k
from ltr.logs import day_index, read_logs
from ltr.simulate import simulate_world
from recall.hot import HotRecall
from recall.itemcf import ItemCFRecall
from recall.merge import MARGIN_Z, MergedRecall, _scale_quotas, merge
from recall.references import ReferenceRecall


def _hitrate(cands: pd.DataFrame, targets: pd.DataFrame, k: int) -> float:
    if not len(targets):
        return float("nan")
    return float(hitrate_at_k(cands, targets, k)["hitrate"].iloc[0])


def _sources(seen: str, margin_z: float) -> tuple[tuple[str, object], ...]:
    return (("itemcf", ItemCFRecall(exclude_seen=seen)), ("hot", HotRecall(exclude_seen=seen)),
            ("fused", MergedRecall(learn_weights=True, exclude_seen=seen, margin_z=margin_z)),
            ("ref popularity", ReferenceRecall("popularity")), ("ref cosine", ReferenceRecall("cosine")),
            ("ref EASE", ReferenceRecall("ease")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", default=None, help="a contract log directory instead of a simulated world")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--test-days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", type=int, default=50, help="simulated online candidates per request")
    parser.add_argument("--ks", default="50,100,200,400,800,1200")
    parser.add_argument("--itemcf-share", type=float, default=0.5)
    parser.add_argument("--exclude-seen", default="clicks", choices=["clicks", "exposures", "none"])
    parser.add_argument("--margin-z", type=float, default=MARGIN_Z,
                        help="the fused row's noise margin (MergedRecall margin_z; 0: none)")
    parser.add_argument("--no-refs", action="store_true", help="skip the reference rows (popularity, cosine, EASE)")
    args = parser.parse_args(argv)
    ks = [int(v) for v in args.ks.split(",")]
    k_max = max(ks)

    t0 = time.perf_counter()
    logs = read_logs(args.logs) if args.logs else simulate_world(
        users=args.users, items=args.items, days=args.days, seed=args.seed, candidates_per_request=args.candidates).logs
    n_items = 0 if logs.items is None else len(logs.items)
    print(f"world: {len(logs.requests):,d} requests, {len(logs.exposures):,d} exposures, "
          f"{len(logs.clicks):,d} clicks, {n_items:,d} items ({time.perf_counter() - t0:.1f} s)")
    req_day = day_index(logs.requests["ts"].to_numpy(), logs.tz)
    train_end = int(req_day.max()) - args.test_days
    test = logs.requests.loc[req_day > train_end]
    clicks = logs.clicks.loc[logs.clicks["request_id"].isin(test["request_id"])]
    targets = clicks[["request_id", "item_id"]].drop_duplicates()
    test = test.loc[test["request_id"].isin(targets["request_id"])]  # no target, no say in any hitrate
    # A user "has history" when they clicked anything strictly before the request.
    user_of = logs.requests.set_index("request_id")["user_id"]
    click_user = user_of.reindex(logs.clicks["request_id"].to_numpy()).to_numpy()
    first_click = pd.Series(logs.clicks["ts"].to_numpy()).groupby(click_user).min()
    t_user = user_of.reindex(targets["request_id"].to_numpy()).to_numpy()
    t_ts = logs.requests.set_index("request_id")["ts"].reindex(targets["request_id"].to_numpy()).to_numpy()
    warm = first_click.reindex(t_user).to_numpy(dtype=float, na_value=np.inf) < t_ts
    print(f"train days <= {train_end}; held-out: {len(test):,d} requests, {len(targets):,d} clicked items "
          f"({warm.mean():.1%} from users with history)")

    results: dict[str, pd.DataFrame] = {}
    timing: dict[str, tuple[float, float]] = {}
    fused: dict[str, dict[int, pd.DataFrame]] = {}
    for name, source in _sources(args.exclude_seen, args.margin_z):
        if args.no_refs and name.startswith("ref "):
            continue
        t = time.perf_counter()
        source.fit(logs, train_end)  # type: ignore[attr-defined]
        t_fit = time.perf_counter() - t
        t = time.perf_counter()
        results[name] = source.retrieve(test, logs, k_max)  # type: ignore[attr-defined]
        timing[name] = (t_fit, time.perf_counter() - t)
        if name == "fused":  # its list at K is retrieved at K (weights learned per K)
            learned = source.weights_  # type: ignore[attr-defined]
            one = MergedRecall(weights=tuple(learned.values()), exclude_seen=args.exclude_seen).fit(logs, train_end)
            fused = {"fused": {k: source.retrieve(test, logs, k) for k in ks},  # type: ignore[attr-defined]
                     "fused one set": {k: one.retrieve(test, logs, k) for k in ks}}
            print(f"fused: one set for all K {learned}; per K {source.weights_by_k_}, depth {source.depth_by_k_}")  # type: ignore[attr-defined]
            print(f"fused: margin_z {args.margin_z}, per K {source.margin_by_k_}")  # type: ignore[attr-defined]
    merged = {}
    t = time.perf_counter()
    for k in ks:
        quotas = _scale_quotas({"itemcf": max(1, round(args.itemcf_share * 1000)),
                                "hot": max(1, round((1 - args.itemcf_share) * 1000))}, k)
        top = {n: results[n].loc[results[n]["rank"] <= k] for n in ("itemcf", "hot")}
        merged[k] = merge(top, quotas, k=k)
    timing["merged"] = (0.0, (time.perf_counter() - t) / len(ks))

    rows = []
    for name in ("itemcf", "hot", "merged", "fused", "fused one set", "ref popularity", "ref cosine", "ref EASE"):
        if name not in results and name not in fused and name != "merged":
            continue
        for seg, mask in (("all", np.ones(len(targets), bool)), ("with history", warm), ("cold", ~warm)):
            row = {"source": name, "users": seg, "n_targets": int(mask.sum())}
            for k in ks:
                cands = merged[k] if name == "merged" else fused[name][k] if name in fused else results[name]
                row[f"hitrate@{k}"] = _hitrate(cands, targets.loc[mask], k)
            rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False))
    for seg in ("all", "with history"):
        part = table.loc[table["users"] == seg].set_index("source")
        col = [f"hitrate@{k}" for k in ks]
        for combined in ("merged", "fused", "fused one set"):
            gap = part.loc[combined, col] - part.loc[["itemcf", "hot"], col].max()
            gaps = ", ".join(f"@{k}: {g:+.4f}" for k, g in zip(ks, gap, strict=True))
            print(f"{combined} minus best single source ({seg}): {gaps}")
    for name, (fit_s, ret_s) in timing.items():
        if name == "merged":
            what = f"merge (mean over K) {ret_s:6.2f} s"
        else:
            what = f"fit {fit_s:6.2f} s  retrieve top-{k_max} {ret_s:6.2f} s"
        print(f"{name:7s} {what} for {len(test):,d} requests ({1e3 * ret_s / max(len(test), 1):.3f} ms/request)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
