"""``python -m ltr.train LOGS --engine dask``: the ranker trained on a Dask cluster.

What runs where:

* **workers**: each partition's labelled samples (join, days, outcomes), the three passes of the
  feature fit (:func:`ltr.features._partial.fit_from_parts`: categorical levels, partial counting
  tables and level counts, value counts of the continuous columns), every feature matrix (the
  fitted builder's ``transform``, as ``map_partitions``; for LightGBM one matrix per worker of
  the training rows it holds, :func:`_worker_design`; for LR one per partition, kept there),
  LightGBM's training
  (``lightgbm.dask.DaskLGBMClassifier``, one LightGBM process per worker reading that matrix
  without a copy), LR's losses and gradients, the held-out scores;
* **client**: the sums of those summaries (the builder's state is the one the single-machine
  engine fits, bit for bit), the validation-day choice, LR's L-BFGS-B steps, the metrics.

LightGBM: the same parameters as the single-machine engine. ``lightgbm.dask`` has no early
stopping (its evaluation sets are evaluated per worker, on that worker's rows), so the validation
run boosts on the days before the validation day in chunks of ``early_stopping_rounds`` rounds,
each a ``DaskLGBMClassifier.fit`` continued from the previous chunk's trees (``init_model``, which
lightgbm.dask passes through to every worker's fit); after each chunk the workers compute the
validation day's logloss after each new round (each tree's raw output, summed), and the client
applies the single-machine rule to the curve so far: it stops at the first chunk's end where the
best round is ``early_stopping_rounds`` rounds old (or at ``num_boost_round``), and keeps the best
round. Continued training restarts LightGBM's random generators, so each later chunk draws its
bags and columns from seeds of its own: the curve is not the one of a single uninterrupted run
(without random draws, on one worker, it is, bit for bit; tested). The refit boosts the chosen
number of rounds on every training day; without it (``refit=False``) the model is the validation
run's, cut at the chosen round. Distributed LightGBM splits the histogram work between the
workers, so the trees are close to, not equal to, the single-machine ones (tested: held-out AUC
within 0.002), and on several workers two runs need not grow the same trees.

Logistic regression (:mod:`ltr.distributed._lr`): each partition's one-hot CSR design stays on
its worker; the client runs scipy's L-BFGS-B on scikit-learn's lbfgs objective, each evaluation
the sum of the losses and gradients the workers compute on their designs (the client holds one
value per feature, never a matrix), with the single-machine ``C`` grid, warm starts and refit (the same
objective and options as scikit-learn's; summed in partition order, so a run is reproducible).
The engine and solver are recorded in ``metadata.training.engine``.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltr._training import (
    check_window,
    default_feature_params,
    evaluation_metrics,
    metrics_by_day,
)
from ltr.bundle import check_inputs, design_matrix
from ltr.distributed._leakage import check_leakage_on_dask
from ltr.distributed._logs import PartitionedLogs
from ltr.distributed._lr import SOLVER as LR_SOLVER
from ltr.distributed._lr import fit_lr_on_dask
from ltr.distributed._parts import Parts, by_holder, day_rows, labelled_parts, part_facts, rows_in
from ltr.features import FeatureBuilder, context_candidates, outcome_columns
from ltr.features._partial import fit_from_parts, refresh_from_parts
from ltr.logs import Logs, format_day
from ltr.metrics import auc, logloss
from ltr.models import LightGBMRanker, LogisticRegressionRanker, make_model
from ltr.serving import Ranker, statistics_record

__all__ = ["train_on_dask"]


def _on_day(triple: tuple[Any, np.ndarray, np.ndarray], day: int) -> tuple[Any, np.ndarray]:
    """The features and labels of a design's rows of ``day``."""
    rows = triple[2] == day
    return triple[0][rows], triple[1][rows]


def _score(frame: pd.DataFrame, ranker: Ranker) -> pd.DataFrame:
    """Held-out rows scored as ``ltr.score`` scores them (runs on a worker)."""
    out = pd.DataFrame({"day": frame["day"].to_numpy(), "click": frame["click"].to_numpy(),
                        "score": ranker.score(frame) if len(frame) else np.zeros(0)})
    if "rank_score" in frame:
        out["rank_score"] = frame["rank_score"].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _round_losses(triple: tuple[Any, np.ndarray, np.ndarray], model_text: str, day: int, start: int = 0
                  ) -> tuple[np.ndarray, int]:
    """Summed logloss of the rows of ``day`` after each boosting round from ``start + 1`` on, and their number."""
    import lightgbm as lgb

    X, y = _on_day(triple, day)
    booster = lgb.Booster(model_str=model_text)
    rounds = booster.num_trees()
    if not len(y):
        return np.zeros(rounds - start), 0
    # LightGBM sums a row's trees in order, in doubles, as the loop does: the same sums as from round 0.
    raw = np.asarray(booster.predict(X, num_iteration=start, raw_score=True) if start else np.zeros(len(y)),
                     dtype=np.float64)
    losses = np.empty(rounds - start)
    for i in range(start, rounds):  # one pass per new tree (tens), vectorised over the rows
        raw += booster.predict(X, start_iteration=i, num_iteration=1, raw_score=True)
        p = np.clip(1.0 / (1.0 + np.exp(-raw)), 1e-15, 1 - 1e-15)
        losses[i - start] = -np.sum(y * np.log(p) + (1 - y) * np.log1p(-p))
    return losses, len(y)


def _valid_scores(triple: tuple[Any, np.ndarray, np.ndarray], model_text: str, day: int, rounds: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predicted probabilities of the rows of ``day`` after ``rounds`` rounds."""
    import lightgbm as lgb

    X, y = _on_day(triple, day)
    if not len(y):
        return y, np.zeros(0)
    return y, np.asarray(lgb.Booster(model_str=model_text).predict(X, num_iteration=rounds), dtype=np.float64)


def _best_round(losses: np.ndarray, patience: int) -> int:
    """Rounds kept by LightGBM's early stopping on this validation curve (1-based)."""
    best, best_i = np.inf, 0
    for i, loss in enumerate(losses):  # at most num_boost_round values
        if loss < best:
            best, best_i = loss, i
        elif i - best_i >= patience:
            break
    return best_i + 1


def _worker_design(frames: list[pd.DataFrame], builder: FeatureBuilder, low: int | None, high: int | None,
                   dtype: str = "float64") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LightGBM's inputs of the rows of days ``low .. high`` of the partitions a worker holds, stacked
    (runs on that worker): features (by default the float64 values the single-machine engine fits
    on), labels and days, rows in day order (partition order, then row order, within a day), so that
    the rows before any day are a leading slice (a view, not a copy). Besides the partitions and
    the stacked matrix, one partition's rows and matrix at a time are in memory.
    """
    def kept(frame: pd.DataFrame) -> pd.DataFrame:
        return frame if low is None or high is None else day_rows(frame, low, high)

    def in_range(frame: pd.DataFrame) -> np.ndarray:
        days = frame["day"].to_numpy().astype(np.int64)
        return days if low is None or high is None else days[(days >= low) & (days <= high)]

    days = np.concatenate([in_range(frame) for frame in frames])
    place = np.empty(days.size, dtype=np.int64)  # each row's place in day order
    place[np.argsort(days, kind="stable")] = np.arange(days.size)
    X: np.ndarray | None = None
    y = np.empty(days.size, dtype=np.int64)
    start = 0
    for frame in frames:
        rows = kept(frame)
        dense, names = design_matrix(builder.transform(rows, dense=True), "dense")
        if X is None:
            X = np.empty((days.size, len(names)), dtype=dtype)
        X[place[start:start + len(rows)]] = dense
        y[place[start:start + len(rows)]] = rows["click"].to_numpy()
        start += len(rows)
        del rows, dense
    return (X if X is not None else np.zeros((0, 0), dtype=dtype)), y, np.sort(days, kind="stable")


def _worker_designs(client: Any, rows: Parts, builder: Any, dtype: str = "float64") -> list[Any]:
    """One :func:`_worker_design` per worker holding training partitions (``builder`` scattered)."""
    client.gather(client.map(len, rows.futures, pure=False))  # every partition in memory: who holds it
    return [client.submit(_worker_design, [rows.futures[i] for i in held], builder, rows.low, rows.high, dtype,
                          workers=[worker], allow_other_workers=False, pure=False)
            for worker, held in by_holder(client, rows.futures)]


def _x_part(design: tuple[np.ndarray, np.ndarray, np.ndarray], stop: int, names: list[str]) -> pd.DataFrame:
    """The first ``stop`` rows of a worker's design as a frame on the same memory (no copy)."""
    return pd.DataFrame(design[0][:stop], columns=names, copy=False)


def _y_part(design: tuple[np.ndarray, np.ndarray, np.ndarray], stop: int) -> pd.Series:
    return pd.Series(design[1][:stop], name="click", copy=False)


def _dask_lgbm(client: Any, designs: list[Any], stops: list[int], width: int, params: dict[str, Any], rounds: int,
               categorical: list[int], init: str | None = None, dtype: str = "float64") -> str:
    """Boost ``rounds`` rounds with ``lightgbm.dask`` on the first ``stops[i]`` rows of each worker's
    design (of ``dtype``), after the trees of ``init`` (a model's text) when given; the model's text
    (``init``'s trees, then the new ones)."""
    import dask.dataframe as dd
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMClassifier

    # One part per worker, the frame a view of the design that worker holds: lightgbm.dask concatenates a
    # worker's parts (pandas concat of one frame copies nothing), and LightGBM reads a one-dtype frame's
    # memory as it is. One part also makes the runs on one worker reproducible (bagging draws by row
    # position); on several, LightGBM's network still is not.
    holders = client.who_has(designs)
    names = [f"f{j}" for j in range(width)]
    X_parts, y_parts = [], []
    for design, stop in zip(designs, stops, strict=True):
        if stop:
            where = {"workers": sorted(holders[design.key])[:1], "allow_other_workers": False, "pure": False}
            X_parts.append(client.submit(_x_part, design, stop, names, **where))
            y_parts.append(client.submit(_y_part, design, stop, **where))
    meta_X = pd.DataFrame({name: pd.Series(dtype=dtype) for name in names})
    X = dd.from_delayed(X_parts, meta=meta_X, verify_meta=False)
    y = dd.from_delayed(y_parts, meta=pd.Series(dtype=np.int64, name="click"), verify_meta=False)
    sklearn_names = {"num_leaves": "num_leaves", "learning_rate": "learning_rate",
                     "min_data_in_leaf": "min_child_samples", "lambda_l2": "reg_lambda",
                     "feature_fraction": "colsample_bytree", "bagging_fraction": "subsample",
                     "bagging_freq": "subsample_freq", "seed": "random_state"}
    # Each worker's LightGBM uses that worker's threads (lightgbm.dask ignores n_jobs).
    kwargs = {sklearn_names.get(k, k): v for k, v in params.items() if k not in ("objective", "num_threads")}
    model = DaskLGBMClassifier(client=client, objective="binary", n_estimators=rounds, **kwargs)
    # init_model goes through to every worker's LGBMClassifier.fit: each continues from the same trees.
    more: dict[str, Any] = {} if init is None else {"init_model": lgb.Booster(model_str=init)}
    with client.as_current(), warnings.catch_warnings():  # the commands' clients are not the process default
        # lightgbm.dask says it ignores n_jobs (the sklearn default): the workers' threads are used.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(X, y, feature_name=names, categorical_feature=categorical or "auto", **more)
    return str(model.booster_.model_to_string())


def _chunk_params(params: dict[str, Any], chunk: int) -> dict[str, Any]:
    """The parameters of the ``chunk``-th chunk of boosting rounds (0-based): the first chunk's are the
    given ones; each later chunk draws its bags and column samples from seeds of its own (continued
    training restarts LightGBM's random generators: with the same seeds every chunk would repeat the
    first chunk's bags)."""
    if not chunk:
        return params
    return {**params, "bagging_seed": int(params["seed"]) * 7919 + chunk,
            "feature_fraction_seed": int(params["seed"]) * 7919 + 104729 + chunk}


def _early_stopped(client: Any, designs: list[Any], stops: list[int], width: int, params: dict[str, Any],
                   most: int, patience: int, categorical: list[int], day: int, dtype: str = "float64"
                   ) -> tuple[str, int, Any]:
    """The validation run: boost on the days before ``day`` (the first ``stops[i]`` rows of each
    worker's design) in chunks of ``patience`` rounds, each continued from the previous model, until
    the single-machine rule stops it (``patience`` rounds without a lower logloss on ``day``) or
    ``most`` rounds; the model's text, the chosen rounds and the future of the text on every worker."""
    text, shared = "", None
    losses, chunk = np.zeros(0), 0
    while losses.size < most:
        text = _dask_lgbm(client, designs, stops, width, _chunk_params(params, chunk),
                          min(patience, most - losses.size), categorical, init=text or None, dtype=dtype)
        # Scattered (under a fresh key, as every scatter here: a key shared with a released scatter can be
        # lost): a string argument of a task could be taken for a task key.
        shared = client.scatter([text], broadcast=True, hash=False)[0]
        found = client.gather(client.map(_round_losses, designs, model_text=shared, day=day, start=losses.size,
                                         pure=False))
        losses = np.concatenate([losses, sum(loss for loss, _ in found) / max(sum(n for _, n in found), 1)])
        if losses.size - _best_round(losses, patience) >= patience:
            break
        chunk += 1
    return text, _best_round(losses, patience), shared


def _fit_lgbm(client: Any, designs: list[Any], facts: list[dict[str, Any]], model_params: dict[str, Any],
              names: list[str], categorical: list[int], validation: bool, refit: bool
              ) -> tuple[LightGBMRanker, dict[str, Any] | None]:
    """LightGBM on the workers' designs (one per worker, rows in day order), with the single-machine
    validation-day rule."""
    import lightgbm as lgb

    estimator = LightGBMRanker(**model_params)
    params = estimator._checked_params()
    days = sorted({d for f in facts for d in f["days"]})
    width = len(names)
    rounds, record, text = int(estimator.num_boost_round), None, None
    if validation and len(days) > 1:
        valid_day = days[-1]
        stops = [_rows_before(f, valid_day) for f in facts]
        probe, rounds, shared = _early_stopped(client, designs, stops, width, params, rounds,
                                               int(estimator.early_stopping_rounds), categorical, valid_day,
                                               dtype=facts[0]["dtype"])
        held = client.gather(client.map(_valid_scores, designs, model_text=shared, day=valid_day, rounds=rounds,
                                        pure=False))
        y, p = np.concatenate([h[0] for h in held]), np.concatenate([h[1] for h in held])
        record = {"rows": {"fit": sum(stops), "valid": int(y.size)},
                  "chosen": {"num_boost_round": rounds},
                  "valid": {"logloss": float(logloss(y, p, eps=1e-15)),
                            "auc": float(auc(y, p)) if np.unique(y).size == 2 else None}, "refit": bool(refit)}
        # Without the refit the model is the validation run's, cut at the chosen round (as on one machine).
        text = None if refit else lgb.Booster(model_str=probe).model_to_string(num_iteration=rounds)
    if text is None:
        text = _dask_lgbm(client, designs, [f["rows"] for f in facts], width, params, rounds, categorical,
                          dtype=facts[0]["dtype"])
        estimator = LightGBMRanker(**{**model_params, "num_boost_round": rounds}) if record else estimator
    estimator.booster_ = lgb.Booster(model_str=text)
    estimator.best_iteration_ = rounds
    estimator.n_features_in_ = width
    estimator.feature_names_ = list(names)
    return estimator, record


def _fit_model(client: Any, rows: Parts, builder: FeatureBuilder, model: str, inputs: str,
               model_params: dict[str, Any], validation: bool, refit: bool, dtype: str = "float64"
               ) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """The model on the training partitions' feature matrices (built on the workers)."""
    shared = client.scatter(builder, broadcast=True, hash=False)
    names = client.submit(_design_names, rows.futures[0], shared, inputs, pure=False).result()
    categorical = [j for j, name in enumerate(names) if name.endswith(":code")] if inputs == "dense" else []
    started = time.perf_counter()
    if model == "lgbm":
        designs = _worker_designs(client, rows, shared, dtype)
        facts = client.gather(client.map(_design_facts, designs, pure=False))
        booster, chosen = _fit_lgbm(client, designs, facts, model_params, names, categorical, validation, refit)
        engine = {"name": "dask", "solver": "lightgbm.dask.DaskLGBMClassifier (validation curve computed on the "
                  "workers, early-stopping rule applied on the client)", "inputs_dtype": dtype}
        return booster, chosen, {**engine, "fit_seconds": round(time.perf_counter() - started, 3),
                                   "fitted_rows": sum(f["rows"] for f in facts)}
    estimator, chosen, fitted = fit_lr_on_dask(client, rows, shared, inputs, model_params, names, validation, refit)
    return estimator, chosen, {"name": "dask", "solver": LR_SOLVER,
                               "fit_seconds": round(time.perf_counter() - started, 3), "fitted_rows": fitted}


def _design_facts(triple: tuple[Any, np.ndarray, np.ndarray]) -> dict[str, Any]:
    days, counts = np.unique(triple[2], return_counts=True)
    return {"rows": int(triple[2].size), "days": days.tolist(), "counts": counts.tolist(),
            "dtype": str(triple[0].dtype)}


def _rows_before(facts: dict[str, Any], day: int) -> int:
    return sum(n for d, n in zip(facts["days"], facts["counts"], strict=True) if d < day)


def _design_names(frame: pd.DataFrame, builder: FeatureBuilder, inputs: str) -> list[str]:
    return design_matrix(builder.transform(frame.head(1), dense=inputs != "onehot"), inputs)[1]


def _window(client: Any, parts: Parts, end: int, eval_end: int | None) -> tuple[list[dict[str, Any]], int, int]:
    facts = parts.run(part_facts)
    days = [d for f in facts for d in f["days"]]
    if not days:
        raise ValueError("logs must have at least one exposure to train on. Got 0 samples instead.")
    first, last = min(days), max(days)
    return facts, first, check_window(first, last, end, eval_end)


def _feature_params(opened: PartitionedLogs, columns: Sequence[str], model: str,
                    feature_params: dict[str, Any] | None, tz: str) -> dict[str, Any]:
    """``prepare_training``'s feature parameters, from the partitions' columns."""
    params = {"tz": tz, **default_feature_params(model, feature_params)}
    header = pd.DataFrame(columns=list(columns))
    if params.get("categorical") is None and "context" not in params:
        tables = {name: pd.DataFrame(columns=opened.columns[name]) for name in opened.columns}
        logs = Logs(requests=tables["requests"], exposures=tables["exposures"], clicks=tables["clicks"],
                    candidates=tables.get("candidates"))
        params["context"] = context_candidates(header, logs)
    params.setdefault("outcomes", outcome_columns(header))
    return params


def train_on_dask(opened: PartitionedLogs, model: str, end: int, *, eval_end: int | None = None,
                  inputs: str | None = None, model_params: dict[str, Any] | None = None,
                  feature_params: dict[str, Any] | None = None, validation: bool = True, refit: bool = True,
                  warmup_days: int = 0, leakage_check: bool = True, allow_leaky: Sequence[str] = (),
                  float32: bool = False) -> Ranker:
    """``train_ranker`` on partitioned logs opened on a Dask cluster (see the module docstring).

    Parameters
    ----------
    opened : PartitionedLogs
        From :func:`ltr.distributed.open_logs`.
    model, end, eval_end, inputs, model_params, feature_params, validation, refit, warmup_days
        As in :func:`ltr.train.train_ranker` (days as day indices).
    leakage_check, allow_leaky
        As in :func:`ltr.train.train_ranker`: the same checks on the same rows
        (:func:`ltr.distributed._leakage.check_leakage_on_dask`), run on the workers.
    float32 : bool, default False
        LightGBM: build the workers' training matrices in float32 instead of float64 (half the
        memory that bounds the fit; LightGBM's bins come from the float32 values, so the trees
        can differ slightly from the float64 ones). Recorded in ``metadata.training.engine``.

    Returns
    -------
    Ranker
        Saved and loaded like a local one; ``metadata.training.engine`` names the engine and solver.

    Raises
    ------
    ltr.leakage.LeakageError
        A feature looks leaky (and is not in ``allow_leaky``).
    """
    model_params = dict(model_params or {})
    make_model(model, **model_params)
    inputs = check_inputs(model, inputs)
    client = opened.client
    started = time.perf_counter()
    samples = labelled_parts(opened)
    facts, first, stop = _window(client, samples, end, eval_end)
    train = samples.days(facts, first, end)
    n_train, clicks = sum(rows_in(f, first, end) for f in facts), sum(train.run(_clicks))
    if not 0 < clicks < n_train:
        raise ValueError(f"training days up to {format_day(end)} must contain clicks and non-clicks. Got {clicks} "
                         f"clicks in {n_train} rows instead.")
    params = _feature_params(opened, facts[0]["columns"], model, feature_params, opened.tz)
    builder = fit_from_parts(FeatureBuilder(**params), train.run, facts[0]["columns"], items=opened.items,
                             users=opened.users)
    feature_seconds = time.perf_counter() - started
    leakage_started = time.perf_counter()
    if leakage_check:
        check_leakage_on_dask(train, train.run(part_facts), builder, end, allow=tuple(allow_leaky))
    leakage_seconds = round(time.perf_counter() - leakage_started, 3) if leakage_check else None
    estimator, chosen, engine = _fit_model(client, samples.days(facts, first + warmup_days, end), builder, model,
                                           inputs, model_params, validation, refit,
                                           "float32" if float32 else "float64")
    evaluated = refresh_from_parts(builder, samples.run, stop)
    scored = pd.concat(samples.days(facts, end + 1, stop).run(_score, Ranker(evaluated, estimator, inputs)),
                       ignore_index=True)
    online = scored["rank_score"].to_numpy() if "rank_score" in scored else None
    metrics = evaluation_metrics(scored["click"].to_numpy(), scored["score"].to_numpy(), online)
    metrics["by_day"] = metrics_by_day(scored, scored["score"].to_numpy())
    ranker = Ranker(builder, estimator, inputs)
    training = {"train_start": format_day(first), "train_end": format_day(end), "eval_start": format_day(end + 1),
                "eval_end": format_day(stop), "tz": opened.tz, "train_rows": n_train, "train_ctr": clicks / n_train,
                "feature_seconds": round(feature_seconds, 3), "context_features": list(builder.plan_.context),
                "skipped_categorical": builder.skipped_categorical_, "fit_seconds": engine.pop("fit_seconds"),
                "fitted_rows": engine.pop("fitted_rows"), "warmup_days": warmup_days, "validation": chosen,
                "leakage_seconds": leakage_seconds, "engine": engine}
    if isinstance(estimator, LogisticRegressionRanker):
        training["converged"] = bool(estimator.converged_)
        training["n_iter"] = int(estimator.n_iter_)
    ranker.metadata = {"training": training, "statistics": statistics_record(builder), "metrics": metrics,
                       "model_params": estimator.get_params(), "feature_params": dict(builder.get_params())}
    return ranker


def _clicks(frame: pd.DataFrame) -> int:
    return int(frame["click"].sum())
