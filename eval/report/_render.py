"""Renderers of a readout dict (:func:`eval.report.build_readout`): text, Markdown, HTML, JSON.

They only format numbers that are already in the readout. Every form starts with the verdict
block (one per treatment), then the sections of :mod:`eval.report._sections`; the HTML form
(:mod:`eval.report._html`) adds the plots.
"""
from __future__ import annotations

import json

from eval.report._html import html_page
from eval.report._sections import Section, sections, verdict_lines

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "md", "html", "json")


_LEFT = {"note", "flag", "role", "variance", "metric", "segment", "treatment", "day"}


def _text_line(cells: list[str], widths: list[int], left: set[int]) -> str:
    return "  ".join(str(x).ljust(w) if i in left else str(x).rjust(w)
                     for i, (x, w) in enumerate(zip(cells, widths, strict=True))).rstrip()


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    # Labels are left-aligned, numbers right-aligned.
    left = {0, 1} | {i for i, h in enumerate(head) if h in _LEFT}
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [_text_line(head, widths, left), _text_line(["-" * w for w in widths], widths, left)]
    return "\n".join(lines + [_text_line(r, widths, left) for r in rows])


def _md_cell(value: str) -> str:
    return str(value).replace("|", "\\|")


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(out + ["| " + " | ".join(_md_cell(x) for x in r) + " |" for r in rows])


def _verdict_title(v: dict) -> str:
    return f"Verdict: {v['treatment']} vs {v['control']} ({v['metric']}, primary)"


def _text(title: str, readout: dict, parts_: list[Section]) -> str:
    parts = [title, "=" * len(title)]
    for v in readout["verdict"]:
        head = _verdict_title(v)
        parts += ["", head, "-" * len(head)]
        parts += [f"{label + ':':<16}{text}" for label, text in verdict_lines(v)]
    for s in parts_:
        parts += ["", s.title, _text_table(s.head, s.rows)] + ([s.note] if s.note else [])
    return "\n".join(parts) + "\n"


def _markdown(title: str, readout: dict, parts_: list[Section]) -> str:
    parts = [f"# {title}"]
    for v in readout["verdict"]:
        parts += ["", f"## {_verdict_title(v)}", ""]
        parts += [f"> **{label}:** {text}  " for label, text in verdict_lines(v)]
    for s in parts_:
        parts += ["", f"## {s.title}", "", _md_table(s.head, s.rows)] + (["", f"_{s.note}_"] if s.note else [])
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
        The whole document, ending in a newline; the verdict comes first in every format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Got {fmt!r} instead.")
    if fmt == "json":
        return json.dumps(readout, indent=2, sort_keys=True) + "\n"
    title = f"Experiment readout {readout['window'][0]} .. {readout['window'][1]}"
    parts = sections(readout)
    if fmt == "text":
        return _text(title, readout, parts)
    if fmt == "md":
        return _markdown(title, readout, parts)
    return html_page(title, readout, parts)
