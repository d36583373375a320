"""Time the full experiment readout (eval.report) on a simulated world of ~1M exposures.

    .venv/bin/python bench/bench_report.py [--users 50000 --items 50000 --days 14 --seed 0]

Steps timed: simulate the world, join samples, build the readout (its own steps are printed
on stderr by ``build_readout``: the A/B step includes the A/A self-check's 200 splits, the daily
view and the ``device`` segments), render each format (HTML draws the matplotlib plots), and AUC
of the online ``rank_score`` on the same rows (``auc_table``, checked against scikit-learn's
``roc_auc_score``).

Two recall candidate sets feed the recall funnel: ``logged`` (the online ranker's logged
candidates of the last ``--recall-days`` days, ``rank = rank_pos``) and ``popular`` (the
``--popular-k`` most exposed items before those days, the same list for every request of
those days). Nothing is asserted; the script prints figures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.online_offline import auc_table
from eval.report import FORMATS, build_readout, render
from ltr.logs import join_samples
from ltr.simulate import simulate_world


def timed(name: str, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"{name:<42s} {time.perf_counter() - start:8.2f} s", flush=True)
    return out


def recall_sets(logs, samples: pd.DataFrame, days: int, popular_k: int) -> dict[str, pd.DataFrame]:
    last = int(samples["day"].max())
    late = samples.loc[samples["day"] > last - days]
    late_requests = late["request_id"].unique()
    logged = logs.candidates.loc[logs.candidates["request_id"].isin(late_requests)]
    logged = pd.DataFrame({"request_id": logged["request_id"].to_numpy(), "item_id": logged["item_id"].to_numpy(),
                           "rank": logged["rank_pos"].to_numpy(), "source": "logged"})
    counts = samples.loc[samples["day"] <= last - days, "item_id"].value_counts()
    top = counts.index.to_numpy()[:popular_k]
    popular = pd.DataFrame({"request_id": np.repeat(late_requests, len(top)),
                            "item_id": np.tile(top, len(late_requests)),
                            "rank": np.tile(np.arange(1, len(top) + 1), len(late_requests)), "source": "popular"})
    return {"logged": logged, "popular": popular}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--requests-per-user-day", type=float, default=0.15)
    parser.add_argument("--candidates", type=int, default=200, help="candidate draws per request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recall-days", type=int, default=2)
    parser.add_argument("--popular-k", type=int, default=1200)
    args = parser.parse_args(argv)

    total = time.perf_counter()
    world = timed("simulate_world", simulate_world, users=args.users, items=args.items, days=args.days,
                  requests_per_user_day=args.requests_per_user_day, candidates_per_request=args.candidates,
                  seed=args.seed)
    logs = world.logs
    joined = timed("join_samples", join_samples, logs)
    samples = joined.samples
    print(f"  requests {len(logs.requests):,d}  exposures {len(samples):,d}  logged candidates "
          f"{len(logs.candidates):,d}  clicks {int(samples['click'].sum()):,d}  "
          f"orders {int(samples['order'].sum()):,d}")
    cands = timed("recall candidate sets", recall_sets, logs, samples, args.recall_days, args.popular_k)
    for name, frame in cands.items():
        print(f"  {name}: {frame['request_id'].nunique():,d} requests, {len(frame):,d} rows")

    readout = timed("build_readout (all steps)", build_readout, logs, samples, candidates=cands, quiet=False,
                    join_report=joined.report.to_dict(), segment="device")
    for fmt in FORMATS:
        text = timed(f"render {fmt}", render, readout, fmt)
        print(f"  {len(text):,d} characters")

    table = timed("AUC same rows: online rank_score (auc_table)", auc_table, samples, "rank_score", None)
    rows = samples.dropna(subset=["rank_score"])
    ref = timed("AUC same rows: sklearn roc_auc_score", roc_auc_score, rows["click"].to_numpy(),
                rows["rank_score"].to_numpy())
    overall = table.iloc[0]
    print(f"  online AUC {overall['online_auc']:.6f} on {overall['n']:,d} rows (sklearn {ref:.6f}, "
          f"|diff| {abs(overall['online_auc'] - ref):.2e})")
    by_bucket = table.loc[table["segment"] == "bucket", ["value", "n", "online_auc"]]
    for _, r in by_bucket.iterrows():
        print(f"  bucket {r['value']}: online AUC {r['online_auc']:.4f} on {r['n']:,d} rows")
    ab = readout["ab"]
    ctr = next(r for r in ab["table"] if r["metric"] == "ctr")
    print(f"  CTR lift {ctr['lift']:+.2%} [{ctr['ci_low']:+.2%}, {ctr['ci_high']:+.2%}] p={ctr['p_value']:.3g}; "
          f"SRM p={ab['srm']['p_value']:.3g}")
    verdict = readout["verdict"][0]
    check = verdict["self_check"]
    print(f"  verdict: {verdict['headline']}; MDE {verdict['mde']:.2%}; A/A self-check CTR false-positive rate "
          f"{check['false_positive_rate']:.3f} [{check['ci_low']:.3f}, {check['ci_high']:.3f}]")
    for rec in readout["recall"]:
        print(f"  recall {rec['label']}: hitrate click " + ", ".join(
            f"@{k} {v:.3f}" for k, v in rec["hitrate_click"].items()) + "; top-N share " + ", ".join(
            f"top-{n} {v:.3f}" for n, v in rec["top_n_share"].items()))
    print(f"{'total':<42s} {time.perf_counter() - total:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
