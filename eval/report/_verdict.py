"""The verdict block: what a product manager reads first, one entry per treatment.

For the primary metric: the decision in words (significant win, significant loss,
inconclusive), the lift with its interval and p-value, the minimum detectable effect at 80%
power for the sample observed, the days of data and units per arm; then what could make the
decision wrong: sample ratio mismatch, guardrail regressions (secondary metrics significantly
down, and those down at their family level but gated), the A/A self-check of the primary
metric and every warning of the analysis.
"""
from __future__ import annotations

from eval.report._format import ci_label, fmt_ci, fmt_p, fmt_pct, fmt_rate

__all__ = ["verdicts"]

WIN, LOSS, INCONCLUSIVE = "significant win", "significant loss", "inconclusive"


def _decision(row: dict) -> str:
    if not row.get("significant"):
        return INCONCLUSIVE
    return WIN if row["direction"] == "up" else LOSS


def _guardrails(rows: list[dict], alpha: float) -> tuple[list[dict], list[dict]]:
    """Secondary rows significantly down, and rows down at their family level but gated."""
    down = [r for r in rows if r["role"] == "secondary" and r["direction"] == "down"]
    regressions = [r for r in down if r["significant"]]
    watch = [r for r in down if not r["significant"] and r.get("p_family") is not None and r["p_family"] < alpha]
    short = [{"metric": r["metric"], "lift": r["lift"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
              "p_family": r["p_family"]} for r in regressions]
    watched = [{"metric": r["metric"], "lift": r["lift"], "p_family": r["p_family"]} for r in watch]
    return short, watched


def _problems(ab: dict, self_check: dict | None, primary: str) -> list[str]:
    """What makes the decision untrustworthy (empty when nothing does)."""
    problems = []
    if ab["srm"]["flagged"]:
        problems.append(f"sample ratio mismatch (p = {fmt_p(ab['srm']['p_value'])}): the split of units between "
                        "buckets is not the designed one, so the arms are not comparable")
    if self_check and self_check.get("available") and primary in self_check["flagged"]:
        rate = next(r for r in self_check["table"] if r["metric"] == primary)["false_positive_rate"]
        problems.append(f"the A/A self-check flags {primary}: {fmt_rate(rate)} false positives at alpha "
                        f"{ab['alpha']:g}, its variance estimate is broken for these logs")
    if ab["unit"] == "request" and any("unit='request'" in w for w in ab["warnings"]):
        problems.append("the unit is the request but the buckets look assigned per user")
    return problems


def _headline(decision: str, row: dict, level: float) -> str:
    words = {WIN: "Significant win", LOSS: "Significant loss", INCONCLUSIVE: "Inconclusive"}[decision]
    p = fmt_p(row["p_adjusted"] if row["p_adjusted"] is not None else row["p_value"])
    text = (f"{words}: {row['metric']} {fmt_pct(row['lift'])} {fmt_ci(row['ci_low'], row['ci_high'])} "
            f"({ci_label(level)}), p {'< ' + p[1:] if p.startswith('<') else '= ' + p}")
    return text


def _one(ab: dict, treatment: str, self_check: dict | None, days: int) -> dict:
    rows = [r for r in ab["table"] if r["treatment_bucket"] == treatment]
    row = next(r for r in rows if r["role"] == "primary")
    decision = _decision(row)
    regressions, watch = _guardrails(rows, ab["alpha"])
    problems = _problems(ab, self_check, ab["primary"])
    out = {
        "treatment": treatment, "control": ab["control"], "metric": row["metric"], "decision": decision,
        "trustworthy": not problems, "problems": problems, "headline": _headline(decision, row, row["ci_level"]),
        "lift": row["lift"], "ci_low": row["ci_low"], "ci_high": row["ci_high"], "ci_level": row["ci_level"],
        "p_value": row["p_adjusted"], "method": row["method"], "note": row["note"], "mde": row["mde"],
        "days": days, "first_day": ab["experiment_days"][0], "last_day": ab["experiment_days"][1],
        "n_control": row["n_control"], "n_treatment": row["n_treatment"], "srm": ab["srm"],
        "regressions": regressions, "watch": watch, "sequential": ab["sequential"],
        "warnings": list(ab["warnings"]),
    }
    if self_check and self_check.get("available"):
        primary_row = next(r for r in self_check["table"] if r["metric"] == ab["primary"])
        out["self_check"] = {"false_positive_rate": primary_row["false_positive_rate"],
                             "ci_low": primary_row["ci_low"], "ci_high": primary_row["ci_high"],
                             "any_flag_rate": self_check["any_flag_rate"], "flagged": self_check["flagged"],
                             "splits": self_check["splits"]}
    return out


def verdicts(ab: dict, self_check: dict | None, days: int) -> list[dict]:
    """One verdict per treatment from the readout's A/B section (empty without a comparison)."""
    if not ab.get("available"):
        return []
    return [_one(ab, t, self_check, days) for t in ab["treatments"]]
