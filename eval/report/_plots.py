"""The plots of the HTML readout, drawn from pieces of the readout dict as inline SVG strings.

The interface is the three public functions: each takes a piece of the readout (the A/B
section, the calibration section, the recall funnels) and returns one ``<svg>`` element.
They are hand-written SVG (no plotting dependency; the HTML file stands alone); whatever
draws them later only has to keep these signatures.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable

__all__ = ["lift_forest", "recall_curves", "reliability_diagram"]

_W, _H, _PAD = 460, 300, 48
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def _frame(title: str, body: list[str], x_label: str, y_label: str) -> str:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
            f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="11">')
    parts = [head, f'<text x="{_W / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
             (f'<rect x="{_PAD}" y="{_PAD - 20}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD + 20}" '
              'fill="none" stroke="#999"/>'),
             f'<text x="{_W / 2}" y="{_H - 8}" text-anchor="middle">{html.escape(x_label)}</text>',
             (f'<text x="12" y="{_H / 2}" text-anchor="middle" transform="rotate(-90 12 {_H / 2})">'
              f'{html.escape(y_label)}</text>')]
    return "\n".join(parts + body + ["</svg>"])


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    """Linear map of data values in [lo, hi] onto pixels in [a, b]."""
    span = (hi - lo) or 1.0

    def to_px(v: float) -> float:
        return a + (v - lo) / span * (b - a)

    return to_px


def _ticks(lo: float, hi: float, to_px: Callable[[float], float], axis: str, fmt: Callable[[float], str]) -> list[str]:
    out = []
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        p = to_px(v)
        if axis == "x":
            out.append(f'<text x="{p:.1f}" y="{_H - _PAD + 14}" text-anchor="middle">{fmt(v)}</text>')
        else:
            out.append(f'<text x="{_PAD - 4}" y="{p + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
    return out


def _reliability_svg(mean_predicted: list[float], actual: list[float], ci_low: list[float],
                     ci_high: list[float], title: str) -> str:
    """Actual rate (with interval) against mean prediction per bin, and the diagonal."""
    hi = max([*mean_predicted, *ci_high, 1e-6]) * 1.05
    sx = _scale(0, hi, _PAD, _W - _PAD)
    sy = _scale(0, hi, _H - _PAD, _PAD - 20)
    body = [f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(hi)}" y2="{sy(hi)}" stroke="#bbb" stroke-dasharray="4"/>']
    for p, a, lo_, hi_ in zip(mean_predicted, actual, ci_low, ci_high, strict=True):
        body.append(f'<line x1="{sx(p):.1f}" y1="{sy(lo_):.1f}" x2="{sx(p):.1f}" y2="{sy(hi_):.1f}" '
                    f'stroke="{_COLOURS[0]}"/>')
        body.append(f'<circle cx="{sx(p):.1f}" cy="{sy(a):.1f}" r="3.5" fill="{_COLOURS[0]}"/>')
    body += _ticks(0, hi, sx, "x", lambda v: f"{v:.3f}") + _ticks(0, hi, sy, "y", lambda v: f"{v:.3f}")
    return _frame(title, body, "mean predicted", "actual rate")


def _lift_forest_svg(metrics: list[str], lift: list[float | None], low: list[float | None],
                     high: list[float | None], title: str) -> str:
    """Relative lift with its interval per metric; zero line dashed."""
    finite = [v for v in (*lift, *low, *high) if v is not None and math.isfinite(v)] or [0.0]
    lo, hi = min(min(finite), 0.0), max(max(finite), 0.0)
    pad = (hi - lo) * 0.1 or 0.01
    sx = _scale(lo - pad, hi + pad, _PAD + 70, _W - _PAD)
    step = (_H - 2 * _PAD) / max(len(metrics), 1)
    body = [(f'<line x1="{sx(0):.1f}" y1="{_PAD - 20}" x2="{sx(0):.1f}" y2="{_H - _PAD}" stroke="#bbb" '
             'stroke-dasharray="4"/>')]
    for i, (name, v, a, b) in enumerate(zip(metrics, lift, low, high, strict=True)):
        y = _PAD + step * (i + 0.5)
        body.append(f'<text x="{_PAD + 64}" y="{y + 4:.1f}" text-anchor="end">{html.escape(name)}</text>')
        if v is None or not math.isfinite(v):
            continue
        colour = _COLOURS[1] if (a is not None and b is not None and (a > 0 or b < 0)) else _COLOURS[0]
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
            body.append(f'<line x1="{sx(a):.1f}" y1="{y:.1f}" x2="{sx(b):.1f}" y2="{y:.1f}" stroke="{colour}" '
                        'stroke-width="2"/>')
        body.append(f'<circle cx="{sx(v):.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
    body += _ticks(lo - pad, hi + pad, sx, "x", lambda v: f"{v:+.1%}")
    return _frame(title, body, "relative lift (95% CI)", "")


def _k_curves_svg(series: dict[str, dict[int, float | None]], title: str, y_label: str) -> str:
    """One line per named series of {K: value}, K on a log axis."""
    ks = sorted({k for s in series.values() for k in s})
    if not ks:
        return ""
    lx = [math.log10(k) for k in ks]
    sx = _scale(min(lx), max(lx), _PAD, _W - _PAD)
    sy = _scale(0, 1, _H - _PAD, _PAD - 20)
    body: list[str] = []
    for i, (name, points) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        xy = [(sx(math.log10(k)), sy(v)) for k, v in sorted(points.items()) if v is not None]
        points_attr = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points_attr}"/>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in xy]
        body.append(f'<text x="{_PAD + 6}" y="{_PAD - 4 + 13 * i}" fill="{colour}">{html.escape(name)}</text>')
    for k in ks:
        body.append(f'<text x="{sx(math.log10(k)):.1f}" y="{_H - _PAD + 14}" text-anchor="middle">{k}</text>')
    body += _ticks(0, 1, sy, "y", lambda v: f"{v:.2f}")
    return _frame(title, body, "K", y_label)


def lift_forest(ab: dict, treatment: str) -> str:
    """Lift with its interval per metric of one treatment, from the readout's A/B section."""
    rows = [r for r in ab["table"] if r["treatment_bucket"] == treatment]
    return _lift_forest_svg([r["metric"] for r in rows], [r.get("lift") for r in rows],
                            [r.get("ci_low") for r in rows], [r.get("ci_high") for r in rows],
                            f"{treatment} vs {ab['control']}")


def reliability_diagram(calibration: dict) -> str:
    """Reliability diagram of the readout's calibration section (which must hold a table)."""
    t = calibration["table"]
    return _reliability_svg([r["mean_predicted"] for r in t], [r["actual_rate"] for r in t],
                            [r["ci_low"] for r in t], [r["ci_high"] for r in t],
                            f"Reliability: {calibration['score']}")


def recall_curves(recall: list[dict]) -> str:
    """Hitrate@K of clicked items, one line per recall funnel of the readout."""
    series = {f"{r['label']} (click)": {int(k): v for k, v in r["hitrate_click"].items()} for r in recall}
    return _k_curves_svg(series, "Recall hitrate@K of clicked items", "hitrate")
