"""Tests for the decision layer of the readout: the verdict, p-value and interval labels (defect 5),
the funnel under a window (defect 8), the CLI options, and the same numbers in every format."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from eval.ab import compare_buckets
from eval.report import build_readout, render
from eval.report.__main__ import main
from eval.report._abview import ab_section
from eval.report._format import ci_label, fmt_ci, fmt_p, fmt_pct
from eval.report._verdict import verdicts
from ltr.logs import from_frames, join_samples
from tests.eval.test_ab import _expand
from tests.eval.test_report import T0, WORLD, world  # noqa: F401  (module-scoped fixture)


@pytest.fixture(scope="module")
def strong():
    """8,000 one-request users over 3 days, CTR 5% in control and 10% in treatment (p ~ 1e-20)."""
    rng = np.random.default_rng(21)
    n = 8000
    bucket = np.where(rng.random(n) < 0.5, "control", "treatment")
    requests = pd.DataFrame({"request_id": np.arange(n), "ts": T0 + rng.integers(0, 3 * 86400, n),
                             "user_id": np.arange(n), "bucket": bucket})
    exposures = pd.DataFrame({"request_id": requests["request_id"], "item_id": rng.integers(0, 300, n),
                              "ts": requests["ts"] + 1, "position": 0})
    clicked = rng.random(n) < np.where(bucket == "treatment", 0.10, 0.05)
    clicks = exposures.loc[clicked, ["request_id", "item_id", "ts"]].assign(ts=lambda f: f["ts"] + 2)
    logs = from_frames(requests, exposures, clicks)
    return logs, join_samples(logs).samples


# ----------------------------------------------------------------------------- defect 5


@pytest.mark.parametrize(("p", "text"), [(1e-300, "<0.0001"), (2.3e-9, "<0.0001"), (0.00012, "0.0001"),
                                         (0.0131, "0.0131"), (None, "-"), (float("nan"), "-")])
def test_p_values_read_for_people(p, text):
    assert fmt_p(p) == text


@pytest.mark.parametrize(("level", "label"), [(0.95, "95% CI"), (0.99, "99% CI"), (0.9, "90% CI"),
                                              (0.975, "97.5% CI")])
def test_interval_label_follows_the_level(level, label):
    assert ci_label(level) == label


def test_defect5_tiny_p_values_and_the_alpha_label_in_every_format(strong):
    logs, samples = strong
    readout = build_readout(logs, samples, alpha=0.01, aa_splits=0)
    primary = next(r for r in readout["ab"]["table"] if r["role"] == "primary")
    assert 0.0 < primary["p_value"] < 1e-6
    text, md, page, js = (render(readout, f) for f in ("text", "md", "html", "json"))
    assert re.search(r'"p_value": \d\.\d+e-\d+', js)  # scientific notation, never 0.0
    ctr_line = next(line for line in text.splitlines() if re.match(r"treatment\s+ctr\s", line))
    assert "<0.0001  <0.0001  up" in ctr_line
    for doc in (text, md, page):
        assert "99% CI" in doc and "95% CI" not in doc.split("Calibration")[0]
    assert "(99% CI), p < 0.0001" in readout["verdict"][0]["headline"]


# ----------------------------------------------------------------------------- defect 8


def test_defect8_funnel_counts_every_step_over_the_window(world):  # noqa: F811
    logs, samples = world
    day = int(samples["day"].min()) + 7
    readout = build_readout(logs, samples, start_day=day, end_day=day + 2, aa_splits=0)
    kept = samples.loc[(samples["day"] >= day) & (samples["day"] <= day + 2)]
    funnel = {r["bucket"]: r for r in readout["funnel"]}
    assert funnel["all"]["requests"] == kept["request_id"].nunique()
    assert funnel["all"]["users"] == kept["user_id"].nunique()
    assert funnel["all"]["exposures"] == len(kept)
    # The fixture world shows 10 items per request; a whole-log request count gave 2.1 here.
    for bucket in ("control", "treatment"):
        assert 9.9 < funnel[bucket]["exposures_per_request"] <= 10.1
        n_cand = logs.candidates["request_id"].isin(kept.loc[kept["bucket"] == bucket, "request_id"]).sum()
        assert funnel[bucket]["candidates"] == n_cand


# ----------------------------------------------------------------------------- verdict


def _verdict_samples(n_users, ctr_lift, order_factor, seed):
    rng = np.random.default_rng(seed)
    exposures = rng.poisson(20, n_users) + 1
    treated = rng.random(n_users) < 0.5
    clicks = rng.binomial(exposures, 0.05 * np.where(treated, 1 + ctr_lift, 1.0))
    orders = rng.binomial(clicks, 0.3 * np.where(treated, order_factor, 1.0))
    return _expand(np.arange(n_users), np.where(treated, "B", "A"), exposures, clicks, orders)


@pytest.mark.parametrize(("control", "treatment", "decision"), [("A", "B", "significant win"),
                                                                ("B", "A", "significant loss")])
def test_verdict_decision_and_guardrail_regression(control, treatment, decision):
    samples = _verdict_samples(20_000, 0.2, 0.6, seed=1)
    (v,) = verdicts(ab_section(compare_buckets(samples, control, treatment)), None, 1)
    assert v["decision"] == decision and v["trustworthy"]
    primary = next(r for r in ab_section(compare_buckets(samples, control, treatment))["table"]
                   if r["metric"] == "ctr")
    assert v["lift"] == primary["lift"] and v["mde"] == primary["mde"]
    regressed = {r["metric"] for r in v["regressions"]}
    # The treatment (B) clicks more but orders less per click: cvr regresses. Swapped, ctr falls
    # and cvr rises, but the gate (ctr, significant) still opens the secondaries.
    assert ("cvr" in regressed) == (treatment == "B")
    assert v["headline"].startswith({"significant win": "Significant win", "significant loss": "Significant loss"}
                                    [decision])


def test_verdict_inconclusive_shows_the_detectable_effect_and_sample_ratio_problems():
    samples = _verdict_samples(4000, 0.0, 1.0, seed=3)
    drop = samples["user_id"].isin(np.arange(0, 4000, 3)) & (samples["bucket"] == "A")
    (v,) = verdicts(ab_section(compare_buckets(samples.loc[~drop], "A", "B")), None, 1)
    assert v["decision"] == "inconclusive" and v["mde"] > 0
    assert not v["trustworthy"] and v["problems"][0].startswith("sample ratio mismatch")
    assert v["watch"] == [] or all(r["p_family"] < 0.05 for r in v["watch"])


# ----------------------------------------------------------------------------- formats agree


def _percent(cell):
    return float(cell.rstrip("%")) / 100


def test_text_and_markdown_carry_the_numbers_of_the_json(world):  # noqa: F811
    logs, samples = world
    readout = json.loads(render(build_readout(logs, samples, segment="device"), "json"))
    text, md = render(readout, "text"), render(readout, "md")
    md_rows = {cells[1]: cells for cells in (line.split(" | ") for line in md.splitlines())
               if len(cells) == 12 and cells[0] == "| treatment"}
    for row in readout["ab"]["table"]:
        cells = md_rows[row["metric"]]
        assert _percent(cells[5]) == pytest.approx(row["lift"], abs=5e-5)
        low, high = re.match(r"\[(.*), (.*)\]", cells[6]).groups()
        assert _percent(low) == pytest.approx(row["ci_low"], abs=5e-5)
        assert _percent(high) == pytest.approx(row["ci_high"], abs=5e-5)
        assert float(cells[8]) == pytest.approx(row["p_value"], abs=5e-5)
        line = next(x for x in text.splitlines() if re.match(rf"treatment\s+{row['metric']}\s", x))
        for value in (fmt_pct(row["lift"]), fmt_ci(row["ci_low"], row["ci_high"]), fmt_p(row["p_value"])):
            assert value in line
    v = readout["verdict"][0]
    for doc in (text, md, render(readout, "html")):
        assert v["headline"] in doc
    seg = readout["segments"]["by_treatment"][0]["rows"]
    for r in seg:
        assert re.search(rf"\| {re.escape(r['segment'])} \|.*\| {re.escape(fmt_pct(r['lift']))} \|", md)


# ----------------------------------------------------------------------------- command line


def test_cli_options_reach_the_readout(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main([str(WORLD), "--quiet", "--format", "json", "--out", str(out), "--primary", "uctr", "--adjust", "none",
               "--sequential", "--tuning-units", "800", "--segment", "device", "--start", "2026-01-08",
               "--experiment-start", "2026-01-07", "--cuped", "--aa-splits", "20", "--seed", "3", "--min-events", "5"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    ab = r["ab"]
    assert ab["primary"] == "uctr" and ab["adjust"] == "none" and ab["sequential"] and ab["tuning_units"] == 800
    assert ab["min_events"] == 5 and r["window"][0] == "2026-01-08"
    assert ab["cuped"]["pre_period"] == ["2026-01-05", "2026-01-06"]
    assert {row["status"] for row in ab["table"] if row["role"] == "secondary"} <= {"exploratory", "not tested"}
    assert {row["method"] for row in ab["table"]} <= {"sequential", "exact", "undefined"}
    assert r["self_check"]["splits"] == 20 and r["self_check"]["seed"] == 3
    assert r["segments"]["column"] == "device" and r["daily"]["sequential"]
    assert r["verdict"][0]["metric"] == "uctr" and r["verdict"][0]["sequential"]


@pytest.mark.parametrize(("args", "message"), [
    (["--primary", "revenue"], "error: --primary must be one of ["),
    (["--segment", "city"], "error: --segment must be a column of the requests table. Got 'city'"),
    (["--aa-splits", "-1"], "error: --aa-splits must be an int in [0, inf). Got -1 instead."),
    (["--start", "2026-01-06", "--experiment-start", "2026-01-08"], "error: --start must not be before"),
    (["--alpha", "0"], "error: alpha must be a float in (0, 1). Got 0.0 instead."),
])
def test_cli_rejects_bad_options(args, message, capsys):
    rc = main([str(WORLD), "--quiet", *args])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith(message), err


def test_plots_leave_the_callers_matplotlib_state_alone(world):  # noqa: F811
    import matplotlib

    logs, samples = world
    readout = build_readout(logs, samples, aa_splits=0)
    before, backend = dict(matplotlib.rcParams), matplotlib.get_backend()
    with matplotlib.rc_context({"lines.linewidth": 7.0}):
        page = render(readout, "html")
        assert matplotlib.rcParams["lines.linewidth"] == 7.0
    assert dict(matplotlib.rcParams) == before and matplotlib.get_backend() == backend
    assert page == render(readout, "html")  # the same readout gives the same file
