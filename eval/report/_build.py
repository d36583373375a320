"""Every number of the experiment readout, gathered as a JSON-ready dict.

Order of the readout: the A/B table (metric, control, treatment, lift, CI, p, flag) with the
sample-ratio-mismatch check, then offline vs online AUC, GAUC, calibration, the log funnel
and the recall funnel. The renderers (:mod:`eval.report._render`) only format this dict.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from eval.ab import ABResult, compare_all, compare_buckets
from eval.funnel import RECALL_KS, TOP_NS, log_funnel, recall_funnel
from eval.metrics import calibration_table, expected_calibration_error, logloss, normalized_entropy
from eval.online_offline import auc_table, gauc_summary
from eval.report._progress import Steps
from ltr.logs import Logs, format_day

__all__ = ["build_readout"]

_AB_METHOD = ("ratio metrics (CTR, CVR) by the delta method on per-unit sums; "
              "lift CI by the delta method on the log scale; two-sided Wald p-values")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return _clean(frame.reset_index().to_dict(orient="records"))


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


def _ab_result_section(result: ABResult) -> dict:
    return {
        "available": True,
        "control": result.control,
        "treatments": list(result.treatments),
        "unit": result.unit,
        "alpha": result.alpha,
        "adjust": result.adjust,
        "experiment_days": [format_day(d) for d in result.experiment_days],
        "pre_period": None if result.pre_period is None else [format_day(d) for d in result.pre_period],
        "srm": {"chi2": result.srm.chi2, "p_value": result.srm.p_value, "flagged": result.srm.flagged},
        "table": _records(result.table.set_index("metric")),
        "method": "unit = " + result.unit + "; " + _AB_METHOD,
    }


def _ab_section(samples: pd.DataFrame, control: str | None, treatment: str | None, unit: Any, alpha: float,
                adjust: Any, pre_samples: pd.DataFrame | None, logged_buckets: list[str]) -> dict:
    # unit and adjust arrive as the user gave them; compare_buckets / compare_all check them.
    buckets = sorted(samples["bucket"].astype(str).unique()) if "bucket" in samples.columns else []
    if len(buckets) < 2 and control is None and treatment is None:
        note = f"only one bucket ({', '.join(buckets) or 'none'}): there is no comparison."
        return {"available": False, "note": note, "buckets": buckets}
    _check_buckets(buckets, control, treatment, logged_buckets)
    if control is not None and treatment is not None:
        result = compare_buckets(samples, control, treatment, unit=unit, alpha=alpha, adjust=adjust,
                                 pre_samples=pre_samples)
    else:
        result = compare_all(samples, unit=unit, alpha=alpha, adjust=adjust, pre_samples=pre_samples)
    return _ab_result_section(result)


def _auc_section(scored: pd.DataFrame, table: pd.DataFrame, online: str | None, offline: str | None,
                 offline_name: str) -> dict:
    out = {"online_available": online is not None, "offline_available": offline is not None,
           "offline_name": offline_name if offline else None, "n_rows": len(scored),
           "rows": _records(table.set_index("segment"))}
    if online is None:
        out["note"] = "online AUC unavailable: the logs have no rank_score (candidates table)."
    return out


def _calibration_section(samples: pd.DataFrame, score: str, name: str) -> dict:
    rows = samples.dropna(subset=[score])
    y, p = rows["click"].to_numpy(), rows[score].to_numpy(dtype=float)
    table = calibration_table(y, p, n_bins=10)
    out = {"score": name, "n": len(rows), "mean_predicted": float(p.mean()), "actual_rate": float(y.mean()),
           "predicted_over_actual": float(p.mean() / y.mean()) if y.mean() > 0 else None,
           "ece": expected_calibration_error(y, p, n_bins=10), "table": _records(table)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["logloss"] = logloss(y, np.clip(p, 1e-7, 1 - 1e-7))
        out["normalized_entropy"] = normalized_entropy(y, np.clip(p, 1e-7, 1 - 1e-7))
    if "bucket" in rows.columns:
        by = rows.groupby("bucket").agg(mean_predicted=(score, "mean"), actual_rate=("click", "mean"),
                                        n=("click", "size"))
        by["ratio"] = by["mean_predicted"] / by["actual_rate"]
        out["by_bucket"] = _records(by)
    return _clean(out)


def _window(samples: pd.DataFrame, start_day: int | None, end_day: int | None,
            cuped: bool) -> tuple[pd.DataFrame, pd.DataFrame | None, int, int]:
    """Rows of the experiment window, the CUPED pre-period rows (None without CUPED), first and last day."""
    days = samples["day"].to_numpy()
    lo = int(days.min()) if start_day is None else start_day
    hi = int(days.max()) if end_day is None else end_day
    if hi < lo:
        raise ValueError(f"end day must not be before start day ({format_day(lo)}). Got {format_day(hi)} instead.")
    window = samples.loc[(days >= lo) & (days <= hi)]
    if len(window) == 0:
        raise ValueError(f"no exposures between {format_day(lo)} and {format_day(hi)}.")
    pre = samples.loc[days < lo] if cuped else None
    if cuped and (pre is None or len(pre) == 0):
        raise ValueError(f"CUPED needs a pre-period: no exposures before the start day {format_day(lo)}.")
    return window, pre, lo, hi


def _logged_buckets(logs: Logs, samples: pd.DataFrame) -> list[str]:
    logged = set(samples["bucket"].astype(str)) if "bucket" in samples.columns else set()
    if "bucket" in logs.requests.columns:
        logged |= set(logs.requests["bucket"].astype(str))
    return sorted(logged)


def _scored(window: pd.DataFrame, offline_scores: pd.DataFrame | None) -> pd.DataFrame:
    """The window's exposures, with the bundle's ``offline_score`` where one is given."""
    if offline_scores is None:
        return window
    scored = window.merge(offline_scores.rename(columns={"score": "offline_score"}),
                          on=["request_id", "item_id"], how="inner")
    if len(scored) == 0:
        raise ValueError("the bundle's scores match no exposure of the readout window.")
    return scored


def build_readout(
    logs: Logs,
    samples: pd.DataFrame,
    *,
    control: str | None = None,
    treatment: str | None = None,
    unit: str = "user",
    alpha: float = 0.05,
    adjust: str | None = None,
    start_day: int | None = None,
    end_day: int | None = None,
    cuped: bool = False,
    offline_scores: pd.DataFrame | None = None,
    offline_name: str = "offline",
    candidates: dict[str, pd.DataFrame] | None = None,
    ks: tuple[int, ...] = RECALL_KS,
    quiet: bool = True,
    join_report: dict | None = None,
    _progress: Steps | None = None,
) -> dict:
    """Compute the whole readout as a JSON-ready dict.

    Parameters
    ----------
    logs : ltr.Logs
    samples : DataFrame
        ``ltr.join_samples(logs).samples``.
    control, treatment : str, optional
        Buckets to compare; without them every bucket is compared with the first (sorted).
    unit : {"user", "request"}
        Randomisation unit.
    start_day, end_day : int, optional
        Experiment window (day indices); default all days. With ``cuped`` the days before
        ``start_day`` are the CUPED pre-period.
    offline_scores : DataFrame, optional
        ``request_id, item_id, score`` from a ranker bundle (held-out rows).
    candidates : dict, optional
        Recall candidate frames by label.

    Returns
    -------
    dict
    """
    steps = _progress if _progress is not None else Steps(6, quiet)
    window, pre, lo, hi = _window(samples, start_day, end_day, cuped)
    out: dict = {"window": [format_day(lo), format_day(hi)], "n_exposures": len(window),
                 "n_users": int(window["user_id"].nunique())}
    with steps.step("A/B statistics"):
        out["ab"] = _ab_section(window, control, treatment, unit, alpha, adjust, pre, _logged_buckets(logs, samples))

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
        funnel = log_funnel(logs, window)
    out["funnel"] = _records(funnel)
    with steps.step("recall funnel"):
        out["recall"] = [_clean(recall_funnel(frame, logs, samples, ks=ks, top_ns=TOP_NS, label=label))
                         for label, frame in (candidates or {}).items()]
    if join_report is not None:
        out["join"] = _clean(join_report)
    return _clean(out)
