"""``python -m eval.report LOGS``: the experiment readout (text, Markdown, HTML or JSON).

Order of the readout: the A/B table (metric, control, treatment, lift, CI, p, flag) with the
sample-ratio-mismatch check, then offline vs online AUC, GAUC, calibration, the log funnel
and the recall funnel. :func:`build_readout` returns every number as a JSON-ready dict; the
renderers only format it.
"""
from __future__ import annotations

import html
import json
import math
import sys
import time
import warnings

import numpy as np
import pandas as pd

from eval.ab import compare_all, compare_buckets
from eval.funnel import RECALL_KS, TOP_NS, log_funnel, recall_funnel
from eval.metrics import calibration_table, expected_calibration_error, logloss, normalized_entropy
from eval.online_offline import auc_table, gauc_summary
from eval.report import _svg
from ltr.logs import format_day

__all__ = ["FORMATS", "build_readout", "render"]

FORMATS = ("text", "md", "html", "json")
_PERCENT_METRICS = {"ctr", "cvr", "uctr", "ucvr", "request_ctr", "request_cvr"}


class _Steps:
    """One line per long step on stderr ("[2/6] offline vs online AUC ... 0.4 s"); silent when quiet."""

    def __init__(self, total: int, quiet: bool, done: int = 0):
        self.total, self.quiet, self.done = total, quiet, done

    def __call__(self, name: str, fn, *args, **kwargs):
        self.done += 1
        start = time.perf_counter()
        if not self.quiet:
            print(f"[{self.done}/{self.total}] {name} ...", end="", file=sys.stderr, flush=True)
        result = fn(*args, **kwargs)
        if not self.quiet:
            print(f" {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        return result


def _clean(value):
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


def _ab_section(samples: pd.DataFrame, control: str | None, treatment: str | None, unit: str, alpha: float,
                adjust: str | None, pre_samples: pd.DataFrame | None, logged_buckets: list[str]) -> dict:
    buckets = sorted(samples["bucket"].astype(str).unique()) if "bucket" in samples.columns else []
    if len(buckets) < 2 and control is None and treatment is None:
        return {"available": False, "note": f"only one bucket ({', '.join(buckets) or 'none'}): there is no comparison.",
                "buckets": buckets}
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
    if control is not None:
        result = compare_buckets(samples, control, treatment, unit=unit, alpha=alpha, adjust=adjust,
                                 pre_samples=pre_samples)
    else:
        result = compare_all(samples, unit=unit, alpha=alpha, adjust=adjust, pre_samples=pre_samples)
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
        "method": ("unit = " + result.unit + "; ratio metrics (CTR, CVR) by the delta method on per-unit sums; "
                   "lift CI by the delta method on the log scale; two-sided Wald p-values"),
    }


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
        by = rows.groupby("bucket").agg(mean_predicted=(score, "mean"), actual_rate=("click", "mean"), n=("click", "size"))
        by["ratio"] = by["mean_predicted"] / by["actual_rate"]
        out["by_bucket"] = _records(by)
    return _clean(out)


def build_readout(
    logs,
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
    _progress: _Steps | None = None,
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
    steps = _progress if _progress is not None else _Steps(6, quiet)
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

    out: dict = {"window": [format_day(lo), format_day(hi)], "n_exposures": len(window),
                 "n_users": int(window["user_id"].nunique())}
    logged = set(samples["bucket"].astype(str)) if "bucket" in samples.columns else set()
    if "bucket" in logs.requests.columns:
        logged |= set(logs.requests["bucket"].astype(str))
    out["ab"] = steps("A/B statistics", _ab_section, window, control, treatment, unit, alpha, adjust, pre,
                      sorted(logged))

    online = "rank_score" if "rank_score" in window.columns else None
    scored = window
    if offline_scores is not None:
        scored = window.merge(offline_scores.rename(columns={"score": "offline_score"}),
                              on=["request_id", "item_id"], how="inner")
        if len(scored) == 0:
            raise ValueError("the bundle's scores match no exposure of the readout window.")
    offline = "offline_score" if offline_scores is not None else None
    table = steps("offline vs online AUC", auc_table, scored, online, offline)
    out["auc"] = {"online_available": online is not None, "offline_available": offline is not None,
                  "offline_name": offline_name if offline else None, "n_rows": len(scored),
                  "rows": _records(table.set_index("segment"))}
    if online is None:
        out["auc"]["note"] = "online AUC unavailable: the logs have no rank_score (candidates table)."
    out["gauc"] = steps("GAUC", gauc_summary, scored, {"online": online, offline_name: offline})
    cal_score, cal_name = (offline, offline_name) if offline else (online, "online rank_score")
    out["calibration"] = (steps("calibration", _calibration_section, scored, cal_score, cal_name)
                          if cal_score else {"note": "no score to calibrate (no rank_score and no bundle)."})
    out["funnel"] = _records(steps("log funnel", log_funnel, logs, window))

    def _recall():
        return [_clean(recall_funnel(frame, logs, samples, ks=ks, top_ns=TOP_NS, label=label))
                for label, frame in (candidates or {}).items()]
    out["recall"] = steps("recall funnel", _recall)
    if join_report is not None:
        out["join"] = _clean(join_report)
    return _clean(out)


# ----------------------------------------------------------------------------- rendering


def _fmt(metric: str, value) -> str:
    if value is None:
        return "-"
    return f"{value:.4%}" if metric in _PERCENT_METRICS else f"{value:.4f}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:+.2%}"


def _ab_rows(ab: dict) -> list[list[str]]:
    rows = []
    for r in ab["table"]:
        flag = ""
        if r.get("significant"):
            flag = "up" if (r.get("lift") or 0) > 0 else "down"
        ci = f"[{_pct(r.get('ci_low'))}, {_pct(r.get('ci_high'))}]"
        p = "-" if r.get("p_adjusted") is None else f"{r['p_adjusted']:.4f}"
        rows.append([r["treatment_bucket"], r["metric"], _fmt(r["metric"], r.get("control")),
                     _fmt(r["metric"], r.get("treatment")), _pct(r.get("lift")), ci, p, flag])
    return rows


_AB_HEAD = ["treatment", "metric", "control", "treatment value", "lift", "95% CI", "p", "flag"]


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).rjust(w) if i > 1 else str(x).ljust(w) for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(out + ["| " + " | ".join(str(x) for x in r) + " |" for r in rows])


def _sections(readout: dict) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, head, rows, note) per section; shared by the text, Markdown and HTML renderers."""
    out = []
    ab = readout["ab"]
    if ab.get("available"):
        note = (f"control = {ab['control']}; {ab['method']}; alpha {ab['alpha']}"
                + (f"; p adjusted by {ab['adjust']}" if ab["adjust"] else "")
                + (f"; CUPED pre-period {ab['pre_period'][0]} .. {ab['pre_period'][1]}" if ab["pre_period"] else ""))
        out.append(("A/B readout " + " .. ".join(ab["experiment_days"]), _AB_HEAD, _ab_rows(ab), note))
        srm = ab["srm"]
        out.append(("Sample ratio mismatch", ["chi2", "p", "flag"],
                    [[f"{srm['chi2']:.3f}", f"{srm['p_value']:.4g}", "SRM! do not trust the readout" if srm["flagged"] else "ok"]],
                    "chi-square test of units per bucket against the expected split; flagged at p < 0.001"))
    else:
        out.append(("A/B readout", ["note"], [[ab["note"]]], ""))
    auc = readout["auc"]
    rows = [[r["segment"], r["value"], f"{r['n']:,d}", _fmt("", r["online_auc"]), _fmt("", r["offline_auc"]),
             "-" if r["gap"] is None else f"{r['gap']:+.4f}"] for r in auc["rows"]]
    note = auc.get("note", "") or f"same {auc['n_rows']:,d} rows for both scores"
    out.append(("Offline vs online AUC", ["segment", "value", "rows", "online AUC", "offline AUC", "gap"], rows, note))
    out.append(("GAUC (per user, exposure-weighted)", ["score", "GAUC", "users used", "users skipped (one class)"],
                [[k, _fmt("", v["gauc"]), f"{v['users_used']:,d}", f"{v['users_skipped_one_class']:,d}"]
                 for k, v in readout["gauc"].items()], ""))
    cal = readout["calibration"]
    if "table" in cal:
        rows = [[str(r["bin"]), f"{r['count']:,d}", f"{r['mean_predicted']:.4f}", f"{r['actual_rate']:.4f}",
                 f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"] for r in cal["table"]]
        # Undefined values (no click at all: no ratio, no NE) are None in the readout.
        num = lambda key, spec: "-" if cal.get(key) is None else format(cal[key], spec)
        note = (f"score: {cal['score']}; mean predicted {num('mean_predicted', '.4f')} vs actual "
                f"{num('actual_rate', '.4f')} (ratio {num('predicted_over_actual', '.3f')}); ECE {num('ece', '.4f')}; "
                f"logloss {num('logloss', '.4f')}; NE {num('normalized_entropy', '.4f')}")
        out.append(("Calibration (equal-mass bins)", ["bin", "rows", "mean predicted", "actual", "95% CI"], rows, note))
    else:
        out.append(("Calibration", ["note"], [[cal["note"]]], ""))
    has_cand = "candidates" in readout["funnel"][0]
    head = ["bucket", "users", "requests"] + (["candidates", "cand/req", "exposed share"] if has_cand else []) + \
        ["exposures", "clicks", "orders", "CTR", "CVR", "orders/exposure"]
    rows = [[r["bucket"], f"{r['users']:,d}", f"{r['requests']:,d}"]
            + ([f"{r['candidates']:,d}", "-" if r.get("candidates_per_request") is None else f"{r['candidates_per_request']:.2f}",
                _fmt("ctr", r.get("exposure_rate"))] if has_cand else [])
            + [f"{r['exposures']:,d}", f"{r['clicks']:,d}", f"{r['orders']:,d}", _fmt("ctr", r["ctr"]), _fmt("cvr", r["cvr"]),
               _fmt("ctr", r.get("order_rate"))]
            for r in readout["funnel"]]
    note = ("rates between steps: candidates per request, exposed share of candidates, CTR = clicks / exposures, "
            "CVR = orders / clicks, orders per exposure")
    out.append(("Funnel per bucket", head, rows, note))
    for rec in readout["recall"]:
        ks = sorted(int(k) for k in rec["coverage"])
        rows = [[str(k), _fmt("ctr", rec["hitrate_click"].get(str(k))), _fmt("ctr", rec["hitrate_order"].get(str(k))),
                 _fmt("", rec.get("mean_hit_position", {}).get(str(k))), _fmt("ctr", rec["coverage"].get(str(k)))]
                for k in ks]
        tops = ", ".join(f"top-{n}: {v:.2%}" for n, v in rec["top_n_share"].items()) or "no rank_pos logged"
        note = (f"{rec['n_requests']:,d} requests ({rec['requests_with_candidates']:,d} with candidates), "
                f"{rec['n_click_targets']:,d} clicked / {rec['n_order_targets']:,d} ordered items; "
                f"share of the online ranker's top-N retrieved: {tops}")
        out.append((f"Recall funnel: {rec['label']}", ["K", "hitrate click", "hitrate order", "mean hit position", "coverage"],
                    rows, note))
    return out


def render(readout: dict, fmt: str) -> str:
    """Format a readout as ``text``, ``md``, ``html`` or ``json``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Got {fmt!r} instead.")
    if fmt == "json":
        return json.dumps(readout, indent=2, sort_keys=True) + "\n"
    title = f"Experiment readout {readout['window'][0]} .. {readout['window'][1]}"
    sections = _sections(readout)
    if fmt == "text":
        parts = [title, "=" * len(title)]
        for name, head, rows, note in sections:
            parts += ["", name, _text_table(head, rows)] + ([note] if note else [])
        return "\n".join(parts) + "\n"
    if fmt == "md":
        parts = [f"# {title}"]
        for name, head, rows, note in sections:
            parts += ["", f"## {name}", "", _md_table(head, rows)] + (["", f"_{note}_"] if note else [])
        return "\n".join(parts) + "\n"
    return _html(title, sections, readout)


def _html(title: str, sections, readout: dict) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
             "td:first-child,td:nth-child(2){text-align:left}.note{color:#555;font-size:90%}"
             ".plots svg{margin:0 1em 1em 0}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for name, head, rows, note in sections:
        parts.append(f"<h2>{html.escape(name)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows]
        parts.append("</table>" + (f"<p class='note'>{html.escape(note)}</p>" if note else ""))
    plots = []
    ab = readout["ab"]
    if ab.get("available"):
        for treatment in ab["treatments"]:
            rows = [r for r in ab["table"] if r["treatment_bucket"] == treatment]
            plots.append(_svg.lift_forest([r["metric"] for r in rows], [r.get("lift") for r in rows],
                                          [r.get("ci_low") for r in rows], [r.get("ci_high") for r in rows],
                                          f"{treatment} vs {ab['control']}"))
    cal = readout["calibration"]
    if "table" in cal:
        t = cal["table"]
        plots.append(_svg.reliability_diagram([r["mean_predicted"] for r in t], [r["actual_rate"] for r in t],
                                              [r["ci_low"] for r in t], [r["ci_high"] for r in t],
                                              f"Reliability: {cal['score']}"))
    if readout["recall"]:
        series = {f"{r['label']} (click)": {int(k): v for k, v in r["hitrate_click"].items()} for r in readout["recall"]}
        plots.append(_svg.k_curves(series, "Recall hitrate@K of clicked items", "hitrate"))
    parts.append("<h2>Plots</h2><div class='plots'>" + "".join(plots) + "</div></body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- CLI
