"""The plots of the HTML readout, drawn with matplotlib from pieces of the readout dict.

The interface is the public functions: each takes a piece of the readout and returns one
inline ``<svg>`` element with an ``id`` and a ``<title>`` (what the browser test looks for).
matplotlib is used through its object API (``Figure`` with an explicit Agg canvas), never
pyplot: no global figure registry, no backend switch for the caller. Each plot is drawn inside
``matplotlib.style.context("default")`` and ``rc_context`` (text kept as text, a fixed id salt so
the same readout gives the same file): the caller's rcParams neither change nor leak into the
plots, and they are restored on exit.
"""
from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["cumulative_lift", "lift_forest", "recall_curves", "reliability_diagram", "segment_forest"]

UP, DOWN, NEUTRAL, MUTED = "#1e8e3e", "#c5221f", "#1a73e8", "#9aa0a6"
_SERIES = ("#1a73e8", "#e8710a", "#1e8e3e", "#9334e6", "#c5221f", "#12b5cb", "#5f6368")


@contextmanager
def _own_style(plot_id: str) -> Iterator[None]:
    """matplotlib's default style plus the SVG settings, for the duration of one plot."""
    import matplotlib
    from matplotlib import style

    with style.context("default"), matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": plot_id}):
        yield


def _isolated(draw: Callable[..., str]) -> Callable[..., str]:
    """Run a public plot function inside :func:`_own_style`."""

    @wraps(draw)
    def wrapper(*args: object) -> str:
        with _own_style(draw.__name__):
            return draw(*args)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (matplotlib is imported here: ``import eval`` stays light)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _svg(fig: Figure, plot_id: str, title: str) -> str:
    """``fig`` as an inline SVG element with ``id=plot_id`` and a ``<title>``."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": plot_id}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    # Drop the XML prologue and matplotlib's RDF metadata (creator and licence URLs).
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)
    attrs = f'<svg id="{html.escape(plot_id)}" class="plot" role="img" aria-label="{html.escape(title)}"'
    text = text.replace("<svg", attrs, 1)
    # Ids inside one figure are unique; several figures in one page must not share them.
    text = re.sub(r'(id="|href="#|url\(#)(?!' + re.escape(plot_id) + r")", r"\g<1>" + plot_id + "-", text)
    head_end = text.index(">") + 1
    return text[:head_end] + f"<title>{html.escape(title)}</title>" + text[head_end:]


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _values(rows: list[dict], key: str) -> list[float]:
    """``row[key]`` of every row as floats, NaN where the readout has None (undefined)."""
    return [float("nan") if r.get(key) is None else float(r[key]) for r in rows]


def _forest(labels: Sequence[str], lift: Sequence[float], low: Sequence[float], high: Sequence[float],
            colours: Sequence[str], bold: Sequence[bool], title: str, x_label: str) -> Figure:
    """Relative lift with its interval per label (NaN: undefined), zero line dashed; an interval
    without upper bound (inf) gets an arrow."""
    fig = _figure(6.4, 0.45 * len(labels) + 1.2)
    ax = fig.add_subplot()
    finite = [v for v in (*lift, *low, *high) if math.isfinite(v)] or [0.0]
    lo, hi = min(min(finite), 0.0), max(max(finite), 0.0)
    pad = (hi - lo) * 0.08 or 0.01
    for i, (v, a, b, colour) in enumerate(zip(lift, low, high, colours, strict=True)):
        y = len(labels) - 1 - i
        if math.isfinite(a):
            ax.hlines(y, a, b if math.isfinite(b) else hi + pad, color=colour, linewidth=2.2)
            if not math.isfinite(b):
                ax.annotate("", xy=(hi + pad, y), xytext=(hi, y), arrowprops={"arrowstyle": "->", "color": colour})
        if math.isfinite(v):
            ax.plot([v], [y], "o", color=colour, markersize=6)
    ax.axvline(0.0, color="#5f6368", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(list(reversed(labels)))
    for tick, strong in zip(ax.get_yticklabels(), reversed(bold), strict=True):
        tick.set_fontweight("bold" if strong else "normal")
    ax.set_xlim(lo - pad, hi + pad)
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:+.0%}" if abs(hi - lo) > 0.05 else f"{x:+.1%}")
    ax.set_xlabel(x_label)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", color="#e8eaed")
    return fig


def _colour(row: dict) -> str:
    if row.get("significant"):
        return UP if row.get("direction") == "up" else DOWN
    return MUTED if row.get("status") in ("gated", "exploratory") else NEUTRAL


@_isolated
def lift_forest(ab: dict, treatment: str) -> str:
    """Lift with its interval per metric of one treatment (green / red: significant up / down)."""
    rows = [r for r in ab["table"] if r["treatment_bucket"] == treatment]
    # A missing upper bound of a defined lower one is an interval without upper bound.
    high = [float("inf") if r.get("ci_high") is None and r.get("ci_low") is not None else v
            for r, v in zip(rows, _values(rows, "ci_high"), strict=True)]
    fig = _forest([r["metric"] for r in rows], _values(rows, "lift"), _values(rows, "ci_low"), high,
                  [_colour(r) for r in rows],
                  [r["role"] == "primary" for r in rows], f"{treatment} vs {ab['control']}",
                  "relative lift (primary in bold; secondary intervals adjusted)")
    return _svg(fig, f"plot-lift-{treatment}", f"Lift per metric: {treatment} vs {ab['control']}")


@_isolated
def segment_forest(segments: dict, entry: dict) -> str:
    """Lift of the primary metric per segment of one treatment (Holm-adjusted intervals)."""
    rows = entry["rows"]
    fig = _forest([r["segment"] for r in rows], _values(rows, "lift"), _values(rows, "ci_low"),
                  _values(rows, "ci_high"), [_colour(r) for r in rows], [False] * len(rows),
                  f"{segments['metric']} by {segments['column']}: {entry['treatment']}",
                  "relative lift (Holm-adjusted intervals)")
    return _svg(fig, f"plot-segments-{entry['treatment']}", f"Lift per {segments['column']}: {entry['treatment']}")


@_isolated
def cumulative_lift(daily: dict, entry: dict) -> str:
    """Cumulative lift with its interval band over the days, and each day's own lift."""
    rows = entry["rows"]
    x = list(range(len(rows)))
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot()
    day_x = [i for i, r in zip(x, rows, strict=True) if _finite(r.get("lift"))]
    ax.plot(day_x, [r["lift"] for r in rows if _finite(r.get("lift"))], "o", color=MUTED, markersize=4,
            label="that day alone")
    band = [(i, r["cum_ci_low"], r["cum_ci_high"]) for i, r in zip(x, rows, strict=True)
            if _finite(r.get("cum_ci_low")) and _finite(r.get("cum_ci_high"))]
    if band:
        ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band], color=NEUTRAL, alpha=0.18,
                        label="confidence sequence" if daily["sequential"] else "interval")
    cum_x = [i for i, r in zip(x, rows, strict=True) if _finite(r.get("cum_lift"))]
    ax.plot(cum_x, [r["cum_lift"] for r in rows if _finite(r.get("cum_lift"))], "-", color=NEUTRAL, linewidth=2,
            label="cumulative")
    ax.axhline(0.0, color="#5f6368", linestyle="--", linewidth=1)
    step = max(1, len(rows) // 7)
    ax.set_xticks(x[::step])
    ax.set_xticklabels([r["day"][5:] for r in rows][::step])
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    ax.set_ylabel(f"lift of {daily['metric']}")
    ax.set_title(f"{daily['metric']} lift over days: {entry['treatment']}", fontsize=11)
    ax.legend(fontsize=8, loc="best")
    ax.grid(color="#e8eaed")
    return _svg(fig, f"plot-daily-{entry['treatment']}", f"Cumulative lift over days: {entry['treatment']}")


@_isolated
def reliability_diagram(calibration: dict) -> str:
    """Actual click rate (with its interval) against the mean prediction per bin, and the diagonal."""
    t = calibration["table"]
    fig = _figure(4.6, 4.2)
    ax = fig.add_subplot()
    pred = [r["mean_predicted"] for r in t]
    actual = [r["actual_rate"] for r in t]
    errors = [[a - r["ci_low"] for a, r in zip(actual, t, strict=True)],
              [r["ci_high"] - a for a, r in zip(actual, t, strict=True)]]
    top = max([*pred, *(r["ci_high"] for r in t), 1e-6]) * 1.05
    ax.plot([0, top], [0, top], "--", color=MUTED, linewidth=1, label="perfect calibration")
    ax.errorbar(pred, actual, yerr=errors, fmt="o", color=NEUTRAL, markersize=4, capsize=2, label="bins")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted")
    ax.set_ylabel("actual rate")
    ax.set_title(f"Reliability: {calibration['score']}", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(color="#e8eaed")
    return _svg(fig, "plot-reliability", f"Reliability diagram: {calibration['score']}")


@_isolated
def recall_curves(recall: list[dict]) -> str:
    """Hitrate@K of clicked items, one line per recall funnel of the readout, K on a log axis."""
    fig = _figure(5.6, 3.6)
    ax = fig.add_subplot()
    for i, r in enumerate(recall):
        points = sorted((int(k), v) for k, v in r["hitrate_click"].items() if v is not None)
        if points:
            ax.plot([k for k, _ in points], [v for _, v in points], "o-", color=_SERIES[i % len(_SERIES)],
                    label=r["label"])
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("K")
    ax.set_ylabel("hitrate of clicked items")
    ax.set_title("Recall hitrate@K", fontsize=11)
    ax.legend(fontsize=8)
    ax.grid(color="#e8eaed")
    return _svg(fig, "plot-recall", "Recall hitrate@K of clicked items")
