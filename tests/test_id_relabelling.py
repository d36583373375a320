"""Ids of any type, in every command: relabelling a world's ids changes no output.

A small simulated world runs the whole chain of command-line tools in-process (``main(argv)``):
``ltr.logs validate``, ``ltr.train`` (LR and LightGBM), ``ltr.score``, ``ltr.explain``,
``recall.train`` + ``recall.retrieve`` for every source, ``recall.merge`` and ``eval.report
--format json``. The same world with its request, user and item ids relabelled must give the
same outputs, mapped back to the original ids, bit for bit:

* ``shuffled``: integers in a random order (what sorts first is unrelated to the original);
* ``strings``: random text ids, sorting unrelated to the original;
* ``digits``: zero-padded digit strings in a random order (string ids that look like numbers;
  this chain writes its scores and candidates as CSV, where such ids must stay strings).

No output depends on the order of the id values: catalogue rows, item codes and training
samples follow the order of the logs' rows (the items table, then first appearance), never the
sorted ids. One dependence remains and is not exercised here: exact score ties within a neural
source's list are broken by item id (``recall.base.finalize_candidates``); the simulated items
all have distinct embeddings, so their scores never tie exactly.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import eval.report.__main__ as report_cli
import ltr.explain
import ltr.logs.__main__ as logs_cli
import ltr.score
import ltr.train
import recall.merge
import recall.retrieve
import recall.train
from ltr.logs import Logs, join_samples, write_logs
from ltr.simulate import simulate_world
from recall.base import read_candidates
from tests.recall.worlds import relabel_ids

KINDS = ("shuffled", "strings", "digits")
ID_COLUMNS = ("request_id", "user_id", "item_id")
TABLES = ("requests", "exposures", "clicks", "candidates", "orders", "items", "users")
SOURCES = ("itemcf", "hot", "nip", "two_tower")
TINY = {"nip": ["--set", "epochs=1", "--set", "dim=8", "--set", "batch_size=512", "--set", "threads=1",
                "--set", "M=8", "--set", "ef_construction=40"],
        "two_tower": ["--set", "epochs=1", "--set", "dim=8", "--set", "batch_size=512", "--set", "threads=1",
                      "--set", "M=8", "--set", "ef_construction=40"]}
RANKER_END, RECALL_END, LAST = "2026-01-08", "2026-01-09", "2026-01-10"


def relabelling(logs: Logs, kind: str, seed: int = 0) -> dict[str, pd.Series]:
    """New id of every id of each id column (index: old id)."""
    rng = np.random.default_rng(seed)
    maps = {}
    for column in ID_COLUMNS:
        old = np.sort(pd.unique(pd.concat([getattr(logs, t)[column].dropna() for t in TABLES
                                           if getattr(logs, t) is not None and column in getattr(logs, t)]))
                      .astype(np.int64))
        new: np.ndarray
        if kind == "shuffled":
            new = rng.permutation(old.size).astype(np.int64) * 7 + 10**9
        elif kind == "strings":
            new = np.array([f"{column[0]}-{token:08x}" for token in rng.choice(2**31, old.size, replace=False)],
                           dtype=object)
        else:
            new = np.array([f"{token:09d}" for token in rng.choice(10**8, old.size, replace=False)], dtype=object)
        maps[column] = pd.Series(new, index=old)
    return maps


def relabel(logs: Logs, maps: dict[str, pd.Series]) -> Logs:
    """The same logs with every id replaced (validated again)."""
    return relabel_ids(logs, {column: (lambda ids, m=mapping: ids.map(m)) for column, mapping in maps.items()})


def back(frame: pd.DataFrame, maps: dict[str, pd.Series]) -> pd.DataFrame:
    """``frame`` with its id columns mapped back to the original ids."""
    frame = frame.copy()
    for column, mapping in maps.items():
        if column in frame.columns:
            inverse = pd.Series(mapping.index.to_numpy(), index=pd.Index(mapping.to_numpy(), dtype=object))
            original = inverse.reindex(frame[column].astype(object).to_numpy())
            assert original.notna().all(), f"{column}: ids that are not relabelled ids"
            frame[column] = original.to_numpy().astype(np.int64)
    return frame


def _run(main, argv: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 0, f"{main.__module__} {argv} exited {code}: {err.getvalue()}"
    return out.getvalue()


def _read_scores(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"request_id": str, "item_id": str})


def run_chain(logs: Logs, root: Path, exposure: tuple, ext: str) -> dict:
    """Every command on ``logs``; returns their outputs (ids as the commands wrote them)."""
    data = str(root / "logs")
    write_logs(logs, data)
    out: dict = {"validate": _run(logs_cli.main, ["validate", data]).replace(data, "LOGS")}
    for model in ("lr", "lgbm"):
        bundle = str(root / model)
        extra = ["--set", "num_boost_round=30", "--set", "num_threads=1"] if model == "lgbm" else []
        text = _run(ltr.train.main, [data, "--model", model, "--train-end", RANKER_END, "--out", bundle, *extra])
        out[f"train_{model}"] = re.sub(r"fit \d+\.\ds", "fit _s", text.replace(bundle, "BUNDLE"))
        out[f"metrics_{model}"] = json.loads((root / model / "manifest.json").read_text())["metadata"]["metrics"]
        scores = root / f"scores_{model}{ext}"
        _run(ltr.score.main, [bundle, data, "--start", RECALL_END, "--end", LAST, "--out", str(scores)])
        out[f"score_{model}"] = _read_scores(scores)
    out["explain"] = _run(ltr.explain.main, [str(root / "lr"), data, "--request-id", str(exposure[0]),
                                             "--item-id", str(exposure[1])])
    for source in SOURCES:
        _run(recall.train.main, [data, "--model", source, "--train-end", RECALL_END, "--out", str(root / source),
                                 *TINY.get(source, [])])
        _run(recall.retrieve.main, [str(root / source), data, "--start", LAST, "--end", LAST, "--k", "40",
                                    "--out", str(root / f"{source}{ext}")])
        out[source] = read_candidates(root / f"{source}{ext}")
    _run(recall.merge.main, [str(root / f"nip{ext}"), str(root / f"itemcf{ext}"), str(root / f"hot{ext}"),
                             "--quota", "nip=15", "--quota", "itemcf=15", "--quota", "hot=10",
                             "--out", str(root / f"merged{ext}")])
    out["merged"] = read_candidates(root / f"merged{ext}")
    candidates = [arg for s in (*SOURCES, "merged") for arg in ("--candidates", str(root / f"{s}{ext}"))]
    _run(report_cli.main, [data, "--bundle", str(root / "lgbm"), *candidates, "--format", "json",
                           "--out", str(root / "report.json"), "--quiet"])
    report = json.loads((root / "report.json").read_text())
    report.pop("logs")
    out["report"] = report
    return out


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    world = simulate_world(users=200, items=250, days=6, seed=9, candidates_per_request=20).logs
    samples = join_samples(world).samples
    exposure = tuple(samples.loc[samples["day"] == samples["day"].max(), ["request_id", "item_id"]].iloc[3])
    root = tmp_path_factory.mktemp("relabel")
    runs = {"original": ({}, run_chain(world, root / "original", exposure, ".parquet"))}
    for kind in KINDS:
        maps = relabelling(world, kind)
        new_exposure = (maps["request_id"][exposure[0]], maps["item_id"][exposure[1]])
        ext = ".csv" if kind == "digits" else ".parquet"
        runs[kind] = (maps, run_chain(relabel(world, maps), root / kind, new_exposure, ext))
    return runs


@pytest.mark.parametrize("kind", KINDS)
def test_relabelled_world_really_has_other_ids(chains, kind):
    maps, out = chains[kind]
    ids = out["itemcf"]["item_id"]
    if kind == "shuffled":
        assert pd.api.types.is_integer_dtype(ids.dtype)
        assert not np.array_equal(np.argsort(maps["item_id"].to_numpy()), np.arange(len(maps["item_id"])))
    else:
        assert ids.map(type).eq(str).all()
    if kind == "digits":
        assert ids.str.fullmatch(r"\d{9}").all() and ids.str.startswith("0").any()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["validate", "train_lr", "train_lgbm"])
def test_reports_are_identical(chains, kind, name):
    assert chains[kind][1][name] == chains["original"][1][name]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", ["lr", "lgbm"])
def test_bundle_metrics_are_identical(chains, kind, model):
    got, want = chains[kind][1][f"metrics_{model}"], chains["original"][1][f"metrics_{model}"]
    # Equal up to the order of float sums: the held-out rows of one timestamp, and LR's one-hot
    # id columns, follow the ids' order, so sums of the same terms may differ in the last bit.
    got, want = _flat(got), _flat(want)
    assert got.keys() == want.keys() and want["auc."] is not None
    floats = [k for k, v in want.items() if isinstance(v, float)]
    assert {k: v for k, v in got.items() if k not in floats} == {k: v for k, v in want.items() if k not in floats}
    assert [got[k] for k in floats] == pytest.approx([want[k] for k in floats], rel=1e-12, abs=1e-15)


def _flat(value, prefix=""):
    """Nested dicts and lists of metrics as one flat dict (pytest.approx compares flat mappings)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{prefix}{i}.").items()}
    return {prefix: value}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", ["lr", "lgbm"])
def test_scores_are_identical(chains, kind, model):
    maps, out = chains[kind]
    got = back(out[f"score_{model}"], maps).sort_values(["request_id", "item_id"]).reset_index(drop=True)
    want = chains["original"][1][f"score_{model}"].sort_values(["request_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("kind", KINDS)
def test_explanation_is_identical(chains, kind):
    maps, out = chains[kind]
    (old_request, new_request), = [(o, n) for o, n in maps["request_id"].items() if f"request {n} " in out["explain"]]
    item = re.search(r" item (\S+) ", out["explain"]).group(1)
    old_item = back(pd.DataFrame({"item_id": [item if kind != "shuffled" else int(item)]}), maps)["item_id"][0]
    text = out["explain"].replace(f"request {new_request} ", f"request {old_request} ")
    # Id-level features (LR's one-hot user and item ids) name the id: map it back too.
    for column in ("user_id", "item_id"):
        inverse = {str(n): str(o) for o, n in maps[column].items()}
        text = re.sub(rf"{column}=(\S+)", lambda m, inv=inverse, c=column: f"{c}={inv.get(m.group(1), m.group(1))}",
                      text)
    text = text.replace(f" item {item} ", f" item {old_item} ")
    # The table pads its columns to the longest feature name, which holds an id.
    assert re.sub(r" +", " ", text) == re.sub(r" +", " ", chains["original"][1]["explain"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", [*SOURCES, "merged"])
def test_recall_lists_are_identical(chains, kind, source):
    maps, out = chains[kind]
    got = back(out[source], maps).sort_values(["request_id", "rank"]).reset_index(drop=True)
    want = chains["original"][1][source].sort_values(["request_id", "rank"]).reset_index(drop=True)
    assert len(want) and want["request_id"].nunique() > 10
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("kind", KINDS)
def test_readout_is_identical(chains, kind):
    got, want = chains[kind][1]["report"], chains["original"][1]["report"]
    assert want["recall"] and got == want
