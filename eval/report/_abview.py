"""The A/B pieces of the readout dict: the table with a note per row, the CUPED balance check,
the A/A self-check, the daily view and the segments (all JSON-ready)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from eval.ab import ABResult, SegmentResult, SelfCheck
from eval.ab._stats import wilson_interval
from eval.report._json import clean, records
from ltr.logs import format_day

__all__ = ["ab_section", "daily_section", "segment_section", "self_check_section"]

_METHOD = {
    "delta": ("Wald test of the difference with delta-method variances on per-unit sums; the lift interval is "
              "its inversion (Fieller), so it excludes 0 exactly when p < alpha"),
    "sequential": ("always-valid confidence sequence (asymptotic, Waudby-Smith et al. 2021) for the same Wald "
                   "statistic, tuned to be tightest at {tuning:,d} units: valid however often one looks"),
}


def _row_note(row: pd.Series, min_events: int, sequential: bool) -> str:
    """Why a row is read differently from a plain delta-method row (empty when it is not)."""
    notes = []
    events = f"{row['events_control']:,.0f} vs {row['events_treatment']:,.0f} events"
    if row["method"] == "exact" and sequential:
        notes.append(f"not tested: too few events for the sequential test ({events}; fewer than {min_events} "
                     "in an arm)")
    elif row["method"] == "exact":
        notes.append(f"exact conditional test, few events ({events}; fewer than {min_events} in an arm)")
    elif row["method"] == "undefined":
        notes.append(f"undefined: no difference to test ({events})")
    if np.isfinite(row["ci_low"]) and np.isinf(row["ci_high"]):
        notes.append("no upper bound (no events in control)")
    if row["status"] == "gated":
        notes.append("gated: flagged only once the primary metric is significant")
    elif row["status"] == "exploratory":
        notes.append("exploratory: not adjusted, never flagged")
    return "; ".join(notes)


def _flag(row: pd.Series) -> str:
    if row["significant"]:
        return str(row["direction"])
    return row["status"] if row["status"] in ("gated", "exploratory") else ""


def ab_section(result: ABResult) -> dict:
    """The A/B section of the readout from :func:`eval.ab.compare_buckets` / ``compare_all``."""
    settings = result.inference
    table = result.table.copy()
    table["note"] = [_row_note(r, settings.min_events, settings.sequential) for _, r in table.iterrows()]
    table["flag"] = [_flag(r) for _, r in table.iterrows()]
    method = _METHOD["sequential" if settings.sequential else "delta"].format(tuning=settings.tuning_units)
    cuped = None
    if result.cuped is not None:
        cuped = {"applied": result.cuped.applied, "pre_period": [format_day(d) for d in result.cuped.pre_period],
                 "balanced": result.cuped.balance.balanced, "worst": result.cuped.balance.worst,
                 "balance": records(result.cuped.balance.table.set_index("metric"))}
    adjust = result.adjust or "none"
    return clean({
        "available": True, "control": result.control, "treatments": list(result.treatments), "unit": result.unit,
        "alpha": result.alpha, "adjust": adjust, "primary": result.primary, "sequential": settings.sequential,
        "tuning_units": settings.tuning_units, "min_events": settings.min_events,
        "experiment_days": [format_day(d) for d in result.experiment_days],
        "pre_period": None if result.pre_period is None else [format_day(d) for d in result.pre_period],
        "cuped": cuped, "srm": {"chi2": result.srm.chi2, "p_value": result.srm.p_value, "flagged": result.srm.flagged},
        "table": records(table.set_index("metric")), "warnings": list(result.warnings),
        "method": (f"unit = {result.unit}; {method}; exact conditional test below {settings.min_events} events per "
                   f"arm; primary metric {result.primary} at alpha {result.alpha:g}, the others "
                   + ("exploratory (not adjusted, never flagged)" if result.adjust is None else
                      f"{adjust}-adjusted and flagged only when the primary metric is significant")),
    })


def self_check_section(check: SelfCheck, primary: str, alpha: float) -> dict:
    """The A/A self-check section of the readout."""
    table = check.table
    low, high = wilson_interval(round(check.any_flag_rate * check.splits), check.splits)
    flagged = table.loc[table["flagged"], "metric"].tolist()
    note = (f"{check.splits} random halves of the control bucket's {check.units:,d} {check.split_by}s (seed "
            f"{check.seed}), each tested as this readout tests; a rate clearly above alpha = {alpha:g} (binomial "
            "p < 0.001 against 1.5 alpha) means the variance estimate is broken for these logs")
    return clean({"available": True, "splits": check.splits, "seed": check.seed, "split_by": check.split_by,
                  "units": check.units, "alpha": alpha, "primary": primary, "any_flag_rate": check.any_flag_rate,
                  "any_flag_ci": [low, high], "flagged": flagged, "table": records(table.set_index("metric")),
                  "note": note})


def daily_section(frames: dict[str, pd.DataFrame], metric: str, sequential: bool) -> dict:
    """Per-day and cumulative lift of the primary metric, one entry per treatment."""
    out = []
    for treatment, frame in frames.items():
        rows = frame.assign(day=[format_day(int(d)) for d in frame["day"]])
        out.append({"treatment": treatment, "rows": records(rows.set_index("day"))})
    how = "always-valid confidence sequence" if sequential else "fixed-horizon interval"
    note = (f"{metric}: per day (units active that day) and cumulative up to each day ({how}); a lift that fades "
            "over the days is a novelty effect, a single odd day a logging or serving problem")
    return clean({"available": True, "metric": metric, "sequential": sequential, "by_treatment": out, "note": note})


def segment_section(results: dict[str, SegmentResult]) -> dict:
    """Per-segment lift of the primary metric, one entry per treatment."""
    first = next(iter(results.values()))
    by_treatment = [{"treatment": t, "q": r.q, "q_df": r.q_df, "q_p_value": r.q_p_value,
                     "rows": records(r.table.set_index("segment"))} for t, r in results.items()]
    note = (f"{len(first.table)} segments of {first.column!r} are {len(first.table)} more comparisons: a segment "
            "that 'wins' alone is often chance, so p-values are Holm-adjusted across segments (intervals widened "
            "to match); whether the lift differs between segments is Cochran's Q test")
    return clean({"available": True, "column": first.column, "metric": first.metric, "by_treatment": by_treatment,
                  "note": note})
