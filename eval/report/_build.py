"""Every number of the experiment readout, gathered as a JSON-ready dict.

Order of the readout: the A/B table (metric, control, treatment, lift, CI, p, flag) with the
sample-ratio-mismatch check, then offline vs online AUC, GAUC, calibration, the log funnel
and the recall funnel. The renderers (:mod:`eval.report._render`) only format this dict.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from eval.ab import (
    MIN_EVENTS,
    SEQUENTIAL_TUNING_UNITS,
    ABResult,
    Inference,
    aa_self_check,
    compare_all,
    compare_buckets,
    daily_lift,
    segment_lift,
)
from eval.funnel import RECALL_KS, TOP_NS, log_funnel, recall_funnel
from eval.metrics import calibration_table, expected_calibration_error, logloss, normalized_entropy
from eval.online_offline import auc_table, gauc_summary
from eval.report._abview import ab_section, daily_section, segment_section, self_check_section
from eval.report._json import clean, records
from eval.report._progress import Steps
from eval.report._verdict import verdicts
from ltr._validation import check_int
from ltr.logs import Logs, format_day

__all__ = ["LogFacts", "build_readout"]


@dataclass(frozen=True)
class LogFacts:
    """What the readout needs of the logs besides the samples.

    ``buckets``: the buckets of the requests table (sorted); ``funnel(window, (lo, hi))``: the
    :func:`eval.funnel.log_funnel` table of the window's samples. :meth:`of` builds them from
    in-memory logs; the Dask engine (:mod:`eval.report._dask`) from partial counts of its
    partitions, which add up to the same table.
    """

    buckets: tuple[str, ...]
    funnel: Callable[[pd.DataFrame, tuple[int, int]], pd.DataFrame]

    @classmethod
    def of(cls, logs: Logs) -> LogFacts:
        """The facts of in-memory logs."""
        requests = logs.requests
        buckets = sorted({str(b) for b in pd.unique(requests["bucket"])}) if "bucket" in requests.columns else []
        return cls(buckets=tuple(buckets), funnel=lambda window, days: log_funnel(logs, window, days=days))


@dataclass(frozen=True)
class _ABOptions:
    """The A/B settings of a readout, as the user gave them (compare_buckets checks them)."""

    control: str | None
    treatment: str | None
    unit: Any
    adjust: Any
    primary: Any
    inference: Inference
    segment: str | None
    aa_splits: int
    seed: int


def _check_buckets(buckets: list[str], control: str | None, treatment: str | None,
                   logged_buckets: list[str]) -> None:
    if (control is None) != (treatment is None):
        raise ValueError("--control and --treatment go together; give both or neither.")
    for name, value in (("control", control), ("treatment", treatment)):
        # A bucket that is logged but has no exposure in the window gets its own message:
        # "unknown bucket" would send the user hunting for a typo that is not there.
        if value is not None and value not in buckets:
            if value in logged_buckets:
                raise ValueError(f"{name} must be a bucket with users in the readout window. Got {value!r}, "
                                 "which has no exposed users there.")
            raise ValueError(f"{name} must be one of the buckets {logged_buckets or buckets}. Got {value!r} instead.")


def _compare(samples: pd.DataFrame, options: _ABOptions, pre_samples: pd.DataFrame | None) -> ABResult:
    inf = options.inference
    common = dict(unit=options.unit, alpha=inf.alpha, adjust=options.adjust, primary=options.primary,
                  pre_samples=pre_samples, sequential=inf.sequential, tuning_units=inf.tuning_units,
                  min_events=inf.min_events)
    if options.control is not None and options.treatment is not None:
        return compare_buckets(samples, options.control, options.treatment, **common)
    return compare_all(samples, **common)


def _ab_sections(samples: pd.DataFrame, options: _ABOptions, pre_samples: pd.DataFrame | None,
                 logged_buckets: list[str]) -> dict:
    """The A/B section, the A/A self-check, the daily view and the segments."""
    buckets = sorted({str(b) for b in pd.unique(samples["bucket"])}) if "bucket" in samples.columns else []
    if len(buckets) < 2 and options.control is None and options.treatment is None:
        note = f"only one bucket ({', '.join(buckets) or 'none'}): there is no comparison."
        absent = {"available": False, "note": note}
        return {"ab": {**absent, "buckets": buckets}, "self_check": absent, "daily": absent, "segments": None}
    _check_buckets(buckets, options.control, options.treatment, logged_buckets)
    result = _compare(samples, options, pre_samples)
    out: dict = {"ab": ab_section(result)}
    inf = result.inference
    if options.aa_splits > 0:
        check = aa_self_check(samples, result.control, result.unit, result.primary, result.adjust, inf,
                              splits=options.aa_splits, seed=options.seed)
        out["self_check"] = self_check_section(check, result.primary, result.alpha)
    else:
        out["self_check"] = {"available": False, "note": "A/A self-check turned off (0 splits)."}
    daily = {t: daily_lift(samples, result.control, t, result.unit, result.primary, inf) for t in result.treatments}
    out["daily"] = daily_section(daily, result.primary, inf.sequential)
    out["segments"] = None
    if options.segment is not None:
        seg = {t: segment_lift(samples, options.segment, result.control, t, result.unit, result.primary, inf)
               for t in result.treatments}
        out["segments"] = segment_section(seg)
    return out


def _auc_section(scored: pd.DataFrame, table: pd.DataFrame, online: str | None, offline: str | None,
                 offline_name: str) -> dict:
    out = {"online_available": online is not None, "offline_available": offline is not None,
           "offline_name": offline_name if offline else None, "n_rows": len(scored),
           "rows": records(table.set_index("segment"))}
    if online is None:
        out["note"] = "online AUC unavailable: the logs have no rank_score (candidates table)."
    return out


def _calibration_section(samples: pd.DataFrame, score: str, name: str) -> dict:
    rows = samples.dropna(subset=[score])
    y, p = rows["click"].to_numpy(), rows[score].to_numpy(dtype=float)
    table = calibration_table(y, p, n_bins=10)
    out = {"score": name, "n": len(rows), "mean_predicted": float(p.mean()), "actual_rate": float(y.mean()),
           "predicted_over_actual": float(p.mean() / y.mean()) if y.mean() > 0 else None,
           "ece": expected_calibration_error(y, p, n_bins=10), "table": records(table)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["logloss"] = logloss(y, np.clip(p, 1e-7, 1 - 1e-7))
        out["normalized_entropy"] = normalized_entropy(y, np.clip(p, 1e-7, 1 - 1e-7))
    if "bucket" in rows.columns:
        by = rows.groupby("bucket").agg(mean_predicted=(score, "mean"), actual_rate=("click", "mean"),
                                        n=("click", "size"))
        by["ratio"] = by["mean_predicted"] / by["actual_rate"]
        out["by_bucket"] = records(by)
    return clean(out)


def _window(samples: pd.DataFrame, start_day: int | None, end_day: int | None, experiment_start: int | None,
            cuped: bool) -> tuple[pd.DataFrame, pd.DataFrame | None, int, int]:
    """Rows of the readout window, the CUPED pre-period rows (None without CUPED), first and last day.

    The window starts at ``start_day``, else at ``experiment_start``, else on the first day;
    the pre-period is every day before ``experiment_start`` (the day the treatment went live),
    else before the window.
    """
    days = samples["day"].to_numpy()
    lo = start_day if start_day is not None else (experiment_start if experiment_start is not None
                                                  else int(days.min()))
    hi = int(days.max()) if end_day is None else end_day
    if experiment_start is not None and lo < experiment_start:
        raise ValueError(f"--start must not be before --experiment-start ({format_day(experiment_start)}): the "
                         f"readout window cannot hold days before the treatment. Got {format_day(lo)} instead.")
    if hi < lo:
        raise ValueError(f"end day must not be before start day ({format_day(lo)}). Got {format_day(hi)} instead.")
    window = samples.loc[(days >= lo) & (days <= hi)]
    if len(window) == 0:
        raise ValueError(f"no exposures between {format_day(lo)} and {format_day(hi)}.")
    pre_end = lo if experiment_start is None else experiment_start
    pre = samples.loc[days < pre_end] if cuped else None
    if cuped and (pre is None or len(pre) == 0):
        raise ValueError(f"CUPED needs a pre-period: no exposures before {format_day(pre_end)} "
                         f"({'--experiment-start' if experiment_start is not None else 'the start day'}).")
    return window, pre, lo, hi


def _logged_buckets(facts: LogFacts, samples: pd.DataFrame) -> list[str]:
    logged = {str(b) for b in pd.unique(samples["bucket"])} if "bucket" in samples.columns else set()
    return sorted(logged | set(facts.buckets))


def _scored(window: pd.DataFrame, offline_scores: pd.DataFrame | None) -> pd.DataFrame:
    """The window's exposures, with the bundle's ``offline_score`` where one is given."""
    if offline_scores is None:
        return window
    scored = window.merge(offline_scores.rename(columns={"score": "offline_score"}),
                          on=["request_id", "item_id"], how="inner")
    if len(scored) == 0:
        raise ValueError("the bundle's scores match no exposure of the readout window.")
    return scored


def _score_sections(out: dict, facts: LogFacts, samples: pd.DataFrame, window: pd.DataFrame, lo: int, hi: int,
                    offline_scores: pd.DataFrame | None, offline_name: str, steps: Steps) -> None:
    """AUC, GAUC, calibration and the log funnel of the window, into ``out``."""
    online = "rank_score" if "rank_score" in window.columns else None
    scored = _scored(window, offline_scores)
    offline = "offline_score" if offline_scores is not None else None
    with steps.step("offline vs online AUC"):
        table = auc_table(scored, online, offline)
    out["auc"] = _auc_section(scored, table, online, offline, offline_name)
    with steps.step("GAUC"):
        out["gauc"] = gauc_summary(scored, {"online": online, offline_name: offline})
    cal_score, cal_name = (offline, offline_name) if offline else (online, "online rank_score")
    if cal_score:
        with steps.step("calibration"):
            out["calibration"] = _calibration_section(scored, cal_score, cal_name)
    else:
        out["calibration"] = {"note": "no score to calibrate (no rank_score and no bundle)."}
    with steps.step("log funnel"):
        out["funnel"] = records(facts.funnel(window, (lo, hi)))


def build_readout(
    logs: Logs | LogFacts,
    samples: pd.DataFrame,
    *,
    control: str | None = None,
    treatment: str | None = None,
    unit: str = "user",
    alpha: float = 0.05,
    adjust: str | None = "holm",
    primary: str = "ctr",
    sequential: bool = False,
    tuning_units: int = SEQUENTIAL_TUNING_UNITS,
    min_events: int = MIN_EVENTS,
    segment: str | None = None,
    start_day: int | None = None,
    end_day: int | None = None,
    experiment_start: int | None = None,
    cuped: bool = False,
    aa_splits: int = 500,
    seed: int = 0,
    offline_scores: pd.DataFrame | None = None,
    offline_name: str = "offline",
    candidates: dict[str, pd.DataFrame] | None = None,
    ks: tuple[int, ...] = RECALL_KS,
    quiet: bool = True,
    join_report: dict | None = None,
    _progress: Steps | None = None,
) -> dict:
    """Compute the whole readout as a JSON-ready dict, the verdict first.

    Parameters
    ----------
    logs : ltr.Logs or LogFacts
        The logs, or only the facts the readout needs of them (no recall ``candidates`` then).
    samples : DataFrame
        ``ltr.join_samples(logs).samples``.
    control, treatment : str, optional
        Buckets to compare; without them every bucket is compared with the first (sorted).
    unit : {"user", "request"}
        Randomisation unit.
    alpha : float, default 0.05
        Significance level of the whole readout.
    adjust : {"holm", "bh", None}, default "holm"
        Adjustment of the secondary metrics (None: exploratory); see :func:`eval.ab.compare_buckets`.
    primary : str, default "ctr"
        The metric that decides the verdict.
    sequential, tuning_units, min_events
        See :func:`eval.ab.compare_buckets`.
    segment : str, optional
        A requests column: the primary metric's lift per value of it.
    start_day, end_day : int, optional
        Readout window (day indices); default all days (from ``experiment_start`` when given).
    experiment_start : int, optional
        The day the treatment went live; the CUPED pre-period is the days before it (default:
        the days before ``start_day``).
    cuped : bool, default False
        CUPED with the pre-period; refused (with a warning) when the arms already differ there.
    aa_splits, seed : int
        Random halves of the control bucket for the A/A self-check (0: off) and their seed.
    offline_scores : DataFrame, optional
        ``request_id, item_id, score`` from a ranker bundle (held-out rows).
    candidates : dict, optional
        Recall candidate frames by label.

    Returns
    -------
    dict
        ``verdict`` (one entry per treatment), ``window``, ``ab``, ``self_check``, ``daily``,
        ``segments``, ``auc``, ``gauc``, ``calibration``, ``funnel``, ``recall`` (and ``join``).
    """
    steps = _progress if _progress is not None else Steps(6, quiet)
    facts = LogFacts.of(logs) if isinstance(logs, Logs) else logs
    if candidates and not isinstance(logs, Logs):
        raise ValueError("recall candidates need the logs in memory: give build_readout the Logs, not LogFacts.")
    check_int(aa_splits, "aa_splits", minimum=0)
    window, pre, lo, hi = _window(samples, start_day, end_day, experiment_start, cuped)
    options = _ABOptions(control=control, treatment=treatment, unit=unit, adjust=adjust, primary=primary,
                         inference=Inference(alpha=alpha, min_events=min_events, sequential=sequential,
                                             tuning_units=tuning_units),
                         segment=segment, aa_splits=aa_splits, seed=seed)
    out: dict = {"verdict": [], "window": [format_day(lo), format_day(hi)], "n_exposures": len(window),
                 "n_users": int(window["user_id"].nunique())}
    with steps.step("A/B statistics, A/A self-check, daily view"):
        out.update(_ab_sections(window, options, pre, _logged_buckets(facts, samples)))
    out["verdict"] = verdicts(out["ab"], out["self_check"], hi - lo + 1)
    _score_sections(out, facts, samples, window, lo, hi, offline_scores, offline_name, steps)
    with steps.step("recall funnel"):
        out["recall"] = [clean(recall_funnel(frame, logs, samples, ks=ks, top_ns=TOP_NS, label=label))
                         for label, frame in (candidates or {}).items() if isinstance(logs, Logs)]
    if join_report is not None:
        out["join"] = clean(join_report)
    return clean(out)
