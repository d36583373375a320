"""Features-to-CSR throughput and peak memory: FeatureBuilder vs a plain scikit-learn pipeline.

Usage::

    python bench/bench_features.py [--rows 2000000] [--logs fixtures/world] [--seed 0]

The committed fixture world is tiled (user and request ids shifted per copy, so every copy
is a fresh set of users on the same items) up to ``--rows`` exposures. Both sides get the
same rows:

* ours: ``FeatureBuilder.transform(samples, history=samples, dense=False)``: counting
  tables built from the 2M-row history, point-in-time counts and smoothed CTRs for 5 key
  families x 3 windows, recent-click cosine, quantile bins, category codes, CSR assembly
  (also shown: with the dense output, and with the fitted tables instead of a history);
* scikit-learn: a ``ColumnTransformer`` of ``KBinsDiscretizer(strategy="quantile",
  encode="onehot")`` on the same continuous values (precomputed, not timed),
  ``OneHotEncoder(min_frequency=...)`` on the same categoricals and ``TargetEncoder`` on
  item and user ids; its ``transform`` does strictly less work (no counting).

Both are fitted on the training days, then timed on every row. Time is measured without
tracemalloc; peak memory is the tracemalloc peak of a second run (numpy and pandas report
their buffers to it).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, TargetEncoder

from ltr.features import FeatureBuilder
from ltr.logs import join_samples, read_logs


def tiled_world(path: str, rows: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    logs = read_logs(path)
    base = join_samples(logs).samples
    copies = max(1, -(-rows // len(base)))
    user_step = int(logs.users["user_id"].max()) + 1
    req_step = int(base["request_id"].max()) + 1
    parts, users = [], []
    for k in range(copies):
        part = base.copy()
        part["user_id"] = part["user_id"] + k * user_step
        part["request_id"] = part["request_id"] + k * req_step
        parts.append(part)
        u = logs.users.copy()
        u["user_id"] = u["user_id"] + k * user_step
        users.append(u)
    samples = pd.concat(parts, ignore_index=True).sort_values(["ts", "request_id", "position"], kind="stable")
    samples = samples.head(rows).reset_index(drop=True)
    return samples, logs.items, pd.concat(users, ignore_index=True)


def measure(fn, label: str) -> tuple[float, float]:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  {label:<34s} {seconds:8.2f} s   peak {peak / 2**20:9.1f} MiB")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="exposures to featurise (default 2M)")
    parser.add_argument("--logs", default="fixtures/world", help="logs directory to tile")
    parser.add_argument("--min-count", type=int, default=20)
    args = parser.parse_args()

    t = time.perf_counter()
    samples, items, users = tiled_world(args.logs, args.rows)
    print(f"rows: {len(samples):,}  (built in {time.perf_counter() - t:.1f} s)")
    train = samples[samples["day"] <= samples["day"].max() - 2]

    t = time.perf_counter()
    builder = FeatureBuilder(min_count=args.min_count).fit(train, items=items, users=users)
    ours_fit = time.perf_counter() - t
    print(f"ours fit on {len(train):,} training rows: {ours_fit:.2f} s")

    features = builder.transform(samples, history=samples)
    n_cont = len(builder.continuous_names_)
    cont = pd.DataFrame(features.dense[:, :n_cont], columns=builder.continuous_names_)
    cont = cont[builder.binned_names_].fillna(0.0)
    cat_frame = pd.DataFrame(features.dense[:, n_cont:].astype(np.int64), columns=builder.categorical_).astype(str)
    sk_input = pd.concat(
        [cont, cat_frame, samples[["item_id", "user_id"]].astype(str).reset_index(drop=True)], axis=1
    )
    y = samples["click"].to_numpy()
    is_train = (samples["day"] <= samples["day"].max() - 2).to_numpy()
    pipeline = ColumnTransformer(
        [
            ("bins", KBinsDiscretizer(n_bins=10, encode="onehot", strategy="quantile",
                                      quantile_method="averaged_inverted_cdf"), list(cont.columns)),
            ("onehot", OneHotEncoder(min_frequency=args.min_count, handle_unknown="infrequent_if_exist"),
             list(cat_frame.columns)),
            ("target", TargetEncoder(target_type="binary", random_state=0), ["item_id", "user_id"]),
        ],
        sparse_threshold=1.0,
    )
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(sk_input[is_train], y[is_train])
    sk_fit = time.perf_counter() - t
    print(f"sklearn fit on the same training rows: {sk_fit:.2f} s")
    print(f"ours X: {features.X.shape}, nnz {features.X.nnz:,};  "
          f"sklearn X: {pipeline.transform(sk_input.head(5)).shape[1]} columns")

    print("transform every row to CSR:")

    def ours() -> None:
        builder.transform(samples, history=samples, dense=False)

    def ours_fitted() -> None:
        builder.transform(samples, dense=False)

    def ours_dense() -> None:
        builder.transform(samples, history=samples, dense=True)

    def sk() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipeline.transform(sk_input)

    ours_s, ours_peak = measure(ours, "ours (PIT stats + bins + CSR)")
    measure(ours_dense, "ours, also dense for LightGBM")
    fitted_s, _ = measure(ours_fitted, "ours, fitted tables (no history)")
    sk_s, sk_peak = measure(sk, "sklearn (bins + one-hot + target)")
    n = len(samples)
    print(f"throughput: ours {n / ours_s:,.0f} rows/s, sklearn {n / sk_s:,.0f} rows/s")
    print(f"speed ratio (sklearn time / ours): {sk_s / ours_s:.2f}x   (goal >= 3x)")
    print(f"speed ratio with the fitted tables (serving path): {sk_s / fitted_s:.2f}x")
    print(f"peak memory ratio (ours / sklearn): {ours_peak / sk_peak:.2f}   (goal <= 0.5)")


if __name__ == "__main__":
    main()
