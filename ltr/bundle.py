"""Model bundles: a fitted feature pipeline plus a model, in one verified directory.

Layout of a bundle directory (format version :data:`FORMAT_VERSION`)::

    manifest.json          kind "ltr.bundle", format version, library versions, metadata
                           (model name, inputs, feature names, feature spec with bin edges and
                           priors, training window, offline metrics) and the sha256 of every file
    features/state.json    the feature pipeline's parameters, bin edges, priors, categories
    features/arrays.npz    point-in-time statistics tables and other numeric feature state
    model/params.json      model kind, parameters, feature names
    model/coef.npz         logistic regression weights            (model "lr")
    model/model.txt        LightGBM text model                      (model "lgbm")

Everything is JSON, ``npz`` (read with ``allow_pickle=False``) or LightGBM text, so a bundle
from an untrusted source cannot execute code. :func:`read_bundle` verifies the manifest
(kind, format version, checksums) through :func:`ltr.artifacts.read_manifest` before it
parses anything.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ltr._validation import check_choice
from ltr.artifacts import MANIFEST, ArtifactError, read_manifest, write_manifest
from ltr.features import FeatureBuilder, FeatureMatrix
from ltr.models import RankerModel, load_model

__all__ = ["BUNDLE_KIND", "FORMAT_VERSION", "INPUTS", "check_inputs", "design_matrix", "read_bundle",
           "write_bundle"]

BUNDLE_KIND = "ltr.bundle"
FORMAT_VERSION = 1
#: Which feature representation the model reads: the binned/one-hot CSR ("onehot"), the raw
#: continuous values and categorical codes ("dense"), or both side by side ("both").
INPUTS = ("onehot", "dense", "both")
DEFAULT_INPUTS = {"lr": "onehot", "lgbm": "dense"}

_FEATURES_DIR = "features"
_MODEL_DIR = "model"
_ARRAYS = "arrays.npz"
_STATE = "state.json"


def check_inputs(model_name: str, inputs: str | None) -> str:
    """Validate the ``inputs`` choice for a model; ``None`` picks the model's default.

    Raises
    ------
    ValueError
        An unknown choice, or raw inputs for logistic regression (unscaled, with NaN).
    """
    if inputs is None:
        return DEFAULT_INPUTS.get(model_name, "onehot")
    check_choice(inputs, "inputs", INPUTS)
    if model_name == "lr" and inputs != "onehot":
        raise ValueError(
            "inputs must be 'onehot' for model 'lr' (raw values are unscaled and hold NaN). "
            f"Got {inputs!r} instead."
        )
    return inputs


def design_matrix(features: FeatureMatrix, inputs: str) -> tuple[sp.csr_matrix | np.ndarray, list[str]]:
    """The matrix a model reads, from a :class:`ltr.features.FeatureMatrix`.

    Parameters
    ----------
    features : FeatureMatrix
        Output of ``FeatureBuilder.transform``.
    inputs : {"onehot", "dense", "both"}

    Returns
    -------
    X : scipy.sparse.csr_matrix or ndarray
        ``"dense"`` gives the float64 ndarray of raw values (NaN = missing); the others CSR.
    names : list of str
        One name per column of ``X``.
    """
    check_choice(inputs, "inputs", INPUTS)
    if inputs == "onehot":
        return features.X.tocsr(), list(features.feature_names)
    dense = np.asarray(features.dense, dtype=np.float64)
    if inputs == "dense":
        return dense, list(features.dense_names)
    # "both": NaN entries survive the conversion, so LightGBM still sees them as missing.
    raw = sp.csr_matrix(dense)
    X = sp.hstack([features.X.astype(np.float64), raw], format="csr")
    # Raw columns are prefixed: a value feature such as the cosine is in both parts.
    return X, list(features.feature_names) + [f"raw:{name}" for name in features.dense_names]


def _jsonable(value: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays nested in dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_bundle(out: str | Path, features: FeatureBuilder, model: RankerModel, inputs: str,
                 metadata: dict[str, Any]) -> None:
    """Write a bundle directory and its manifest.

    The directory is assembled next to ``out`` and moved into place, so a failed write never
    leaves a half bundle. An existing bundle at ``out`` is replaced; any other non-empty
    directory or a file there is refused.

    Parameters
    ----------
    out : path
    features : ltr.features.FeatureBuilder
        Fitted; saved through ``to_state()``.
    model : RankerModel
        Fitted.
    inputs : {"onehot", "dense", "both"}
    metadata : dict
        Extra JSON-ready metadata (training window, metrics ...).

    Raises
    ------
    ValueError
        ``out`` is a file or a non-empty directory that is not a bundle.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"out must be a directory path. Got existing file {str(out)!r} instead.")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise ValueError(
                f"out must be a new or empty directory, or an existing bundle to replace. "
                f"Got non-empty directory {str(out)!r} instead."
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    meta, arrays = features.to_state()
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / _FEATURES_DIR).mkdir()
        # Typed as Any: mypy would otherwise match the array names against savez's own keywords.
        named: dict[str, Any] = dict(arrays)
        np.savez(staging / _FEATURES_DIR / _ARRAYS, **named)
        # The manifest is written with sorted keys; the builder's state keeps its own key
        # order (it can be significant), so it gets a file of its own.
        (staging / _FEATURES_DIR / _STATE).write_text(json.dumps(_jsonable(meta), indent=1) + "\n")
        model.save(staging / _MODEL_DIR)
        content = {
            **_jsonable(metadata),
            "model": model.name,
            "inputs": inputs,
            "feature_names": list(model.feature_names_),
            "feature_spec": _jsonable(meta),
        }
        write_manifest(staging, BUNDLE_KIND, FORMAT_VERSION, content)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_bundle(path: str | Path) -> tuple[FeatureBuilder, RankerModel, str, dict[str, Any]]:
    """Verify and load a bundle.

    Returns
    -------
    features : ltr.features.FeatureBuilder
    model : RankerModel
    inputs : str
    metadata : dict
        The manifest's metadata.

    Raises
    ------
    ArtifactError
        Not a bundle, a newer format version, a missing, extra or modified file, or
        inconsistent contents.
    """
    root = Path(path)
    manifest = read_manifest(root, BUNDLE_KIND, FORMAT_VERSION)
    metadata = manifest["metadata"]
    try:
        with np.load(root / _FEATURES_DIR / _ARRAYS, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        state = json.loads((root / _FEATURES_DIR / _STATE).read_text())
        features = FeatureBuilder.from_state(state, arrays)
        model = load_model(root / _MODEL_DIR)
        inputs = metadata["inputs"]
    except (KeyError, ValueError, OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{root} is not a readable ltr bundle: {exc}") from None
    if model.name != metadata.get("model") or list(model.feature_names_) != list(metadata.get("feature_names", [])):
        raise ArtifactError(f"{root}: the model files do not match the manifest (model or feature names differ).")
    if inputs not in INPUTS:
        raise ArtifactError(f"{root}: inputs must be one of {list(INPUTS)}. Got {inputs!r} instead.")
    return features, model, inputs, metadata
