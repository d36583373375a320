"""Tests for ltr.bundle and the acceptance figures on the committed fixture world."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ltr.artifacts import ArtifactError
from ltr.bundle import BUNDLE_KIND, FORMAT_VERSION, check_inputs
from ltr.logs import read_logs
from ltr.serving import Ranker
from ltr.train import default_feature_params, prepare_training, train_ranker

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "world"
TRAIN_END = "2026-01-15"  # evaluate on 2026-01-16..2026-01-18, the fixture's last three days
# Fewer, faster rounds than the default (early stopping keeps ~170 at 0.05 here): a quick test.
LGBM = {"num_boost_round": 60, "learning_rate": 0.1, "num_threads": 2, "seed": 0}


@pytest.fixture(scope="module")
def trained():
    logs = read_logs(FIXTURE)
    data = prepare_training(logs, TRAIN_END, feature_params=default_feature_params("lgbm"))
    lr = train_ranker(logs, "lr", TRAIN_END)
    lgbm = train_ranker(logs, "lgbm", model_params=LGBM, data=data)
    return data, {"lr": lr, "lgbm": lgbm}


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    _, rankers = trained
    for name, ranker in rankers.items():
        assert ranker.save(root / name) is None
    return root


def test_fixture_acceptance_figures(trained):
    data, rankers = trained
    lr, lgbm = rankers["lr"].metadata["metrics"], rankers["lgbm"].metadata["metrics"]
    held = data.held_out
    assert lr["rows"] == lgbm["rows"] == len(held)
    assert rankers["lr"].metadata["training"]["converged"] is True
    # LightGBM on the same features (plus raw values) ranks at least as well as LR.
    assert lgbm["auc"] >= lr["auc"]
    # Both beat chance clearly; the online AUC is the logged rank_score on the same rows.
    assert lr["auc"] > 0.65
    assert lr["online_auc"] == pytest.approx(roc_auc_score(held["click"], held["rank_score"]), abs=1e-12)
    # Mean predicted vs actual CTR over the three held-out days within 5% (relative).
    assert abs(lr["calibration_ratio"] - 1) < 0.05
    assert abs(lgbm["calibration_ratio"] - 1) < 0.05
    assert list(rankers["lr"].metadata["feature_params"]["key_families"]) == ["item", "user"]


@pytest.mark.parametrize("name", ["lr", "lgbm"])
def test_round_trip_identical_scores(trained, saved, name):
    data, rankers = trained
    loaded = Ranker.load(saved / name)
    first_day = data.held_out["day"].min()
    rows = data.held_out.loc[data.held_out["day"] == first_day].iloc[:3000]
    np.testing.assert_array_equal(loaded.score(rows), rankers[name].score(rows))
    assert loaded.feature_names == rankers[name].feature_names
    assert loaded.inputs == rankers[name].inputs
    assert loaded.metadata["metrics"]["auc"] == pytest.approx(rankers[name].metadata["metrics"]["auc"])


@pytest.mark.parametrize("name", ["lr", "lgbm"])
def test_manifest_contents(saved, name):
    manifest = json.loads((saved / name / "manifest.json").read_text())
    assert manifest["kind"] == BUNDLE_KIND and manifest["format_version"] == FORMAT_VERSION
    meta = manifest["metadata"]
    assert meta["model"] == name
    assert meta["training"]["train_end"] == TRAIN_END and meta["training"]["eval_start"] == "2026-01-16"
    for key in ("auc", "logloss", "mean_predicted_ctr", "actual_ctr", "online_auc"):
        assert isinstance(meta["metrics"][key], float)
    assert {"lightgbm", "scikit-learn", "numpy"} <= set(manifest["libraries"])
    files = {p.relative_to(saved / name).as_posix() for p in (saved / name).rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json"}
    # Safe formats only: JSON, npz without object arrays, LightGBM text.
    assert {Path(f).suffix for f in files} <= {".json", ".npz", ".txt"}
    for f in files:
        if f.endswith(".npz"):
            with np.load(saved / name / f, allow_pickle=False) as data:
                for key in data.files:
                    assert data[key].dtype != object


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(("name", "target"), [("lr", "model/coef.npz"), ("lgbm", "model/model.txt"),
                                          ("lr", "features/arrays.npz"), ("lgbm", "features/state.json")])
def test_modified_file_is_refused(saved, tmp_path, name, target):
    bundle = _copy(saved / name, tmp_path / "b")
    path = bundle / target
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=re.escape(f"checksum mismatch for '{target}'")):
        Ranker.load(bundle)


def test_extra_missing_and_newer_bundles_refused(saved, tmp_path):
    bundle = _copy(saved / "lr", tmp_path / "extra")
    (bundle / "model" / "evil.pkl").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match=r"file not in its manifest: 'model/evil\.pkl'"):
        Ranker.load(bundle)
    bundle = _copy(saved / "lr", tmp_path / "missing")
    (bundle / "model" / "coef.npz").unlink()
    with pytest.raises(ArtifactError, match=r"'model/coef\.npz' listed in the manifest is missing"):
        Ranker.load(bundle)
    bundle = _copy(saved / "lgbm", tmp_path / "newer")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=f"format version {FORMAT_VERSION + 1}, newer than"):
        Ranker.load(bundle)
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        Ranker.load(tmp_path / "nowhere")


def test_save_refuses_foreign_directory_and_replaces_bundle(trained, tmp_path):
    _, rankers = trained
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="out must be a new or empty directory, or an existing bundle"):
        rankers["lr"].save(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    target = tmp_path / "bundle"
    rankers["lr"].save(target)
    rankers["lgbm"].save(target)  # replacing a bundle is allowed
    assert Ranker.load(target).model.name == "lgbm"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(("model", "inputs", "match"), [
    ("lr", "both", "inputs must be 'onehot' for model 'lr'"),
    ("lgbm", "sparse", r"inputs must be one of \['both', 'dense', 'onehot'\]\. Got 'sparse' instead\."),
])
def test_bad_inputs_choice(model, inputs, match):
    with pytest.raises(ValueError, match=match):
        check_inputs(model, inputs)
