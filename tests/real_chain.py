"""The whole chain on the real-log fixture (``fixtures/real``), and the numbers it is judged by.

One code path for the test (``tests/test_real_chain.py``) and for the golden file it compares
against (``fixtures/expected/real_chain.json``, written by ``python fixtures/make_expected.py``):
:func:`run_chain` runs every command line in-process through its ``main(argv)``, exactly as a
user would type it, and :func:`summarise` reads the numbers worth pinning from what the
commands wrote and printed.

Calendar days are Asia/Shanghai (the service's zone): the rankers train on 2022-04-24..28 and
are evaluated and scored on 04-29..30; the recall sources train on days up to 04-29 and
retrieve for every request of 04-30. Every setting is fixed here, so two runs give the same
numbers (LightGBM on one thread, torch on one thread, seeds at their defaults).
"""
from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from eval.report.__main__ import main as report_main
from ltr.explain import main as explain_main
from ltr.logs.__main__ import main as logs_main
from ltr.score import main as score_main
from ltr.serving import Ranker
from ltr.train import main as train_main
from recall.merge import main as merge_main
from recall.retrieve import main as retrieve_main
from recall.train import main as recall_train_main

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "fixtures" / "real"
EXPECTED = ROOT / "fixtures" / "expected" / "real_chain.json"

TZ = "Asia/Shanghai"
RANKER_TRAIN_END = "2022-04-28"
SCORE_START, SCORE_END = "2022-04-29", "2022-04-30"
RECALL_TRAIN_END = "2022-04-29"
HELD_OUT = "2022-04-30"
K = 100
READOUT_KS = (50, 100)
RANKERS: dict[str, tuple[str, ...]] = {"lr": (), "lgbm": ("num_threads=1",)}
# Model parameters of each recall source (``--set``); the defaults unless noted.
SOURCES: dict[str, tuple[str, ...]] = {"nip": (), "two_tower": (), "itemcf": (), "hot": ()}
QUOTA = K // len(SOURCES)
FORMATS = ("json", "md", "text", "html")
SCORE_QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)

Main = Callable[[list[str]], int]


class ChainRun(NamedTuple):
    """Where a chain run wrote its files, and what each step printed on stdout."""

    out: Path
    stdout: dict[str, str]


def run_cli(main: Main, argv: Sequence[str]) -> str:
    """Run one command line in-process; its stdout, or RuntimeError with its stderr on failure."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {status}: {err.getvalue().strip()}")
    return out.getvalue()


def explained_exposure(scores: pd.DataFrame) -> tuple[Any, Any]:
    """The exposure ``ltr.explain`` is run on: the first scored one (by request, then item) whose
    item has no category, so the explanation goes through the missing level."""
    items = pd.read_parquet(REAL / "items.parquet", columns=["item_id", "category"])
    blank = items.loc[items["category"].isna(), "item_id"]
    keys = scores.loc[scores["item_id"].isin(blank), ["request_id", "item_id"]]
    request_id, item_id = keys.sort_values(["request_id", "item_id"]).to_numpy()[0]
    return request_id, item_id


def run_chain(out: Path) -> ChainRun:
    """Run validate, train (LR, LightGBM), score, explain, recall train/retrieve for every source,
    merge and the readout in every format on ``fixtures/real``, writing under ``out``."""
    logs, tz = str(REAL), ["--tz", TZ]
    said = {"validate": run_cli(logs_main, ["validate", logs, *tz])}
    for model, settings in RANKERS.items():
        sets = [arg for pair in settings for arg in ("--set", pair)]
        said[f"train_{model}"] = run_cli(train_main, [logs, "--model", model, "--train-end", RANKER_TRAIN_END,
                                                      "--out", str(out / f"ranker_{model}"), *sets, *tz])
    said["score"] = run_cli(score_main, [str(out / "ranker_lgbm"), logs, "--start", SCORE_START, "--end", SCORE_END,
                                         "--out", str(out / "scores.parquet"), *tz])
    request_id, item_id = explained_exposure(pd.read_parquet(out / "scores.parquet"))
    said["explain"] = run_cli(explain_main, [str(out / "ranker_lgbm"), logs, "--request-id", str(request_id),
                                             "--item-id", str(item_id), "--top", "5", *tz])
    for source, settings in SOURCES.items():
        sets = [arg for pair in settings for arg in ("--set", pair)]
        said[f"recall_{source}"] = run_cli(recall_train_main, [logs, "--model", source, "--train-end",
                                                               RECALL_TRAIN_END, "--out", str(out / source),
                                                               *sets, *tz])
        said[f"retrieve_{source}"] = run_cli(retrieve_main, [str(out / source), logs, "--start", HELD_OUT,
                                                             "--end", HELD_OUT, "--k", str(K),
                                                             "--out", str(out / f"{source}.parquet"), *tz])
    quotas = [arg for source in SOURCES for arg in ("--quota", f"{source}={QUOTA}")]
    said["merge"] = run_cli(merge_main, [*(str(out / f"{source}.parquet") for source in SOURCES), *quotas,
                                         "--out", str(out / "merged.parquet")])
    candidates = [arg for name in (*SOURCES, "merged") for arg in ("--candidates", str(out / f"{name}.parquet"))]
    ks = [arg for k in READOUT_KS for arg in ("--k", str(k))]
    for fmt in FORMATS:
        said[f"report_{fmt}"] = run_cli(report_main, [logs, "--bundle", str(out / "ranker_lgbm"), *candidates, *ks,
                                                      "--format", fmt, "--out", str(out / f"readout.{fmt}"),
                                                      "--quiet", *tz])
    return ChainRun(out, said)


# ----------------------------------------------------------------------------- the numbers


def _count(text: str) -> int:
    return int(text.replace(",", ""))


def _search(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text, re.M)
    if found is None:
        raise ValueError(f"no line matching {pattern!r} in:\n{text}")
    return found


def parse_validation(text: str) -> dict[str, Any]:
    """Row counts, rows per local day, missing attributes and the join report of ``ltr.logs validate``."""
    tables = {m[1]: _count(m[2]) for m in re.finditer(r"^  (\w+) +([\d,]+) rows$", text, re.M)}
    days = {m[1]: [_count(m[2]), _count(m[3]), _count(m[4])]
            for m in re.finditer(r"^(\d{4}-\d\d-\d\d) +([\d,]+) +([\d,]+) +([\d,]+)$", text, re.M)}
    missing = {f"{m[3]}.{m[1]}": _count(m[2])
               for m in re.finditer(r"column (\w+): ([\d,]+) (items|users) have no value", text)}
    missing["items.category"] = _count(_search(r"([\d,]+) items have no category", text)[1])
    join_text = text[text.index("Join report"):text.index("Funnel per bucket")]
    join: dict[str, int] = {}
    for m in re.finditer(r"^ +(\w+) in: ([\d,]+)$", join_text, re.M):
        join[f"{m[1]}_in"] = _count(m[2])
    for m in re.finditer(r"^ +(\S.*?) {2,}([\d,]+) +(?:[\d.]+%|-)$", join_text, re.M):
        if m[1] in join:
            raise ValueError(f"join report line {m[1]!r} appears twice.")
        join[m[1]] = _count(m[2])
    span = _search(r"^Days in (\S+): (\S+) \.\. (\S+) \((\d+) days\)$", text)
    return {"tables": tables, "tz": span[1], "days": days, "first_day": span[2], "last_day": span[3],
            "missing": missing, "join": join}


def ranker_numbers(bundle: Path) -> dict[str, Any]:
    """A ranker bundle's evaluation metrics and training window (no timings)."""
    meta = Ranker.load(bundle).metadata
    metrics, training = meta["metrics"], meta["training"]
    overall = ("auc", "logloss", "rows", "clicks", "actual_ctr", "mean_predicted_ctr", "calibration_ratio")
    by_day = ("day", "auc", "logloss", "rows", "clicks", "mean_predicted_ctr")
    window = ("tz", "train_start", "train_end", "eval_start", "eval_end", "train_rows")
    return {**{key: metrics[key] for key in overall},
            "by_day": [{key: day[key] for key in by_day} for day in metrics["by_day"]],
            **{key: training[key] for key in window},
            "model": meta["model"], "inputs": meta["inputs"], "n_features": len(meta["feature_names"])}


def score_digest(path: Path) -> dict[str, Any]:
    """Row count, distinct requests, sum and quantiles of a score file."""
    scores = pd.read_parquet(path)
    score = scores["score"].astype(float)
    return {"rows": len(scores), "requests": int(scores["request_id"].nunique()), "sum": float(score.sum()),
            "quantiles": {f"{q:g}": float(score.quantile(q)) for q in SCORE_QUANTILES}}


def parse_explanation(text: str) -> dict[str, Any]:
    """The head line and the contribution table of ``ltr.explain``, as printed."""
    lines = text.strip().splitlines()
    head = re.match(r"request (\S+) item (\S+) +model (\S+) +score (\S+) +logit (\S+) +bias (\S+)$", lines[0])
    if head is None:
        raise ValueError(f"unexpected ltr.explain head line: {lines[0]!r}")
    rows = [line.split() for line in lines[2:]]
    return {"request_id": head[1], "item_id": head[2], "model": head[3], "score": head[4], "logit": head[5],
            "bias": head[6], "top": [[feature, value, contribution] for _, feature, value, contribution in rows]}


def candidate_numbers(path: Path) -> dict[str, int]:
    """Rows, requests, distinct items and sources of a candidate file."""
    frame = pd.read_parquet(path)
    return {"rows": len(frame), "requests": int(frame["request_id"].nunique()),
            "items": int(frame["item_id"].nunique()),
            **{f"from_{source}": int(n) for source, n in frame["source"].value_counts().sort_index().items()}}


def readout_numbers(readout: dict[str, Any]) -> dict[str, Any]:
    """The key numbers of the JSON readout."""
    calibration = {key: value for key, value in readout["calibration"].items() if key != "table"}
    recall = {r["label"]: {key: r[key] for key in ("n_requests", "requests_with_candidates", "n_click_targets",
                                                   "catalogue_size", "hitrate_click", "coverage",
                                                   "mean_hit_position")}
              for r in readout["recall"]}
    return {"window": readout["window"], "n_exposures": readout["n_exposures"], "n_users": readout["n_users"],
            "ab": {"available": readout["ab"]["available"], "note": readout["ab"].get("note")},
            "verdict": readout["verdict"], "join": readout["join"], "funnel": readout["funnel"],
            "auc": [{key: r[key] for key in ("segment", "value", "n", "positives", "offline_auc")}
                    for r in readout["auc"]["rows"]],
            "gauc": readout["gauc"], "calibration": calibration, "recall": recall}


def summarise(run: ChainRun, readout: dict[str, Any]) -> dict[str, Any]:
    """Every number the golden file pins, from a chain run and its JSON readout."""
    return {
        "validate": parse_validation(run.stdout["validate"]),
        "rankers": {model: ranker_numbers(run.out / f"ranker_{model}") for model in RANKERS},
        "scores": score_digest(run.out / "scores.parquet"),
        "explain": parse_explanation(run.stdout["explain"]),
        "candidates": {name: candidate_numbers(run.out / f"{name}.parquet") for name in (*SOURCES, "merged")},
        "readout": readout_numbers(readout),
    }
