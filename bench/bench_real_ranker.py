"""The project's rankers beside three plain peers on real logs, on the same split and rows.

    python bench/bench_real_ranker.py DIR [--work bench/out/real_ranker] [--train-end 2022-04-28]
                                          [--eval-end 2022-04-30] [--tz Asia/Shanghai] [--threads 1]
                                          [--only lr lgbm peer_a ...] [--lr-feature K=V] [--lgbm-set K=V] ...

``DIR`` is the KuaiRand-Pure development slice (``interactions.parquet``, ``items.csv``,
``users.csv``) or ``fixtures/real/flat``; it is imported with ``python -m ltr.logs import``
into ``--work``. Training rows are the exposures of the days up to ``--train-end``, evaluation
rows those of the days after it up to ``--eval-end`` (calendar days in ``--tz``). Every system
sees the same rows and the same validation protocol (the last training day chooses the
number of boosting rounds or the LR regularisation, then a refit on every training day):

* ``lr``, ``lgbm``: the project, ``ltr.train.train_ranker`` with its defaults;
* ``peer_a``: KBinsDiscretizer on numeric columns + OneHotEncoder(min_frequency=5) on ids and
  categorical attributes + TargetEncoder on ids -> LogisticRegression(lbfgs);
* ``peer_b``: LightGBM on the raw columns, ids and categorical attributes as native categoricals;
* ``peer_c``: point-in-time smoothed CTR of user / item / author / category over all earlier
  days + numeric attributes + context + hour -> LightGBM.

Printed (never asserted): AUC, GAUC (per user, exposure weighted, pooled over the evaluation
days), logloss, mean predicted / actual CTR, the seconds spent building features and fitting
the model, and the peak memory each system added (each runs in a forked child; its peak
resident set minus the resident set it started with).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np
import pandas as pd

from ltr._cli import parse_assignments
from ltr.logs import day_index, format_day, join_samples, parse_day, read_logs
from ltr.logs.__main__ import main as logs_main
from ltr.metrics import auc, gauc, logloss
from ltr.train import prepare_training, train_ranker

SYSTEMS = ("peer_a", "peer_b", "peer_c", "lr", "lgbm")
#: LightGBM settings of the peers (the scratch study's, chosen on the validation day).
PEER_LGBM = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 50,
             "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 10.0,
             "cat_smooth": 20.0, "min_data_per_group": 50, "cat_l2": 10.0, "verbosity": -1, "seed": 0,
             "deterministic": True, "force_row_wise": True}
PEER_C_GRID = (0.03, 0.1, 0.3, 1.0)


# ---------------------------------------------------------------------------------- data
def import_slice(src: Path, work: Path, tz: str) -> Path:
    """Import the flat slice with the project's importer (what a user runs); return the logs dir."""
    out = work / "logs"
    if (out / "exposures.parquet").exists():
        return out
    args = [
        "import", str(src / "interactions.parquet"), "--out", str(out), "--user-col", "user_id", "--item-col",
        "video_id", "--ts-col", "time_ms", "--ts-unit", "ms", "--click-col", "is_click", "--context-col", "tab",
        "--request-by", "tab", "--gap", "60", "--tz", tz, "--items", str(src / "items.csv"), "--item-key",
        "video_id", "--category-col", "tag", "--users", str(src / "users.csv"), "--user-key", "user_id",
        "--outcome-col", "is_like", "long_view", "play_time_ms", "watch_ratio",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        status = logs_main(args)
    if status != 0:
        raise SystemExit(f"import of {src} failed (exit {status})")
    return out


def peer_frame(logs: Any, tz: str) -> tuple[pd.DataFrame, list[str], list[str], list[str]]:
    """Samples with the raw item and user columns, hour and context; the column roles.

    Returns the frame and the names of id columns, categorical attributes and numeric columns:
    ids are ``user_id``, ``item_id`` and ``*_id`` attributes; strings, and numbers with at most
    50 distinct values, are categorical; the other numbers numeric (dates become ages in days).
    """
    samples = join_samples(logs).samples
    samples["day"] = day_index(samples["ts"].to_numpy(), tz)
    samples["hour"] = pd.to_datetime(samples["ts"], unit="s", utc=True).dt.tz_convert(tz).dt.hour
    ids, cats, nums = ["user_id", "item_id"], ["tab", "hour"], []
    for table, key, prefix in ((logs.items, "item_id", "item_"), (logs.users, "user_id", "user_")):
        attrs = table.rename(columns={c: prefix + c for c in table.columns if c != key})
        samples = samples.merge(attrs, on=key, how="left")
        for col in attrs.columns.drop(key):
            values = attrs[col]
            if col.endswith("_id"):
                ids.append(col)
            elif col.endswith("_dt"):
                when = pd.to_datetime(samples[col], errors="coerce").dt.tz_localize(tz)
                start = pd.to_datetime(samples["ts"], unit="s", utc=True)
                samples[col] = (start - when).dt.total_seconds() / 86400
                nums.append(col)
            elif not pd.api.types.is_numeric_dtype(values) or values.nunique() <= 50:
                cats.append(col)
            else:
                nums.append(col)
    return samples, ids, cats, nums


def codes(frame: pd.DataFrame, columns: list[str], train: np.ndarray, min_count: int) -> pd.DataFrame:
    """Integer codes per column; levels rarer than ``min_count`` in the training rows share -1 ... as NaN."""
    out = {}
    for col in columns:
        values = frame[col].astype("string").fillna("<nan>")
        counts = values[train].value_counts()
        kept = counts.index[counts >= min_count]
        out[col] = pd.Categorical(values, categories=kept).codes.astype(np.float64)
        out[col][out[col] < 0] = np.nan
    return pd.DataFrame(out, index=frame.index)


# ---------------------------------------------------------------------------------- peers
def lgbm_validated(X: pd.DataFrame, y: np.ndarray, fit_rows: np.ndarray, valid_rows: np.ndarray,
                   categorical: list[str], threads: int) -> Any:
    """Early stopping on the validation rows, then a refit on every training row with those rounds."""
    import lightgbm as lgb

    params = {**PEER_LGBM, "num_threads": threads}
    fit = lgb.Dataset(X[fit_rows], y[fit_rows], categorical_feature=categorical)
    valid = lgb.Dataset(X[valid_rows], y[valid_rows], reference=fit)
    probe = lgb.train(params, fit, 2000, valid_sets=[valid], callbacks=[lgb.early_stopping(50, verbose=False)])
    rounds = max(int(probe.best_iteration), 1)
    train = fit_rows | valid_rows
    return lgb.train(params, lgb.Dataset(X[train], y[train], categorical_feature=categorical), rounds)


def peer_a(frame: pd.DataFrame, roles: tuple[list[str], list[str], list[str]], split: dict[str, np.ndarray],
           threads: int) -> tuple[np.ndarray, float, float]:
    """KBins + OneHot(min_frequency=5) + TargetEncoder(ids) -> LogisticRegression(lbfgs), C on the validation day."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, TargetEncoder

    ids, cats, nums = roles
    y = frame["click"].to_numpy()
    X = frame[ids + cats + nums].copy()
    for col in ids + cats:
        X[col] = X[col].astype("string").fillna("<nan>").astype(object)
    for col in nums:
        X[col] = X[col].astype(np.float64).fillna(X.loc[split["train"], col].median())

    def design() -> ColumnTransformer:
        return ColumnTransformer([
            ("bins", KBinsDiscretizer(n_bins=10, encode="onehot", strategy="quantile",
                                      quantile_method="averaged_inverted_cdf"), nums),
            ("onehot", OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist"), ids + cats),
            ("target", TargetEncoder(target_type="binary", random_state=0), ids),
        ])

    started = time.perf_counter()
    fit_rows, valid_rows, train = split["fit"], split["valid"], split["train"]
    probe = design().fit(X[fit_rows], y[fit_rows])
    Xf, Xv = probe.transform(X[fit_rows]), probe.transform(X[valid_rows])
    features = time.perf_counter() - started
    started = time.perf_counter()
    losses = {}
    for C in PEER_C_GRID:
        model = LogisticRegression(C=C, max_iter=1000).fit(Xf, y[fit_rows])
        losses[C] = logloss(y[valid_rows], model.predict_proba(Xv)[:, 1])
    best = min(losses, key=losses.__getitem__)
    model_seconds = time.perf_counter() - started
    started = time.perf_counter()
    pipe = design()
    Xt = pipe.fit_transform(X[train], y[train])
    features += time.perf_counter() - started
    started = time.perf_counter()
    model = LogisticRegression(C=best, max_iter=1000).fit(Xt, y[train])
    model_seconds += time.perf_counter() - started
    return model.predict_proba(pipe.transform(X[split["eval"]]))[:, 1], features, model_seconds


def peer_b(frame: pd.DataFrame, roles: tuple[list[str], list[str], list[str]], split: dict[str, np.ndarray],
           threads: int) -> tuple[np.ndarray, float, float]:
    """LightGBM on raw columns; ids and categorical attributes as native categoricals."""
    ids, cats, nums = roles
    started = time.perf_counter()
    X = pd.concat([codes(frame, ids + cats, split["train"], 1), frame[nums].astype(np.float64)], axis=1)
    features = time.perf_counter() - started
    started = time.perf_counter()
    booster = lgbm_validated(X, frame["click"].to_numpy(), split["fit"], split["valid"], ids + cats, threads)
    model_seconds = time.perf_counter() - started
    return booster.predict(X[split["eval"]]), features, model_seconds


def pit_ctr(frame: pd.DataFrame, key: str, prior: float, strength: float = 20.0) -> np.ndarray:
    """CTR of ``key`` over every day before each row's, smoothed towards ``prior`` (``strength`` pseudo-exposures)."""
    daily = frame.groupby([key, "day"], dropna=False)["click"].agg(["sum", "count"]).reset_index()
    daily = daily.sort_values([key, "day"])
    grouped = daily.groupby(key, dropna=False)
    # Totals strictly before the day: the running sum less the day's own counts.
    daily["clk"] = grouped["sum"].cumsum() - daily["sum"]
    daily["exp"] = grouped["count"].cumsum() - daily["count"]
    rows = frame[[key, "day"]].merge(daily[[key, "day", "clk", "exp"]], on=[key, "day"], how="left")
    return ((rows["clk"] + prior * strength) / (rows["exp"] + strength)).to_numpy()


def peer_c(frame: pd.DataFrame, roles: tuple[list[str], list[str], list[str]], split: dict[str, np.ndarray],
           threads: int) -> tuple[np.ndarray, float, float]:
    """Point-in-time smoothed CTR of user / item / author / category (all earlier days) + numbers + tab + hour."""
    _, _, nums = roles
    started = time.perf_counter()
    prior = float(frame.loc[split["train"], "click"].mean())
    keys = [k for k in ("user_id", "item_id", "item_author_id", "item_category") if k in frame.columns]
    X = pd.DataFrame({f"ctr_{k}": pit_ctr(frame, k, prior) for k in keys}, index=frame.index)
    X = pd.concat([X, frame[nums].astype(np.float64), codes(frame, ["tab", "hour"], split["train"], 1)], axis=1)
    features = time.perf_counter() - started
    started = time.perf_counter()
    booster = lgbm_validated(X, frame["click"].to_numpy(), split["fit"], split["valid"], ["tab", "hour"], threads)
    model_seconds = time.perf_counter() - started
    return booster.predict(X[split["eval"]]), features, model_seconds


# ---------------------------------------------------------------------------------- project
def project(model: str, logs: Any, args: argparse.Namespace) -> tuple[np.ndarray, float, float, pd.DataFrame]:
    """The project's ranker as ``ltr.train`` trains it; scores of the evaluation rows."""
    feature_params = parse_assignments(getattr(args, f"{model}_feature"), "--feature")
    model_params = {"num_threads": args.threads} if model == "lgbm" else {}
    model_params.update(parse_assignments(getattr(args, f"{model}_set"), "--set"))
    from ltr.train import default_feature_params

    # What ltr.train computes for the model's default inputs (dense values only for LightGBM).
    data = prepare_training(logs, args.train_end, eval_end=args.eval_end, tz=args.tz,
                            feature_params=default_feature_params(model, feature_params), onehot=model == "lr")
    ranker = train_ranker(logs, model, model_params=model_params, data=data)
    training = ranker.metadata["training"]
    scores = ranker.score(data.held_out, history=data.samples)
    return scores, training["feature_seconds"], training["fit_seconds"], data.held_out


# ---------------------------------------------------------------------------------- running
def in_child(fn: Callable[[], tuple]) -> tuple[Any, float]:
    """Run ``fn`` in a forked child; its result and the peak memory (MB) it added."""
    import pickle

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        start_kb = _rss_kb()
        result: Any
        try:
            result = fn()
        except BaseException as exc:  # reported by the parent
            result = exc
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_kb
        with os.fdopen(write, "wb") as sink:
            pickle.dump((result, peak / 1024), sink)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as source:
        payload = source.read()
    os.waitpid(pid, 0)
    result, peak = pickle.loads(payload)
    if isinstance(result, BaseException):
        raise result
    return result, peak


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def report(name: str, y: np.ndarray, users: np.ndarray, p: np.ndarray, feat_s: float, model_s: float,
           peak: float) -> str:
    g = gauc(y, p, users)
    return (f"{name:<8} {auc(y, p):7.4f} {g.value:7.4f} {logloss(y, p):8.4f} {p.mean() / y.mean():11.3f} "
            f"{feat_s:9.2f} {model_s:8.2f} {feat_s + model_s:8.2f} {peak:8.0f}")


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("dir", type=Path, help="the slice: interactions.parquet, items.csv, users.csv")
    cli.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "real_ranker")
    cli.add_argument("--train-end", default="2022-04-28")
    cli.add_argument("--eval-end", default="2022-04-30")
    cli.add_argument("--tz", default="Asia/Shanghai")
    cli.add_argument("--threads", type=int, default=1, help="LightGBM threads of every system")
    cli.add_argument("--only", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    for model in ("lr", "lgbm"):
        cli.add_argument(f"--{model}-feature", action="append", default=[], metavar="K=V",
                         help=f"FeatureBuilder parameter of the project's {model}")
        cli.add_argument(f"--{model}-set", action="append", default=[], metavar="K=V",
                         help=f"model parameter of the project's {model}")
    args = cli.parse_args()
    warnings.filterwarnings("ignore")
    logs = read_logs(import_slice(args.dir, args.work, args.tz), tz=args.tz)
    frame, ids, cats, nums = peer_frame(logs, args.tz)
    roles = (ids, cats, nums)
    end, stop = parse_day(args.train_end), parse_day(args.eval_end)
    day = frame["day"].to_numpy()
    split = {"train": day <= end, "fit": day < end, "valid": day == end, "eval": (day > end) & (day <= stop)}
    y, users = frame.loc[split["eval"], "click"].to_numpy(), frame.loc[split["eval"], "user_id"].to_numpy()
    print(f"train {format_day(int(day.min()))}..{args.train_end} ({int(split['train'].sum()):,} rows), "
          f"evaluate {format_day(end + 1)}..{args.eval_end} ({int(split['eval'].sum()):,} rows, "
          f"CTR {y.mean():.4f}); LightGBM threads {args.threads}")
    print(f"{'system':<8} {'AUC':>7} {'GAUC':>7} {'logloss':>8} {'pred/actual':>11} {'features':>9} "
          f"{'model':>8} {'fit s':>8} {'peak MB':>8}")
    peers = {"peer_a": peer_a, "peer_b": peer_b, "peer_c": peer_c}
    for name in args.only:
        if name in peers:
            run_peer: Callable[[], tuple] = partial(peers[name], frame, roles, split, args.threads)
            (p, feat_s, model_s), peak = in_child(run_peer)
            print(report(name, y, users, p, feat_s, model_s, peak), flush=True)
        else:
            (p, feat_s, model_s, held_out), peak = in_child(partial(project, name, logs, args))
            if len(held_out) != len(y) or (held_out["click"].to_numpy() != y).any():
                raise SystemExit(f"{name}: evaluation rows differ from the peers'")
            print(report(name, y, users, p, feat_s, model_s, peak), flush=True)


if __name__ == "__main__":
    main()
