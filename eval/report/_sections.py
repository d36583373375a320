"""The sections of the readout (title, table head, rows, note), shared by the text, Markdown and
HTML renderers, and the lines of the verdict block. Only formatting: every number is already in
the readout dict."""
from __future__ import annotations

from typing import NamedTuple

from eval.report._format import ci_label, fmt_ci, fmt_metric, fmt_p, fmt_pct, fmt_rate

__all__ = ["Section", "sections", "verdict_lines"]


class Section(NamedTuple):
    """One table of the readout; ``key`` says what it is (the HTML places plots by it) and
    ``classes`` gives a CSS class per row (significance colours), empty when plain."""

    title: str
    head: list[str]
    rows: list[list[str]]
    note: str
    key: str = ""
    classes: tuple[str, ...] = ()


def _num(section: dict, key: str, spec: str) -> str:
    """``section[key]`` formatted by ``spec``; undefined values (None in the readout) as "-"."""
    return "-" if section.get(key) is None else format(section[key], spec)


# ----------------------------------------------------------------------------- verdict


def _srm_line(srm: dict) -> str:
    if srm["flagged"]:
        return f"MISMATCH (p = {fmt_p(srm['p_value'])}): do not trust this readout"
    return f"ok (p = {fmt_p(srm['p_value'])})"


def _guardrail_line(v: dict) -> str:
    if v["regressions"]:
        return "REGRESSION: " + "; ".join(f"{r['metric']} {fmt_pct(r['lift'])} {fmt_ci(r['ci_low'], r['ci_high'])}"
                                          for r in v["regressions"])
    text = "no secondary metric significantly down"
    if v["watch"]:
        text += "; watch (down at its adjusted level, gated by the primary): " + ", ".join(
            f"{r['metric']} {fmt_pct(r['lift'])} (p = {fmt_p(r['p_family'])})" for r in v["watch"])
    return text


def _self_check_line(v: dict) -> str:
    sc = v.get("self_check")
    if sc is None:
        return "off"
    text = (f"{v['metric']} false-positive rate {fmt_rate(sc['false_positive_rate'])} "
            f"[{fmt_rate(sc['ci_low'])}, {fmt_rate(sc['ci_high'])}] over {sc['splits']} A/A splits of control; "
            f"readout flags anything in {fmt_rate(sc['any_flag_rate'])}")
    if sc["flagged"]:
        text += "; BROKEN variance for " + ", ".join(sc["flagged"])
    return text


def verdict_lines(v: dict) -> list[tuple[str, str]]:
    """(label, text) lines of one verdict: the decision first, then what could make it wrong."""
    lines = [("Decision", v["headline"])]
    if v["problems"]:
        lines.insert(0, ("DO NOT ACT", "; ".join(v["problems"])))
    lines += [
        ("Data", (f"{v['days']} days ({v['first_day']} .. {v['last_day']}), {v['n_control']:,d} control / "
                  f"{v['n_treatment']:,d} treatment units")),
        ("Detectable", f"lifts of {fmt_rate(v['mde'])} or more (either way) with 80% power at this sample size"
                       if v["mde"] is not None else "-"),
        ("Sample ratio", _srm_line(v["srm"])),
        ("Guardrails", _guardrail_line(v)),
        ("A/A self-check", _self_check_line(v)),
        ("Inference", "sequential: always-valid, safe to look every day" if v["sequential"] else
         "fixed-horizon: valid at one planned look (use --sequential to look daily)"),
    ]
    if v["note"]:
        lines.append(("Note", v["note"]))
    lines += [("Warning", w) for w in v["warnings"]]
    return lines


# ----------------------------------------------------------------------------- A/B sections


def _ab_rows(ab: dict) -> tuple[list[list[str]], tuple[str, ...]]:
    rows, classes = [], []
    for r in ab["table"]:
        rows.append([r["treatment_bucket"], r["metric"], r["role"], fmt_metric(r["metric"], r.get("control")),
                     fmt_metric(r["metric"], r.get("treatment")), fmt_pct(r.get("lift")),
                     fmt_ci(r.get("ci_low"), r.get("ci_high")),
                     "-" if r.get("ci_level") is None else f"{r['ci_level']:.1%}", fmt_p(r.get("p_value")),
                     fmt_p(r.get("p_adjusted")), r["flag"], r["note"]])
        classes.append(r["flag"] if r["flag"] in ("up", "down", "gated", "exploratory") else "")
    return rows, tuple(classes)


def _ab_note(ab: dict) -> str:
    note = f"control = {ab['control']}; {ab['method']}"
    if ab["adjust"] != "none":
        note += ("; secondary intervals are widened to the level shown so that they exclude 0 exactly when their "
                 f"{ab['adjust']}-adjusted p-value is below alpha")
    if ab["pre_period"]:
        note += f"; CUPED pre-period {ab['pre_period'][0]} .. {ab['pre_period'][1]}"
    return note


def _cuped_section(cuped: dict) -> Section:
    rows = [[r["treatment_bucket"], r["metric"], fmt_pct(r.get("lift")), fmt_p(r.get("p_value")),
             fmt_p(r.get("p_holm"))] for r in cuped["balance"]]
    verdict = "applied" if cuped["applied"] else "REFUSED: the arms already differed in the pre-period"
    note = (f"pre-period {cuped['pre_period'][0]} .. {cuped['pre_period'][1]}, arms as in the experiment; CUPED "
            f"{verdict} (refused when a Holm-adjusted p-value is below 0.01)")
    return Section("CUPED pre-period balance", ["treatment", "metric", "pre-period lift", "p", "p Holm"], rows, note,
                   "cuped")


def _self_check_section(sc: dict) -> Section:
    if not sc.get("available"):
        return Section("A/A self-check", ["note"], [[sc["note"]]], "", "self_check")
    rows = [[r["metric"], fmt_rate(r["false_positive_rate"]), f"[{fmt_rate(r['ci_low'])}, {fmt_rate(r['ci_high'])}]",
             "BROKEN" if r["flagged"] else "ok"] for r in sc["table"]]
    note = (f"{sc['note']}; the readout as a whole (primary, then gated secondaries) flags something in "
            f"{fmt_rate(sc['any_flag_rate'])} of the splits")
    classes = tuple("down" if r["flagged"] else "" for r in sc["table"])
    return Section("A/A self-check", ["metric", "false-positive rate", "95% CI", "variance"], rows, note,
                   "self_check", classes)


def _daily_sections(daily: dict, alpha: float) -> list[Section]:
    out = []
    label = ci_label(1 - alpha)
    for entry in daily["by_treatment"]:
        rows = [[r["day"], f"{r['units']:,d}", fmt_pct(r.get("lift")), fmt_ci(r.get("ci_low"), r.get("ci_high")),
                 fmt_p(r.get("p_value")), f"{r['cum_units']:,d}", fmt_pct(r.get("cum_lift")),
                 fmt_ci(r.get("cum_ci_low"), r.get("cum_ci_high")), fmt_p(r.get("cum_p_value"))]
                for r in entry["rows"]]
        head = ["day", "units", "lift", label, "p", "cum. units", "cum. lift", f"cum. {label}", "cum. p"]
        out.append(Section(f"Daily lift of {daily['metric']}: {entry['treatment']}", head, rows, daily["note"],
                           "daily"))
    return out


def _segment_sections(seg: dict, alpha: float) -> list[Section]:
    out = []
    for entry in seg["by_treatment"]:
        rows = [[r["segment"], f"{r['n_control']:,d}", f"{r['n_treatment']:,d}", fmt_pct(r.get("lift")),
                 fmt_ci(r.get("ci_low"), r.get("ci_high")), fmt_p(r.get("p_value")), fmt_p(r.get("p_holm")),
                 r["direction"] if r["significant"] else ""] for r in entry["rows"]]
        classes = tuple(r["direction"] if r["significant"] else "" for r in entry["rows"])
        q = "-" if entry["q"] is None else f"{entry['q']:.2f}"
        note = (f"{seg['note']}: Q = {q} on {entry['q_df']} df, p = {fmt_p(entry['q_p_value'])}")
        head = ["segment", "control units", "treatment units", "lift", f"{ci_label(1 - alpha)} (Holm)", "p", "p Holm",
                "flag"]
        out.append(Section(f"{seg['metric']} by {seg['column']}: {entry['treatment']}", head, rows, note, "segments",
                           classes))
    return out


def _ab_sections(readout: dict) -> list[Section]:
    ab = readout["ab"]
    if not ab.get("available"):
        return [Section("A/B readout", ["note"], [[ab["note"]]], "", "ab")]
    rows, classes = _ab_rows(ab)
    head = ["treatment", "metric", "role", "control", "treatment value", "lift", ci_label(1 - ab["alpha"]), "level",
            "p", "p adj.", "flag", "note"]
    srm = ab["srm"]
    out = [Section("A/B readout " + " .. ".join(ab["experiment_days"]), head, rows, _ab_note(ab), "ab", classes),
           Section("Sample ratio mismatch", ["chi2", "p", "flag"],
                   [[f"{srm['chi2']:.3f}", fmt_p(srm["p_value"]),
                     "SRM! do not trust the readout" if srm["flagged"] else "ok"]],
                   "chi-square test of units per bucket against the expected split; flagged at p < 0.001", "srm",
                   ("down",) if srm["flagged"] else ())]
    if ab.get("cuped"):
        out.append(_cuped_section(ab["cuped"]))
    out.append(_self_check_section(readout["self_check"]))
    out += _daily_sections(readout["daily"], ab["alpha"])
    if readout.get("segments"):
        out += _segment_sections(readout["segments"], ab["alpha"])
    return out


# ----------------------------------------------------------------------------- other sections


def _auc_section(auc: dict) -> Section:
    rows = [[r["segment"], r["value"], f"{r['n']:,d}", fmt_metric("", r["online_auc"]),
             fmt_metric("", r["offline_auc"]), "-" if r["gap"] is None else f"{r['gap']:+.4f}"] for r in auc["rows"]]
    note = auc.get("note", "") or f"same {auc['n_rows']:,d} rows for both scores"
    return Section("Offline vs online AUC", ["segment", "value", "rows", "online AUC", "offline AUC", "gap"],
                   rows, note, "auc")


def _gauc_section(gauc: dict) -> Section:
    rows = [[k, fmt_metric("", v["gauc"]), f"{v['users_used']:,d}", f"{v['users_skipped_one_class']:,d}"]
            for k, v in gauc.items()]
    return Section("GAUC (per user, exposure-weighted)", ["score", "GAUC", "users used", "users skipped (one class)"],
                   rows, "", "gauc")


def _calibration_section(cal: dict) -> Section:
    if "table" not in cal:
        return Section("Calibration", ["note"], [[cal["note"]]], "", "calibration")
    rows = [[str(r["bin"]), f"{r['count']:,d}", f"{r['mean_predicted']:.4f}", f"{r['actual_rate']:.4f}",
             f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"] for r in cal["table"]]
    # Undefined values (no click at all: no ratio, no NE) are None in the readout.
    note = (f"score: {cal['score']}; mean predicted {_num(cal, 'mean_predicted', '.4f')} vs actual "
            f"{_num(cal, 'actual_rate', '.4f')} (ratio {_num(cal, 'predicted_over_actual', '.3f')}); "
            f"ECE {_num(cal, 'ece', '.4f')}; logloss {_num(cal, 'logloss', '.4f')}; "
            f"NE {_num(cal, 'normalized_entropy', '.4f')}")
    return Section("Calibration (equal-mass bins)", ["bin", "rows", "mean predicted", "actual", "95% CI"], rows, note,
                   "calibration")


def _funnel_row(r: dict, has_cand: bool) -> list[str]:
    candidates = ([f"{r['candidates']:,d}",
                   "-" if r.get("candidates_per_request") is None else f"{r['candidates_per_request']:.2f}",
                   fmt_metric("ctr", r.get("exposure_rate"))] if has_cand else [])
    return [r["bucket"], f"{r['users']:,d}", f"{r['requests']:,d}", *candidates,
            f"{r['exposures']:,d}", f"{r['clicks']:,d}", f"{r['orders']:,d}", fmt_metric("ctr", r["ctr"]),
            fmt_metric("cvr", r["cvr"]), fmt_metric("ctr", r.get("order_rate"))]


def _funnel_section(funnel: list[dict]) -> Section:
    has_cand = "candidates" in funnel[0]
    head = (["bucket", "users", "requests"] + (["candidates", "cand/req", "exposed share"] if has_cand else [])
            + ["exposures", "clicks", "orders", "CTR", "CVR", "orders/exposure"])
    note = ("rates between steps: candidates per request, exposed share of candidates, CTR = clicks / exposures, "
            "CVR = orders / clicks, orders per exposure")
    return Section("Funnel per bucket", head, [_funnel_row(r, has_cand) for r in funnel], note, "funnel")


def _recall_section(rec: dict) -> Section:
    ks = sorted(int(k) for k in rec["coverage"])
    rows = [[str(k), fmt_metric("ctr", rec["hitrate_click"].get(str(k))),
             fmt_metric("ctr", rec["hitrate_order"].get(str(k))),
             fmt_metric("", rec.get("mean_hit_position", {}).get(str(k))),
             fmt_metric("ctr", rec["coverage"].get(str(k)))] for k in ks]
    tops = ", ".join(f"top-{n}: {v:.2%}" for n, v in rec["top_n_share"].items()) or "no rank_pos logged"
    note = (f"{rec['n_requests']:,d} requests ({rec['requests_with_candidates']:,d} with candidates), "
            f"{rec['n_click_targets']:,d} clicked / {rec['n_order_targets']:,d} ordered items; "
            f"share of the online ranker's top-N retrieved: {tops}")
    return Section(f"Recall funnel: {rec['label']}",
                   ["K", "hitrate click", "hitrate order", "mean hit position", "coverage"], rows, note, "recall")


def sections(readout: dict) -> list[Section]:
    """The sections in readout order (the verdict is rendered before them)."""
    return [*_ab_sections(readout), _auc_section(readout["auc"]), _gauc_section(readout["gauc"]),
            _calibration_section(readout["calibration"]), _funnel_section(readout["funnel"]),
            *[_recall_section(rec) for rec in readout["recall"]]]
