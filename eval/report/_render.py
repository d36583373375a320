"""Renderers of a readout dict (:func:`eval.report.build_readout`): text, Markdown, HTML, JSON.

They only format numbers that are already in the readout; the text, Markdown and HTML
renderers share one list of sections (title, table head, rows, note).
"""
from __future__ import annotations

import html
import json
from typing import NamedTuple

from eval.report import _plots

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "md", "html", "json")
_PERCENT_METRICS = {"ctr", "cvr", "uctr", "ucvr", "request_ctr", "request_cvr"}
_AB_HEAD = ["treatment", "metric", "control", "treatment value", "lift", "95% CI", "p", "flag"]
_HTML_STYLE = ("<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
               "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
               "td:first-child,td:nth-child(2){text-align:left}.note{color:#555;font-size:90%}"
               ".plots svg{margin:0 1em 1em 0}</style>")


class _Section(NamedTuple):
    title: str
    head: list[str]
    rows: list[list[str]]
    note: str


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4%}" if metric in _PERCENT_METRICS else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def _num(section: dict, key: str, spec: str) -> str:
    """``section[key]`` formatted by ``spec``; undefined values (None in the readout) as "-"."""
    return "-" if section.get(key) is None else format(section[key], spec)


# ----------------------------------------------------------------------------- sections


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


def _ab_sections(ab: dict) -> list[_Section]:
    if not ab.get("available"):
        return [_Section("A/B readout", ["note"], [[ab["note"]]], "")]
    note = (f"control = {ab['control']}; {ab['method']}; alpha {ab['alpha']}"
            + (f"; p adjusted by {ab['adjust']}" if ab["adjust"] else "")
            + (f"; CUPED pre-period {ab['pre_period'][0]} .. {ab['pre_period'][1]}" if ab["pre_period"] else ""))
    srm = ab["srm"]
    return [
        _Section("A/B readout " + " .. ".join(ab["experiment_days"]), _AB_HEAD, _ab_rows(ab), note),
        _Section("Sample ratio mismatch", ["chi2", "p", "flag"],
                 [[f"{srm['chi2']:.3f}", f"{srm['p_value']:.4g}",
                   "SRM! do not trust the readout" if srm["flagged"] else "ok"]],
                 "chi-square test of units per bucket against the expected split; flagged at p < 0.001"),
    ]


def _auc_section(auc: dict) -> _Section:
    rows = [[r["segment"], r["value"], f"{r['n']:,d}", _fmt("", r["online_auc"]), _fmt("", r["offline_auc"]),
             "-" if r["gap"] is None else f"{r['gap']:+.4f}"] for r in auc["rows"]]
    note = auc.get("note", "") or f"same {auc['n_rows']:,d} rows for both scores"
    return _Section("Offline vs online AUC", ["segment", "value", "rows", "online AUC", "offline AUC", "gap"],
                    rows, note)


def _gauc_section(gauc: dict) -> _Section:
    rows = [[k, _fmt("", v["gauc"]), f"{v['users_used']:,d}", f"{v['users_skipped_one_class']:,d}"]
            for k, v in gauc.items()]
    return _Section("GAUC (per user, exposure-weighted)", ["score", "GAUC", "users used", "users skipped (one class)"],
                    rows, "")


def _calibration_section(cal: dict) -> _Section:
    if "table" not in cal:
        return _Section("Calibration", ["note"], [[cal["note"]]], "")
    rows = [[str(r["bin"]), f"{r['count']:,d}", f"{r['mean_predicted']:.4f}", f"{r['actual_rate']:.4f}",
             f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"] for r in cal["table"]]
    # Undefined values (no click at all: no ratio, no NE) are None in the readout.
    note = (f"score: {cal['score']}; mean predicted {_num(cal, 'mean_predicted', '.4f')} vs actual "
            f"{_num(cal, 'actual_rate', '.4f')} (ratio {_num(cal, 'predicted_over_actual', '.3f')}); "
            f"ECE {_num(cal, 'ece', '.4f')}; logloss {_num(cal, 'logloss', '.4f')}; "
            f"NE {_num(cal, 'normalized_entropy', '.4f')}")
    return _Section("Calibration (equal-mass bins)", ["bin", "rows", "mean predicted", "actual", "95% CI"], rows, note)


def _funnel_row(r: dict, has_cand: bool) -> list[str]:
    candidates = ([f"{r['candidates']:,d}",
                   "-" if r.get("candidates_per_request") is None else f"{r['candidates_per_request']:.2f}",
                   _fmt("ctr", r.get("exposure_rate"))] if has_cand else [])
    return [r["bucket"], f"{r['users']:,d}", f"{r['requests']:,d}", *candidates,
            f"{r['exposures']:,d}", f"{r['clicks']:,d}", f"{r['orders']:,d}", _fmt("ctr", r["ctr"]),
            _fmt("cvr", r["cvr"]), _fmt("ctr", r.get("order_rate"))]


def _funnel_section(funnel: list[dict]) -> _Section:
    has_cand = "candidates" in funnel[0]
    head = (["bucket", "users", "requests"] + (["candidates", "cand/req", "exposed share"] if has_cand else [])
            + ["exposures", "clicks", "orders", "CTR", "CVR", "orders/exposure"])
    note = ("rates between steps: candidates per request, exposed share of candidates, CTR = clicks / exposures, "
            "CVR = orders / clicks, orders per exposure")
    return _Section("Funnel per bucket", head, [_funnel_row(r, has_cand) for r in funnel], note)


def _recall_section(rec: dict) -> _Section:
    ks = sorted(int(k) for k in rec["coverage"])
    rows = [[str(k), _fmt("ctr", rec["hitrate_click"].get(str(k))), _fmt("ctr", rec["hitrate_order"].get(str(k))),
             _fmt("", rec.get("mean_hit_position", {}).get(str(k))), _fmt("ctr", rec["coverage"].get(str(k)))]
            for k in ks]
    tops = ", ".join(f"top-{n}: {v:.2%}" for n, v in rec["top_n_share"].items()) or "no rank_pos logged"
    note = (f"{rec['n_requests']:,d} requests ({rec['requests_with_candidates']:,d} with candidates), "
            f"{rec['n_click_targets']:,d} clicked / {rec['n_order_targets']:,d} ordered items; "
            f"share of the online ranker's top-N retrieved: {tops}")
    return _Section(f"Recall funnel: {rec['label']}",
                    ["K", "hitrate click", "hitrate order", "mean hit position", "coverage"], rows, note)


def _sections(readout: dict) -> list[_Section]:
    """The sections in readout order; shared by the text, Markdown and HTML renderers."""
    return [*_ab_sections(readout["ab"]), _auc_section(readout["auc"]), _gauc_section(readout["gauc"]),
            _calibration_section(readout["calibration"]), _funnel_section(readout["funnel"]),
            *[_recall_section(rec) for rec in readout["recall"]]]


# ----------------------------------------------------------------------------- formats


def _text_line(cells: list[str], widths: list[int]) -> str:
    # The first two columns are labels (left-aligned), the rest numbers (right-aligned).
    return "  ".join(str(x).rjust(w) if i > 1 else str(x).ljust(w)
                     for i, (x, w) in enumerate(zip(cells, widths, strict=True)))


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [_text_line(head, widths), _text_line(["-" * w for w in widths], widths)]
    return "\n".join(lines + [_text_line(r, widths) for r in rows])


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(out + ["| " + " | ".join(str(x) for x in r) + " |" for r in rows])


def _text(title: str, sections: list[_Section]) -> str:
    parts = [title, "=" * len(title)]
    for name, head, rows, note in sections:
        parts += ["", name, _text_table(head, rows)] + ([note] if note else [])
    return "\n".join(parts) + "\n"


def _markdown(title: str, sections: list[_Section]) -> str:
    parts = [f"# {title}"]
    for name, head, rows, note in sections:
        parts += ["", f"## {name}", "", _md_table(head, rows)] + (["", f"_{note}_"] if note else [])
    return "\n".join(parts) + "\n"


def _html_plots(readout: dict) -> list[str]:
    plots = []
    ab = readout["ab"]
    if ab.get("available"):
        plots += [_plots.lift_forest(ab, treatment) for treatment in ab["treatments"]]
    if "table" in readout["calibration"]:
        plots.append(_plots.reliability_diagram(readout["calibration"]))
    if readout["recall"]:
        plots.append(_plots.recall_curves(readout["recall"]))
    return plots


def _html(title: str, sections: list[_Section], readout: dict) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             _HTML_STYLE + "</head><body>", f"<h1>{html.escape(title)}</h1>"]
    for name, head, rows, note in sections:
        parts.append(f"<h2>{html.escape(name)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                     + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows]
        parts.append("</table>" + (f"<p class='note'>{html.escape(note)}</p>" if note else ""))
    parts.append("<h2>Plots</h2><div class='plots'>" + "".join(_html_plots(readout)) + "</div></body></html>")
    return "\n".join(parts) + "\n"


def render(readout: dict, fmt: str) -> str:
    """Format a readout as ``text``, ``md``, ``html`` or ``json``.

    Parameters
    ----------
    readout : dict
        From :func:`eval.report.build_readout`.
    fmt : {"text", "md", "html", "json"}

    Returns
    -------
    str
        The whole document, ending in a newline.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Got {fmt!r} instead.")
    if fmt == "json":
        return json.dumps(readout, indent=2, sort_keys=True) + "\n"
    title = f"Experiment readout {readout['window'][0]} .. {readout['window'][1]}"
    sections = _sections(readout)
    if fmt == "text":
        return _text(title, sections)
    if fmt == "md":
        return _markdown(title, sections)
    return _html(title, sections, readout)
