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
        "format": 1,
        "model_file": MODEL_FILE,
        "sha256": file_sha256(model_path),
        "target": schema.target,
        "problem_type": schema.problem_type,
        "features": schema.to_dict()["features"],
        "classes": schema.classes,
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


def load(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load the model only after its bytes match the sha256 the training job recorded."""
    manifest_path = model_dir / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise JobError(f"cannot read {manifest_path}: {exc}") from exc
    model_path = model_dir / manifest["model_file"]
    actual = file_sha256(model_path)
    if actual != manifest["sha256"]:
        raise JobError(
            f"{model_path.name} sha256 {actual[:12]}... does not match the manifest "
            f"({manifest['sha256'][:12]}...): the artifact was altered or truncated"
        )
    return joblib.load(model_path), manifest
