"""Tests for eval.report: the readout's numbers, its formats, bad input and the golden file."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval.report import build_readout, render
from eval.report.__main__ import main
from ltr.logs import from_frames, join_samples, parse_day, read_logs, write_logs
from tests.eval.test_ab import _fieller_reference
from tests.eval.test_funnel import make_logs, recall_candidates
from tests.golden import assert_close as _assert_close

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "fixtures" / "world"
EXPECTED = ROOT / "fixtures" / "expected" / "report_world.json"
T0 = parse_day("2026-01-05") * 86400


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world():
    logs = read_logs(WORLD)
    return logs, join_samples(logs).samples


@pytest.fixture(scope="module")
def world_json(tmp_path_factory):
    """The CLI's JSON readout of the fixture world (logs only), as the golden file is made."""
    out = tmp_path_factory.mktemp("report") / "world.json"
    assert main([str(WORLD), "--quiet", "--format", "json", "--out", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def world_recall(world):
    """The fixture's logged candidates of days 2.. as if they came from one recall source."""
    logs, samples = world
    first_day = samples["day"].min()
    late = samples.loc[samples["day"] > first_day, "request_id"].unique()
    cand = logs.candidates.loc[logs.candidates["request_id"].isin(late)]
    return cand.rename(columns={"rank_pos": "rank", "rank_score": "score"}).assign(source="logged")[
        ["request_id", "item_id", "rank", "score", "source"]]


@pytest.fixture(scope="module")
def world_full(world, world_recall):
    logs, samples = world
    return build_readout(logs, samples, candidates={"logged": world_recall}, quiet=True)


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    """Small logs on disk with a logged bucket ('ghost') that has requests but no exposures."""
    logs = make_logs(11, n_requests=80, buckets=("control", "treatment", "ghost"))
    ghost = logs.requests.loc[logs.requests["bucket"] == "ghost", "request_id"]
    keep = {name: frame.loc[~frame["request_id"].isin(ghost)] for name, frame in
            (("exposures", logs.exposures), ("clicks", logs.clicks), ("orders", logs.orders),
             ("candidates", logs.candidates))}
    logs = from_frames(logs.requests, candidates=keep["candidates"], exposures=keep["exposures"],
                       clicks=keep["clicks"], orders=keep["orders"], items=logs.items)
    path = tmp_path_factory.mktemp("small") / "logs"
    write_logs(logs, path)
    return path, logs


def _rebucket(logs, names):
    requests = logs.requests.assign(bucket=np.asarray(names)[logs.requests["user_id"].to_numpy() % len(names)])
    out = from_frames(requests, logs.exposures, logs.clicks, candidates=logs.candidates, orders=logs.orders,
                      items=logs.items, users=logs.users)
    return out, join_samples(out).samples


# ----------------------------------------------------------------------------- golden file


def test_golden_readout_of_fixture_world(world_json):
    # Regenerate with `python fixtures/make_expected.py` when a change of numbers is deliberate.
    expected = json.loads(EXPECTED.read_text())
    assert expected["logs"] == "fixtures/world"
    got = {k: v for k, v in world_json.items() if k != "logs"}
    _assert_close(got, {k: v for k, v in expected.items() if k != "logs"})


def test_assert_close_catches_changes():
    _assert_close({"a": [1, 0.5, None, "x"]}, {"a": [1, 0.5 * (1 + 1e-12), None, "x"]})
    for bad in ({"a": [2, 0.5, None, "x"]}, {"a": [1, 0.5 * (1 + 1e-8), None, "x"]}, {"a": [1, 0.5, 0.0, "x"]},
                {"a": [1, 0.5, None]}, {"b": []}):
        with pytest.raises(AssertionError):
            _assert_close(bad, {"a": [1, 0.5, None, "x"]})


# ----------------------------------------------------------------------------- numbers


def test_ctr_per_bucket_equals_direct_count(world, world_json):
    logs, _ = world
    bucket_of = logs.requests.set_index("request_id")["bucket"]
    exposed = logs.exposures.drop_duplicates(["request_id", "item_id"])
    clicked = logs.clicks.drop_duplicates(["request_id", "item_id"]).merge(exposed[["request_id", "item_id"]])
    n_exp = exposed["request_id"].map(bucket_of).value_counts()
    n_click = clicked["request_id"].map(bucket_of).value_counts()
    ctr = (n_click / n_exp).to_dict()
    row = next(r for r in world_json["ab"]["table"] if r["metric"] == "ctr")
    assert row["control_bucket"] == "control" and row["treatment_bucket"] == "treatment"
    assert row["control"] == pytest.approx(ctr["control"], rel=1e-12)
    assert row["treatment"] == pytest.approx(ctr["treatment"], rel=1e-12)
    funnel = {r["bucket"]: r for r in world_json["funnel"]}
    for bucket in ("control", "treatment"):
        assert funnel[bucket]["exposures"] == n_exp[bucket]
        assert funnel[bucket]["clicks"] == n_click[bucket]
        assert funnel[bucket]["ctr"] == pytest.approx(ctr[bucket], rel=1e-12)


def _one_exposure_per_request(seed: int, n: int = 6000):
    rng = np.random.default_rng(seed)
    bucket = rng.choice(["control", "treatment"], n)
    requests = pd.DataFrame({"request_id": np.arange(n), "ts": T0 + rng.integers(0, 5 * 86400, n),
                             "user_id": rng.integers(0, 900, n), "bucket": bucket})
    exposures = pd.DataFrame({"request_id": requests["request_id"], "item_id": rng.integers(0, 300, n),
                              "ts": requests["ts"] + 1, "position": 0})
    p = np.where(bucket == "treatment", 0.065, 0.05)
    clicks = exposures.loc[rng.random(n) < p, ["request_id", "item_id", "ts"]]
    clicks = clicks.assign(ts=clicks["ts"] + 2)
    return from_frames(requests, exposures, clicks), requests, clicks


@pytest.mark.parametrize("seed", [0, 1])
def test_request_randomised_ctr_matches_two_proportion_z_test(seed, tmp_path):
    logs, requests, clicks = _one_exposure_per_request(seed)
    write_logs(logs, tmp_path / "logs")
    out = tmp_path / "r.json"
    assert main([str(tmp_path / "logs"), "--unit", "request", "--quiet", "--format", "json", "--out", str(out)]) == 0
    readout = json.loads(out.read_text())
    n = requests["bucket"].value_counts()
    x = requests.loc[requests["request_id"].isin(clicks["request_id"]), "bucket"].value_counts()
    p_c, p_t = x["control"] / n["control"], x["treatment"] / n["treatment"]
    # Reference: unpooled two-proportion z-test; the lift interval is the one that inverts it.
    se = math.sqrt(p_c * (1 - p_c) / n["control"] + p_t * (1 - p_t) / n["treatment"])
    p_value = 2 * stats.norm.sf(abs(p_t - p_c) / se)
    rows = {r["metric"]: r for r in readout["ab"]["table"]}
    assert readout["ab"]["unit"] == "request"
    # Requests are randomised here (users straddle buckets): no unit warning.
    assert readout["ab"]["warnings"] == []
    for metric in ("ctr", "request_ctr"):
        r = rows[metric]
        # ctr is the primary metric (95%); request_ctr a secondary one, its interval at its adjusted level.
        assert (r["ci_level"] == 0.95) == (metric == "ctr")
        lo, hi = _fieller_reference(p_c, p_c * (1 - p_c) / n["control"], p_t, p_t * (1 - p_t) / n["treatment"],
                                    stats.norm.isf((1 - r["ci_level"]) / 2))
        assert r["n_control"] == n["control"] and r["n_treatment"] == n["treatment"]
        assert r["control"] == pytest.approx(p_c, rel=1e-12) and r["treatment"] == pytest.approx(p_t, rel=1e-12)
        assert r["lift"] == pytest.approx(p_t / p_c - 1, rel=1e-9)
        assert r["p_value"] == pytest.approx(p_value, rel=1e-9)
        assert r["ci_low"] == pytest.approx(lo, rel=1e-9) and r["ci_high"] == pytest.approx(hi, rel=1e-9)


# ----------------------------------------------------------------------------- buckets and notes


def test_one_bucket_says_no_comparison(world):
    logs, samples = _rebucket(world[0], ["solo"])
    readout = build_readout(logs, samples)
    assert readout["ab"]["available"] is False
    assert readout["ab"]["note"] == "only one bucket (solo): there is no comparison."
    for fmt in ("text", "md", "html"):
        assert "there is no comparison" in render(readout, fmt)
    assert "srm" not in readout["ab"]


def test_three_buckets_each_against_first_sorted(world):
    logs, samples = _rebucket(world[0], ["gamma", "alpha", "beta"])
    readout = build_readout(logs, samples)
    ab = readout["ab"]
    assert ab["control"] == "alpha" and ab["treatments"] == ["beta", "gamma"]
    assert [(r["control_bucket"], r["treatment_bucket"]) for r in ab["table"]] == \
        [("alpha", "beta")] * 7 + [("alpha", "gamma")] * 7
    users = samples.groupby("bucket")["user_id"].nunique()
    for r in ab["table"]:
        assert r["n_control"] == users["alpha"] and r["n_treatment"] == users[r["treatment_bucket"]]
    # SRM over the three buckets against an equal split.
    expected = np.full(3, users.sum() / 3)
    chi2 = float(((users.to_numpy() - expected) ** 2 / expected).sum())
    assert ab["srm"]["chi2"] == pytest.approx(chi2, rel=1e-9)
    assert ab["srm"]["p_value"] == pytest.approx(stats.chi2.sf(chi2, 2), rel=1e-9)
    html = render(readout, "html")
    assert "beta vs alpha" in html and "gamma vs alpha" in html


def test_logs_without_candidates_say_online_auc_unavailable(world):
    logs = world[0]
    bare = from_frames(logs.requests, logs.exposures, logs.clicks, orders=logs.orders, items=logs.items)
    readout = build_readout(bare, join_samples(bare).samples)
    assert readout["auc"]["online_available"] is False
    assert "online AUC unavailable" in readout["auc"]["note"]
    assert all(r["online_auc"] is None for r in readout["auc"]["rows"])
    assert readout["gauc"] == {}
    assert "no score to calibrate" in readout["calibration"]["note"]
    assert "candidates" not in readout["funnel"][0]
    for fmt in ("text", "md", "html"):
        assert "online AUC unavailable" in render(readout, fmt)


def test_explicit_control_and_treatment(world):
    logs, samples = world
    readout = build_readout(logs, samples, control="treatment", treatment="control", adjust="bh")
    ab = readout["ab"]
    assert ab["control"] == "treatment" and ab["treatments"] == ["control"] and ab["adjust"] == "bh"
    p = np.array([r["p_value"] for r in ab["table"]])
    adjusted = np.array([r["p_adjusted"] for r in ab["table"]])
    assert np.all(adjusted >= p - 1e-15)
    assert readout["verdict"][0]["treatment"] == "control"


def test_window_restricts_every_section(world):
    logs, samples = world
    day = int(samples["day"].min()) + 7
    readout = build_readout(logs, samples, start_day=day)
    kept = samples.loc[samples["day"] >= day]
    assert readout["n_exposures"] == len(kept)
    assert readout["auc"]["rows"][0]["n"] == len(kept)
    assert sum(r["exposures"] for r in readout["funnel"] if r["bucket"] != "all") == len(kept)
    cuped = build_readout(logs, samples, start_day=day, cuped=True)
    assert readout["window"][0] == "2026-01-12"
    assert cuped["ab"]["pre_period"] == ["2026-01-05", "2026-01-11"]
    assert all(r["var_reduction"] is not None for r in cuped["ab"]["table"][:3])


# ----------------------------------------------------------------------------- formats


def test_json_carries_every_section(world_json, world_full):
    ab = world_json["ab"]
    assert len(ab["table"]) == 7
    for key in ("metric", "control", "treatment", "lift", "ci_low", "ci_high", "p_value", "p_adjusted", "significant"):
        assert key in ab["table"][0]
    assert set(ab["srm"]) == {"chi2", "p_value", "flagged"}
    segments = [r["segment"] for r in world_json["auc"]["rows"]]
    assert segments[0] == "all" and segments.count("day") == 14 and segments.count("bucket") == 2
    assert len(world_json["calibration"]["table"]) == 10
    assert [r["bucket"] for r in world_json["funnel"]] == ["control", "treatment", "all"]
    assert world_json["recall"] == [] and "join" in world_json
    assert list(world_json)[:1] == ["ab"] or "verdict" in world_json  # JSON keys are sorted on disk
    assert world_json["verdict"][0]["decision"] in ("significant win", "significant loss", "inconclusive")
    assert world_json["self_check"]["splits"] == 500 and world_json["daily"]["metric"] == "ctr"
    assert world_json["segments"] is None
    rec = json.loads(render(world_full, "json"))["recall"][0]
    assert rec["label"] == "logged" and set(rec["hitrate_click"]) == {"50", "100", "1200"}
    assert set(rec["top_n_share"]) == {"10", "50"}


def test_text_readout_order(world_full):
    text = render(world_full, "text")
    titles = ["Verdict: treatment vs control", "A/B readout", "Sample ratio mismatch", "A/A self-check",
              "Daily lift of ctr", "Offline vs online AUC", "GAUC", "Calibration", "Funnel per bucket",
              "Recall funnel: logged"]
    at = [text.index("\n\n" + t) for t in titles]  # section titles follow a blank line
    assert at == sorted(at)
    assert "ctr" in text and "uctr" in text


def test_markdown_has_the_tables(world_full):
    md = render(world_full, "md")
    assert md.index("## Verdict: treatment vs control (ctr, primary)") < md.index("## A/B readout")
    assert ("| treatment | metric | role | control | treatment value | lift | 95% CI | level | p | p adj. | flag "
            "| note |") in md
    for title in ("## Sample ratio mismatch", "## Offline vs online AUC", "## GAUC", "## Calibration",
                  "## Funnel per bucket", "## Recall funnel: logged"):
        assert title in md
    assert re.search(r"^\| treatment \| ctr \| ", md, re.M)
    assert re.search(r"^\| control \| [\d,]+ \| [\d,]+ \| [\d,]+ \|", md, re.M)


def test_html_stands_alone_with_plots(world_full):
    page = render(world_full, "html")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.index("class='verdict") < page.index("<h2>A/B readout")
    ids = re.findall(r'<svg id="(plot-[\w-]+)"', page)
    assert ids == ["plot-lift-treatment", "plot-daily-treatment", "plot-reliability", "plot-recall"]
    assert page.count("<svg") == page.count("</svg>") == 4
    # The only URLs are XML namespaces, identifiers that are never fetched.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert not re.search(r"<(script|link|img|iframe)\b", page, re.I)
    assert not re.search(r"\bsrc\s*=", page, re.I)
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', page))
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        root = ElementTree.fromstring(svg)  # well-formed XML, so browsers draw it inline
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    # Ids are unique across the page (several matplotlib figures inline).
    every_id = re.findall(r'\bid="([^"]+)"', page)
    assert len(every_id) == len(set(every_id))


def test_render_rejects_unknown_format(world_full):
    with pytest.raises(ValueError, match=r"format must be one of .*Got 'pdf' instead"):
        render(world_full, "pdf")


# ----------------------------------------------------------------------------- bad input


def _cli(argv, capsys):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize(("args", "message"), [
    (["--control", "nope", "--treatment", "treatment"],
     "error: --control must be one of the buckets ['control', 'ghost', 'treatment']. Got 'nope' instead."),
    (["--control", "control", "--treatment", "Treatment"],
     "error: --treatment must be one of the buckets ['control', 'ghost', 'treatment']. Got 'Treatment' instead."),
    (["--control", "ghost", "--treatment", "treatment"],
     "error: control must be a bucket with users in the readout window. Got 'ghost', which has no exposed users"),
    (["--control", "control"], "error: --control and --treatment go together"),
    (["--k", "50", "--k", "0"], "error: --k must be an int in [1, inf). Got 0 instead."),
    (["--candidates", "missing.parquet"], "error: --candidates file 'missing.parquet' does not exist."),
])
def test_cli_bad_input_exits_1_with_error_line(small_dir, args, message, capsys):
    rc, out, err = _cli([small_dir[0], "--quiet", *args], capsys)
    assert rc == 1 and out == ""
    assert err.startswith(message), err
    assert "Traceback" not in err


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_cli_candidates_of_unknown_requests(small_dir, tmp_path, suffix, capsys):
    path, logs = small_dir
    cands = recall_candidates(logs, 1)
    cands.loc[cands.index[:2], "request_id"] = [424242, 434343]
    file = tmp_path / f"cands.{suffix}"
    cands.to_parquet(file) if suffix == "parquet" else cands.to_csv(file, index=False)
    rc, _, err = _cli([path, "--quiet", "--candidates", file], capsys)
    assert rc == 1
    assert err.startswith("error: candidates: 2 row(s) have a request_id that is not in the logs "
                          "(e.g. request_id 424242)"), err


def test_cli_runs_with_candidates_and_progress_lines(small_dir, tmp_path, capsys):
    path, logs = small_dir
    file = tmp_path / "rand.parquet"
    recall_candidates(logs, 2).to_parquet(file)
    rc, out, err = _cli([path, "--candidates", file, "--k", "5", "--k", "20", "--format", "md"], capsys)
    assert rc == 0
    assert "## Recall funnel: rand" in out
    for step in ("[1/8] read and validate logs", "[2/8] join samples", "[3/8] A/B statistics, A/A self-check",
                 "[4/8] offline vs online AUC", "[8/8] recall funnel"):
        assert step in err
    rc, out, err = _cli([path, "--quiet", "--format", "json", "--out", tmp_path / "o" / "r.json"], capsys)
    assert rc == 0 and out == "" and err == ""
    assert json.loads((tmp_path / "o" / "r.json").read_text())["logs"] == str(path)


def test_build_readout_errors_name_the_value(small_dir, world):
    _, logs = small_dir
    samples = join_samples(logs).samples
    with pytest.raises(ValueError, match=r"control must be one of the buckets \['control', 'ghost', 'treatment'\]\. "
                                         r"Got 'x' instead"):
        build_readout(logs, samples, control="x", treatment="treatment")
    with pytest.raises(ValueError, match=r"treatment must be a bucket with users .* Got 'ghost'"):
        build_readout(logs, samples, control="control", treatment="ghost")
    cands = recall_candidates(logs, 3)
    with pytest.raises(ValueError, match=r"ks must be an int in \[1, inf\)\. Got 0 instead"):
        build_readout(logs, samples, candidates={"r": cands}, ks=(0, 10))
    first = int(samples["day"].min())
    with pytest.raises(ValueError, match=r"end day must not be before start day"):
        build_readout(logs, samples, start_day=first + 1, end_day=first)
    with pytest.raises(ValueError, match=r"CUPED needs a pre-period"):
        build_readout(logs, samples, cuped=True)


@pytest.mark.parametrize(("args", "status"), [(["--help"], 0), (["--unit", "session"], 2), (["--k", "x"], 2),
                                              (["--format", "pdf"], 2)])
def test_cli_usage_errors_exit_2_and_help_0(small_dir, args, status, capsys):
    rc, out, err = _cli([small_dir[0], *args], capsys)
    assert rc == status
    assert "Traceback" not in err
    assert ("usage: python -m eval.report" in out) if status == 0 else ("usage: python -m eval.report" in err)


def test_cli_progress_line_ends_before_the_error(tmp_path, capsys):
    rc, _, err = _cli([tmp_path / "missing"], capsys)
    assert rc == 1
    assert err.splitlines()[0] == "[1/8] read and validate logs ..."
    assert err.splitlines()[1].startswith("error: ")


def test_cli_error_has_no_traceback_in_a_real_process(small_dir):
    proc = subprocess.run([sys.executable, "-m", "eval.report", str(small_dir[0]), "--k", "0"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "error: --k must be an int in [1, inf). Got 0 instead."
    assert "Traceback" not in proc.stderr


def test_cli_reports_each_source_and_the_merged_file(small_dir, tmp_path, capsys):
    path, logs = small_dir
    a = recall_candidates(logs, 4).assign(source="a")
    b = recall_candidates(logs, 5).assign(source="b")
    merged = pd.concat([a, b]).sort_values(["request_id", "rank", "source"]).drop_duplicates(["request_id", "item_id"])
    merged = merged.assign(rank=merged.groupby("request_id").cumcount() + 1, source="a+b")
    files = []
    for name, frame in (("a", a), ("b", b), ("merged", merged)):
        files += ["--candidates", tmp_path / f"{name}.parquet"]
        frame.to_parquet(tmp_path / f"{name}.parquet")
    rc, out, _ = _cli([path, "--quiet", "--format", "json", "--k", "3", "--k", "50", *files], capsys)
    assert rc == 0
    recall = json.loads(out)["recall"]
    assert [r["label"] for r in recall] == ["a", "b", "a+b"]
    samples = join_samples(logs).samples
    from eval.funnel import recall_funnel
    for rec, frame in zip(recall, (a, b, merged), strict=True):
        direct = recall_funnel(frame, logs, samples, ks=(3, 50))
        assert rec["hitrate_click"] == {str(k): v for k, v in direct["hitrate_click"].items()}
    # The merged list (at most 25 + 25 items) holds both lists' items: at K = 50 it hits at least as often.
    full = "50"
    assert recall[2]["hitrate_click"][full] >= max(recall[0]["hitrate_click"][full], recall[1]["hitrate_click"][full])
