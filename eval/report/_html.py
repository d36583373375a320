"""The HTML readout: one self-contained file (inline CSS and SVG, no script, no external asset).

The verdict box comes first, coloured by the decision (green win, red loss, grey
inconclusive) with a red banner when the readout must not be acted on; then the sections,
with significant rows coloured and each plot placed after the table it illustrates.
"""
from __future__ import annotations

import html

from eval.report import _plots
from eval.report._sections import Section, verdict_lines

__all__ = ["html_page"]

_STYLE = """<style>
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1180px;
color:#202124;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.3em}h2{font-size:1.15em;margin:1.6em 0 .4em;border-bottom:1px solid #dadce0}
table{border-collapse:collapse;margin:.4em 0;font-size:13px}
td,th{border:1px solid #dadce0;padding:3px 8px;text-align:right;vertical-align:top;white-space:nowrap}
td.l:last-child{white-space:normal;min-width:14em}
th{background:#f1f3f4}td.l,th.l{text-align:left}
tr.up td{background:#e6f4ea}tr.down td{background:#fce8e6}tr.gated td,tr.exploratory td{color:#80868b}
.note{color:#5f6368;font-size:12px;max-width:1100px}
.verdict{border:2px solid #9aa0a6;background:#f8f9fa;border-radius:10px;padding:.8em 1.4em;margin:1em 0}
.verdict.win{border-color:#1e8e3e;background:#e6f4ea}.verdict.loss{border-color:#c5221f;background:#fce8e6}
.verdict h2{border:none;margin:.2em 0 .5em}
.verdict .headline{font-size:1.3em;font-weight:600;margin:.2em 0 .6em}
.verdict dl{display:grid;grid-template-columns:9.5em 1fr;gap:.25em 1em;margin:0;font-size:14px}
.verdict dt{font-weight:600;color:#3c4043}.verdict dd{margin:0}
.banner{background:#c5221f;color:#fff;padding:.5em .8em;border-radius:6px;font-weight:600;margin-bottom:.6em}
.warn{background:#fef7e0;border-left:4px solid #f9ab00;padding:.4em .8em;margin:.4em 0;font-size:13px}
.plots{display:flex;flex-wrap:wrap;gap:1em;margin:.6em 0}.plots svg{max-width:100%;height:auto}
</style>"""

_LEFT_HEADS = {"treatment", "metric", "role", "flag", "note", "segment", "day", "bucket", "score", "variance"}
_DECISION_CLASS = {"significant win": "win", "significant loss": "loss"}


def _verdict_box(v: dict) -> str:
    lines = verdict_lines(v)
    kind = _DECISION_CLASS.get(v["decision"], "inconclusive")
    parts = [f"<section class='verdict {kind}' id='verdict-{html.escape(v['treatment'])}'>",
             (f"<h2>Verdict: {html.escape(v['treatment'])} vs {html.escape(v['control'])} "
              f"({html.escape(v['metric'])}, primary metric)</h2>")]
    if v["problems"]:
        parts.append("<div class='banner'>Do not act on this readout: " + html.escape("; ".join(v["problems"]))
                     + "</div>")
    parts.append(f"<div class='headline'>{html.escape(v['headline'])}</div><dl>")
    for label, text in lines:
        if label in ("Decision", "DO NOT ACT", "Warning"):
            continue
        parts.append(f"<dt>{html.escape(label)}</dt><dd>{html.escape(text)}</dd>")
    parts.append("</dl>")
    parts += [f"<div class='warn'>{html.escape(w)}</div>" for w in v["warnings"]]
    return "".join(parts) + "</section>"


def _table(section: Section) -> str:
    left = {i for i, h in enumerate(section.head) if h in _LEFT_HEADS}
    out = [f"<h2>{html.escape(section.title)}</h2><table><tr>"
           + "".join(f"<th class='l'>{html.escape(h)}</th>" if j in left else f"<th>{html.escape(h)}</th>"
                     for j, h in enumerate(section.head)) + "</tr>"]
    for i, row in enumerate(section.rows):
        cls = section.classes[i] if i < len(section.classes) and section.classes[i] else ""
        cells = "".join((f"<td class='l'>{html.escape(str(x))}</td>" if j in left
                         else f"<td>{html.escape(str(x))}</td>") for j, x in enumerate(row))
        out.append(f"<tr class='{cls}'>{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    out.append("</table>" + (f"<p class='note'>{html.escape(section.note)}</p>" if section.note else ""))
    return "\n".join(out)


def _plots_after(key: str, readout: dict, done: set[str]) -> list[str]:
    """The plots that follow the (last) section of kind ``key``, each drawn once."""
    if key in done:
        return []
    done.add(key)
    ab = readout["ab"]
    if key == "ab" and ab.get("available"):
        return [_plots.lift_forest(ab, t) for t in ab["treatments"]]
    if key == "daily" and readout["daily"].get("available"):
        return [_plots.cumulative_lift(readout["daily"], e) for e in readout["daily"]["by_treatment"]]
    if key == "segments" and readout.get("segments"):
        return [_plots.segment_forest(readout["segments"], e) for e in readout["segments"]["by_treatment"]]
    if key == "calibration" and "table" in readout["calibration"]:
        return [_plots.reliability_diagram(readout["calibration"])]
    if key == "recall" and readout["recall"]:
        return [_plots.recall_curves(readout["recall"])]
    return []


def html_page(title: str, readout: dict, sections: list[Section]) -> str:
    """The whole HTML document: verdict boxes, then each section followed by its plots."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             _STYLE + "</head><body>", f"<h1>{html.escape(title)}</h1>"]
    parts += [_verdict_box(v) for v in readout["verdict"]]
    done: set[str] = set()
    for i, section in enumerate(sections):
        parts.append(_table(section))
        last_of_kind = i + 1 == len(sections) or sections[i + 1].key != section.key
        if last_of_kind:
            plots = _plots_after(section.key, readout, done)
            if plots:
                parts.append("<div class='plots'>" + "".join(plots) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
