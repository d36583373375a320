"""Self-describing, tamper-evident artifact directories (model bundles, recall indexes).

An artifact is a directory of files in safe formats (JSON, npz, LightGBM text models,
torch ``state_dict`` files, hnswlib indexes) plus ``manifest.json`` holding its kind, a
format version, the library versions that wrote it, any metadata, and the sha256 of every
other file. :func:`read_manifest` refuses a directory whose files do not match.
"""
from __future__ import annotations

import hashlib
import json
import platform
import warnings
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST",
    "ArtifactError",
    "check_state",
    "library_versions",
    "read_manifest",
    "sha256_file",
    "write_manifest",
]

MANIFEST = "manifest.json"
_LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "lightgbm", "torch", "hnswlib")


class ArtifactError(ValueError):
    """An artifact directory is missing, tampered with, or from an unsupported version."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose formats artifacts depend on."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: str | Path, kind: str, format_version: int, metadata_: dict) -> dict:
    """Checksum every file under ``directory`` and write ``manifest.json``.

    Parameters
    ----------
    directory : path
        The artifact directory, already holding its files.
    kind : str
        What the artifact is (``"ltr.bundle"``, ``"recall.itemcf"`` ...); checked on load.
    format_version : int
        Version of the directory layout; loaders refuse newer versions.
    metadata_ : dict
        JSON-serialisable metadata stored under ``"metadata"``.

    Returns
    -------
    dict
        The manifest written.
    """
    root = Path(directory)
    files = {
        str(path.relative_to(root)): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {
        "kind": kind,
        "format_version": int(format_version),
        "libraries": library_versions(),
        "files": files,
        "metadata": metadata_,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(directory: str | Path, kind: str | tuple[str, ...], max_format_version: int) -> dict:
    """Load and verify ``manifest.json``: kind, format version, and every file's sha256.

    Raises
    ------
    ArtifactError
        Missing directory or manifest, another kind, a newer format version, a missing,
        extra or modified file.
    """
    root = Path(directory)
    path = root / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{root} is not an artifact directory: {MANIFEST} is missing.")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}.") from None
    kinds = (kind,) if isinstance(kind, str) else kind
    if manifest.get("kind") not in kinds:
        raise ArtifactError(f"{root} holds a {manifest.get('kind')!r} artifact; expected one of {list(kinds)}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > max_format_version:
        raise ArtifactError(
            f"{root} has format version {version!r}, newer than this library supports "
            f"({max_format_version}); upgrade the package to load it."
        )
    listed = manifest.get("files", {})
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST}
    missing = sorted(set(listed) - present)
    if missing:
        raise ArtifactError(f"{root} is incomplete: file {missing[0]!r} listed in the manifest is missing.")
    extra = sorted(present - set(listed))
    if extra:
        raise ArtifactError(f"{root} has a file not in its manifest: {extra[0]!r}; refusing to load it.")
    for name, expected in listed.items():
        if sha256_file(root / name) != expected:
            raise ArtifactError(
                f"{root}: checksum mismatch for {name!r}; the file was modified after the artifact "
                "was written. Refusing to load it."
            )
    current = library_versions()
    changed = {k: (v, current.get(k)) for k, v in manifest.get("libraries", {}).items()
               if k != "python" and current.get(k) != v}
    if changed:
        warnings.warn(f"{root} was written with other library versions {changed}; scores may differ slightly.",
                      stacklevel=2)
    return manifest


def check_state(state: Any, fmt: str, version: int, keys: Iterable[str]) -> None:
    """Raise unless ``state`` is a dict of format ``fmt`` / ``version`` holding every key in ``keys``.

    Shared by the ``from_state`` loaders of the components stored inside artifacts.

    Raises
    ------
    TypeError
        ``state`` is not a dict.
    ValueError
        Another format or version, or missing keys (named).
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict. Got {type(state).__name__} instead.")
    if state.get("format") != fmt or state.get("version") != version:
        raise ValueError(
            f"state must have format {fmt!r} version {version}. "
            f"Got format {state.get('format')!r} version {state.get('version')!r} instead."
        )
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"state must have keys {missing}. Got keys {sorted(state)} instead.")
