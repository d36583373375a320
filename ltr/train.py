"""Train a ranker bundle from logs: ``python -m ltr.train LOGS --model lr|lgbm --train-end D --out B``.

The model is trained on every exposure of the days up to and including ``train-end`` and
evaluated on the days after it (up to ``--eval-end``, default the last day of the logs): AUC,
logloss, mean predicted vs actual CTR, and the online AUC of the logged ``rank_score`` on the
same rows. Features are point-in-time: a sample's statistics come only from days before its
own, for training and evaluation rows alike.
"""
from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr._cli import add_ts_unit, add_tz, command, parse_assignments, parser
from ltr._training import (
    MODEL_FEATURE_DEFAULTS,
    check_window,
    default_feature_params,
    evaluation_metrics,
    fit_estimator,
    metrics_by_day,
)
from ltr._validation import check_int
from ltr.bundle import check_inputs, design_matrix
from ltr.distributed import EngineOptions, add_engine_options, dask_client, engine_options, open_logs
from ltr.distributed._train import train_on_dask
from ltr.features import FeatureBuilder, FeatureMatrix, context_candidates, labelled_samples, outcome_columns
from ltr.leakage import check_leakage
from ltr.logs import Logs, as_day, format_day, parse_day, read_logs
from ltr.models import LogisticRegressionRanker, ModelConvergenceWarning, make_model
from ltr.serving import Ranker, statistics_record

__all__ = [
    "MODEL_FEATURE_DEFAULTS",
    "TrainingData",
    "default_feature_params",
    "evaluation_metrics",
    "main",
    "prepare_training",
    "report_text",
    "train_ranker",
]


@dataclass(frozen=True)
class TrainingData:
    """Samples split at ``train_end`` and their point-in-time features, reusable across models.

    Build it with :func:`prepare_training`; pass it to :func:`train_ranker` as ``data`` to
    train several models on the same features without recomputing them.
    """

    samples: pd.DataFrame
    train: pd.DataFrame
    held_out: pd.DataFrame
    builder: FeatureBuilder
    train_features: FeatureMatrix
    window: dict[str, Any]


def prepare_training(logs: Logs, train_end: int | str | None, *, eval_end: int | str | None = None,
                     feature_params: dict[str, Any] | None = None, tz: str = "UTC",
                     onehot: bool = True) -> TrainingData:
    """Join the logs, split them at ``train_end`` and fit the feature pipeline on the training days.

    Parameters
    ----------
    logs : ltr.logs.Logs
    train_end : str "YYYY-MM-DD" or int day index
        Last training day (inclusive). Must leave at least one later day in the logs.
    eval_end : str or int, optional
        Last evaluation day (inclusive); default the last day of the logs.
    feature_params : dict, optional
        Passed to :class:`ltr.features.FeatureBuilder`. Unless it sets ``context`` or
        ``categorical``, the request context columns of the logs
        (:func:`ltr.features.context_candidates`: the requests table's columns and the
        candidates' ``recall_source``) are offered as ``context``. Categorical features
        with too many distinct values are skipped and reported in
        ``window["skipped_categorical"]``.
    tz : str, default "UTC"
    onehot : bool, default True
        Compute the training rows' one-hot matrix; False (models of the raw values only,
        ``inputs="dense"``) leaves ``train_features.X`` with 0 columns and saves its time.

    Returns
    -------
    TrainingData

    Raises
    ------
    ValueError
        ``train_end``/``eval_end`` outside the logs' days, or training days without both labels.
    """
    if train_end is None:
        raise ValueError("train_end must be a day like 2026-01-31. Got None instead.")
    end = as_day(train_end, "train_end")
    samples = labelled_samples(logs, tz)
    if len(samples) == 0:
        raise ValueError("logs must have at least one exposure to train on. Got 0 samples instead.")
    days = samples["day"].to_numpy()
    first, last = int(days.min()), int(days.max())
    stop = check_window(first, last, end, None if eval_end is None else as_day(eval_end, "eval_end"))
    train = samples.loc[days <= end].reset_index(drop=True)
    held_out = samples.loc[(days > end) & (days <= stop)].reset_index(drop=True)
    if train["click"].nunique() < 2:
        raise ValueError(f"training days up to {format_day(end)} must contain clicks and non-clicks. "
                         f"Got click values {sorted(train['click'].unique().tolist())} instead.")
    started = time.perf_counter()
    params = {"tz": tz, **(feature_params or {})}
    if params.get("categorical") is None and "context" not in params:
        params["context"] = context_candidates(samples, logs)
    params.setdefault("outcomes", outcome_columns(samples))
    builder = FeatureBuilder(**params)
    train_features = builder.fit_transform(train, items=logs.items, users=logs.users, onehot=onehot)
    window = {
        "train_start": format_day(first),
        "train_end": format_day(end),
        "eval_start": format_day(end + 1),
        "eval_end": format_day(stop),
        "tz": tz,
        "train_rows": len(train),
        "train_ctr": float(train["click"].mean()),
        "feature_seconds": round(time.perf_counter() - started, 3),
        "context_features": list(builder.plan_.context),
        "skipped_categorical": builder.skipped_categorical_,
    }
    return TrainingData(samples, train, held_out, builder, train_features, window)


def train_ranker(logs: Logs, model: str = "lr", train_end: int | str | None = None, *,
                 eval_end: int | str | None = None, inputs: str | None = None,
                 model_params: dict[str, Any] | None = None, feature_params: dict[str, Any] | None = None,
                 tz: str = "UTC", data: TrainingData | None = None, validation: bool = True,
                 refit: bool = True, warmup_days: int = 0, leakage_check: bool = True,
                 allow_leaky: Sequence[str] = ()) -> Ranker:
    """Train a :class:`~ltr.serving.Ranker` on the days up to ``train_end`` and evaluate it after.

    Parameters
    ----------
    logs : ltr.logs.Logs
    model : {"lr", "lgbm"}
    train_end : str "YYYY-MM-DD" or int day index
        Last training day (inclusive). Must leave at least one later day in the logs.
    eval_end : str or int, optional
        Last evaluation day (inclusive); default the last day of the logs.
    inputs : {"onehot", "dense", "both"}, optional
        Feature representation; default ``"onehot"`` for LR, ``"dense"`` for LightGBM.
    model_params : dict, optional
        Passed to the model.
    feature_params : dict, optional
        Passed to :class:`ltr.features.FeatureBuilder`, on top of
        :data:`MODEL_FEATURE_DEFAULTS` for ``model``.
    tz : str, default "UTC"
        Time zone of calendar days.
    data : TrainingData, optional
        From :func:`prepare_training`; when given, ``logs``, ``train_end``, ``eval_end``,
        ``feature_params`` and ``tz`` are not used.
    validation : bool, default True
        Hold out the last training day to choose LightGBM's number of rounds (early
        stopping) or LR's ``C`` (:func:`ltr.models.fit_validated`); needs two training days.
    refit : bool, default True
        With ``validation``: refit on every training day with the chosen setting.
    warmup_days : int, default 0
        Training rows of the first ``warmup_days`` days of the logs only serve as history
        (they have none of their own).
    leakage_check : bool, default True
        Run :func:`ltr.leakage.check_leakage` on the training rows before fitting.
    allow_leaky : sequence of str, default ()
        Features the leakage check may flag without stopping the training.

    Returns
    -------
    Ranker
        ``ranker.metadata`` holds ``training`` (window, rows, seconds, convergence, the
        context features used and those skipped, the validation choice) and ``metrics``
        (overall and ``by_day``, from :func:`evaluation_metrics`).

    Raises
    ------
    ValueError
        Unknown model or parameter, ``train_end``/``eval_end`` outside the logs' days.
    ltr.leakage.LeakageError
        A feature looks leaky (and is not in ``allow_leaky``).
    """
    make_model(model, **(model_params or {}))
    inputs = check_inputs(model, inputs)
    warmup_days = check_int(warmup_days, "warmup_days", minimum=0)
    if data is None:
        data = prepare_training(logs, train_end, eval_end=eval_end,
                                feature_params=default_feature_params(model, feature_params), tz=tz,
                                onehot=inputs != "dense")
    elif inputs != "dense" and data.train_features.X.shape[1] == 0:
        raise ValueError(f"data must hold the training rows' one-hot matrix for inputs={inputs!r}. "
                         "Got data prepared with onehot=False instead.")
    leakage_started = time.perf_counter()
    if leakage_check:
        # The check reads the raw values only.
        check_leakage(lambda rows, history: data.builder.transform(rows, history=history, onehot=False),
                      data.train, data.train_features, allow=tuple(allow_leaky))
    leakage_seconds = time.perf_counter() - leakage_started
    X, names = design_matrix(data.train_features, inputs)
    categorical = [j for j, name in enumerate(names) if name.endswith(":code")] if inputs == "dense" else []
    days = data.train["day"].to_numpy()
    keep = days >= days.min() + warmup_days
    y = data.train["click"].to_numpy()[keep]
    X, days = X[keep], days[keep]
    estimator, chosen, fit_seconds = fit_estimator(model, dict(model_params or {}), X, y, days, names, categorical,
                                                   validation, refit)

    ranker = Ranker(data.builder, estimator, inputs)
    held_out = data.held_out
    # Evaluation rows are scored exactly as `python -m ltr.score` scores them.
    predicted = ranker.score(held_out, history=data.samples)
    online = held_out["rank_score"].to_numpy(dtype=np.float64, na_value=np.nan) if "rank_score" in held_out else None
    metrics = evaluation_metrics(held_out["click"].to_numpy(), predicted, online)
    metrics["by_day"] = metrics_by_day(held_out, predicted)
    training = {**data.window, "fit_seconds": round(fit_seconds, 3), "fitted_rows": int(keep.sum()),
                "warmup_days": warmup_days, "validation": chosen,
                "leakage_seconds": round(leakage_seconds, 3) if leakage_check else None}
    if isinstance(estimator, LogisticRegressionRanker):  # the one model with an iteration limit
        training["converged"] = bool(estimator.converged_)
        training["n_iter"] = int(estimator.n_iter_)
    ranker.metadata = {
        "training": training,
        "statistics": statistics_record(data.builder),
        "metrics": metrics,
        "model_params": estimator.get_params(),
        "feature_params": dict(data.builder.get_params()),
    }
    return ranker


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def report_text(ranker: Ranker) -> str:
    """Human-readable summary of a trained ranker's window and metrics."""
    t, m = ranker.metadata["training"], ranker.metadata["metrics"]
    no_online = "" if m["online_auc"] is not None else "  (no rank_score in the logs)"
    lines = [
        (f"model {ranker.model.name} ({ranker.inputs} inputs, {len(ranker.feature_names)} features), trained on "
         f"{t['train_start']}..{t['train_end']} ({t['train_rows']} rows, fit {t['fit_seconds']:.1f}s), "
         f"evaluated on {t['eval_start']}..{t['eval_end']} ({m['rows']} rows)"),
        f"  offline AUC ({ranker.model.name})       {_fmt(m['auc'])}",
        f"  online AUC (rank_score, same rows) {_fmt(m['online_auc'])}{no_online}",
        f"  logloss                          {_fmt(m['logloss'])}",
        (f"  mean predicted CTR {_fmt(m['mean_predicted_ctr'])} vs actual {_fmt(m['actual_ctr'])} "
         f"(ratio {_fmt(m['calibration_ratio'], 3)})"),
    ]
    context = t.get("context_features")
    if context is not None:
        lines.append(f"  context features: {', '.join(context) or 'none'}")
    skipped = t.get("skipped_categorical") or {}
    if skipped:
        limit = ranker.metadata.get("feature_params", {}).get("max_levels")
        listed = ", ".join(f"{name} ({levels})" for name, levels in skipped.items())
        lines.append(f"  categorical features skipped (distinct values > max_levels={limit}): {listed}")
    if len(m.get("by_day", [])) > 1:
        for row in m["by_day"]:
            lines.append(f"    {row['day']}: AUC {_fmt(row['auc'])}  online {_fmt(row['online_auc'])}  "
                         f"predicted {_fmt(row['mean_predicted_ctr'])}  actual {_fmt(row['actual_ctr'])}")
    if t.get("converged") is False:
        lines.append(f"  warning: lbfgs did not converge in {t['n_iter']} iterations; "
                     "raise max_iter (--set max_iter=N)")
    return "\n".join(lines)


def _train_dask(args: Any, options: EngineOptions, end: int, model_params: dict[str, Any],
                feature_params: dict[str, Any]) -> Ranker:
    """``--engine dask``: open the partitioned logs on the cluster and train there."""
    with dask_client(options) as client:
        opened = open_logs(client, args.logs, tz=args.tz, ts_unit=args.ts_unit)
        return train_on_dask(opened, args.model, end,
                             eval_end=None if args.eval_end is None else as_day(args.eval_end, "eval_end"),
                             inputs=args.inputs, model_params=model_params, feature_params=feature_params,
                             validation=not args.no_validation, refit=not args.no_refit,
                             warmup_days=args.warmup_days, leakage_check=not args.no_leakage_check,
                             allow_leaky=args.allow_feature, float32=args.float32_inputs)


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 user error, 2 usage error)."""
    cli = parser("ltr.train", "Train an LR or LightGBM ranker bundle on the days up to --train-end and "
                              "evaluate it on the days after.")
    cli.add_argument("logs", help="logs directory (Parquet/CSV tables)")
    cli.add_argument("--model", required=True, help="lr or lgbm")
    cli.add_argument("--train-end", required=True, help="last training day, YYYY-MM-DD")
    cli.add_argument("--out", required=True, help="bundle directory to write")
    cli.add_argument("--eval-end", default=None, help="last evaluation day (default: the logs' last day)")
    cli.add_argument("--inputs", default=None, help="onehot, dense or both (default: onehot for lr, dense for lgbm)")
    cli.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="model parameter, e.g. --set num_boost_round=200 (repeatable)")
    cli.add_argument("--feature", action="append", default=[], metavar="NAME=VALUE",
                     help="FeatureBuilder parameter, e.g. --feature 'windows=[3,7]' (repeatable)")
    cli.add_argument("--allow-feature", action="append", default=[], metavar="NAME",
                     help="feature the leakage check may flag without stopping (repeatable)")
    cli.add_argument("--no-leakage-check", action="store_true", help="skip the leakage check")
    cli.add_argument("--no-validation", action="store_true",
                     help="no validation day: fixed rounds (LightGBM) and C (LR) as given")
    cli.add_argument("--no-refit", action="store_true",
                     help="keep the model fitted before the validation day instead of refitting on every day")
    cli.add_argument("--warmup-days", type=int, default=0,
                     help="first days of the logs used only as history, not as training rows (default 0)")
    cli.add_argument("--float32-inputs", action="store_true",
                     help="--engine dask, LightGBM: hand LightGBM float32 features (half the workers' memory; "
                          "the trees can differ slightly from float64 ones)")
    add_tz(cli)
    add_ts_unit(cli)
    add_engine_options(cli)
    args = cli.parse_args(argv)
    options = engine_options(args)
    if args.float32_inputs and not (options.is_dask and args.model == "lgbm"):
        cli.error("--float32-inputs applies to --model lgbm with --engine dask only.")

    model_params = parse_assignments(args.set, "--set")
    feature_params = parse_assignments(args.feature, "--feature")
    # Check what can be checked before the slow part.
    make_model(args.model, **model_params)
    check_inputs(args.model, args.inputs)
    end = parse_day(args.train_end, "train_end")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelConvergenceWarning)
        if options.is_dask:
            ranker = _train_dask(args, options, end, model_params, feature_params)
        else:
            logs = read_logs(args.logs, tz=args.tz, ts_unit=args.ts_unit)
            ranker = train_ranker(logs, args.model, end, eval_end=args.eval_end, inputs=args.inputs,
                                  model_params=model_params, feature_params=feature_params, tz=args.tz,
                                  validation=not args.no_validation, refit=not args.no_refit,
                                  warmup_days=args.warmup_days, leakage_check=not args.no_leakage_check,
                                  allow_leaky=args.allow_feature)
    ranker.save(args.out)
    for item in caught:
        if issubclass(item.category, ModelConvergenceWarning):
            print(f"warning: {item.message}", file=sys.stderr)
    print(report_text(ranker))
    print(f"bundle written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
