"""How numbers read in every format of the readout (one place, so text, Markdown and HTML agree)."""
from __future__ import annotations

import math

__all__ = ["PERCENT_METRICS", "ci_label", "fmt_ci", "fmt_metric", "fmt_p", "fmt_pct", "fmt_rate"]

PERCENT_METRICS = {"ctr", "cvr", "uctr", "ucvr", "request_ctr", "request_cvr"}


def fmt_p(p: float | None) -> str:
    """A p-value for people: "<0.0001" far in the tail, four decimals otherwise, "-" when undefined."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    if p < 1e-4:
        return "<0.0001"
    return f"{p:.4f}"


def ci_label(level: float) -> str:
    """"95% CI" for level 0.95 (the label follows alpha: "99% CI", "97.5% CI")."""
    return f"{round(100 * level, 2):g}% CI"


def fmt_pct(value: float | None, unbounded: str = "unbounded") -> str:
    """A signed percentage ("+4.55%"); ``unbounded`` for +inf, "-" when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return unbounded
    return f"{value:+.2%}"


def fmt_ci(low: float | None, high: float | None) -> str:
    """"[-1.20%, +8.31%]"; a missing upper bound of a defined lower one reads "unbounded"."""
    if low is None and high is None:
        return "-"
    upper = "unbounded" if high is None and low is not None else fmt_pct(high)
    return f"[{fmt_pct(low)}, {upper}]"


def fmt_metric(metric: str, value: float | None) -> str:
    """A metric value: rates as percentages, the rest with four decimals."""
    if value is None:
        return "-"
    return f"{value:.4%}" if metric in PERCENT_METRICS else f"{value:.4f}"


def fmt_rate(value: float | None) -> str:
    """A rate between 0 and 1 as an unsigned percentage with one decimal ("5.2%")."""
    return "-" if value is None else f"{value:.1%}"
