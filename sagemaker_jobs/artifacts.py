"""The model artifact: ``model.joblib`` plus ``manifest.json``, packed as ``model.tar.gz``."""

from __future__ import annotations

import json
import platform
import tarfile
from pathlib import Path
from typing import Any

import joblib
import numpy
import pandas
import sklearn

from sagemaker_jobs.contract import JobError, write_json
from sagemaker_jobs.data import Schema
from sagemaker_jobs.digests import file_sha256

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
ARCHIVE = "model.tar.gz"


def save(model: Any, schema: Schema, model_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / MODEL_FILE
    joblib.dump(model, model_path)
    manifest = {
        # 2: feature_selection.training and input_columns (readers take a 1 without them)
        "format": 2,
        "model_file": MODEL_FILE,
        "sha256": file_sha256(model_path),
        "target": schema.target,
        "problem_type": schema.problem_type,
        "features": schema.to_dict()["features"],
        "classes": schema.classes,
        "feature_selection": schema.selection,
        "libraries": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "pandas": pandas.__version__,
            "numpy": numpy.__version__,
        },
        **extra,
    }
    write_json(model_dir / MANIFEST_FILE, manifest)
    return manifest


def unpack(location: Path, into: Path) -> Path:
    """Return a directory holding the model: unpack ``model.tar.gz`` if that is what we got."""
    archive = location if location.is_file() else location / ARCHIVE
    if not archive.exists():
        if not location.exists():
            raise JobError(f"model {location} does not exist")
        if (location / MANIFEST_FILE).exists():
            return location
        raise JobError(
            f"no {ARCHIVE} or {MANIFEST_FILE} in {location}; pass the training job's output"
        )
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise JobError(f"cannot unpack {archive.name}: {exc}") from exc
    return into


def inside(model_dir: Path, name: object) -> Path:
    """A file the manifest names, which must be a plain file inside the package."""
    root = model_dir.resolve()
    path = (root / str(name)).resolve()
    if not isinstance(name, str) or not path.is_relative_to(root) or path == root:
        raise JobError(
            f"the manifest names {name!r}, which is not a file inside the package {model_dir}"
        )
    if not path.is_file():
        raise JobError(f"the manifest names {name!r}, but the package has no such file")
    return path


def verified(model_dir: Path, name: object, sha256: str) -> Path:
    """``inside``, and its bytes match the sha256 the training job recorded."""
    path = inside(model_dir, name)
    actual = file_sha256(path)
    if actual != sha256:
        raise JobError(
            f"{path.name} sha256 {actual[:12]}... does not match the manifest "
            f"({str(sha256)[:12]}...): the artifact was altered or truncated"
        )
    return path


def read_manifest(model_dir: Path) -> dict[str, Any]:
    manifest_path = model_dir / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise JobError(f"cannot read {manifest_path}: {exc}") from exc
    if not isinstance(manifest, dict) or not {"model_file", "sha256"} <= manifest.keys():
        raise JobError(f"{manifest_path} lacks model_file or sha256: not written by train")
    return manifest


def load(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load the model only after its bytes match the sha256 the training job recorded."""
    manifest = read_manifest(model_dir)
    model_path = verified(model_dir, manifest["model_file"], manifest["sha256"])
    return joblib.load(model_path), manifest
