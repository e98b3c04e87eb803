"""The local platform's composition: stand-ins for account values, the demo data, uploads."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops.errors import MlopsError, NotFound
from mlops.registry import ModelPackage
from mlops.stages import DEFAULT_PROJECT
from mlops.store import LocalObjectStore
from sagemaker_jobs.digests import file_entries, tree_sha256
from sagemaker_jobs.pipeline import PipelineSettings
from sagemaker_jobs.tuning import TuningSettings

# Stand-ins for what CDK passes in AWS: ARN-shaped, so the SDK never asks IAM about them.
LOCAL_IMAGE = "local/sagemaker-mlops:latest"
LOCAL_ROLE = "arn:aws:iam::000000000000:role/mlops-local"
LOCAL_BUCKET = "mlops-local"
DEMO_DATA = Path(__file__).parent / "demo" / "penguins.csv"
DEMO_TARGET = "species"


def git_commit(cwd: Path | None = None) -> str:
    """The code version recorded as lineage; 'unknown' outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=cwd or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def local_settings(
    code_version: str | None = None,
    tuning: TuningSettings | None = None,
    project: str = DEFAULT_PROJECT,
) -> PipelineSettings:
    """A project's pipeline: its name, and its model package group, are the project's."""
    return PipelineSettings(
        pipeline_name=project,
        model_package_group=project,
        image_uri=LOCAL_IMAGE,
        role_arn=LOCAL_ROLE,
        bucket=LOCAL_BUCKET,
        default_target=DEMO_TARGET,
        code_version=code_version or git_commit(),
        tuning=tuning,
    )


def load_tuning(path: Path) -> TuningSettings:
    """Tuning settings from a JSON or YAML file (the same fields as a stage's ``tuning``)."""
    import yaml
    from pydantic import ValidationError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MlopsError(f"cannot read tuning settings {path}: {exc}") from exc
    try:  # JSON is YAML too
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MlopsError(f"{path} is not valid JSON or YAML: {exc}") from exc
    try:
        return TuningSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise MlopsError(
            f"bad tuning settings in {path}: {problems}. See docs/tuning-and-caching.md"
        ) from exc


def unpack_package(store: LocalObjectStore, package: ModelPackage, into: Path) -> Path:
    """Unpack a registered version's model.tar.gz into ``into``; return the model folder."""
    from sagemaker_jobs import artifacts  # scikit-learn and pandas: only when a model is needed
    from sagemaker_jobs.contract import JobError

    try:
        return artifacts.unpack(store.path_for(package.model_data_url), into)
    except JobError as exc:
        raise MlopsError(f"{package.group} version {package.version}: {exc}") from exc


def upload_dataset(store: LocalObjectStore, source: Path) -> str:
    """Put a data file (or a directory of them) in the store under its content hash."""
    if not source.exists():
        raise NotFound(f"data {source} does not exist; pass a CSV/Parquet file or a directory")
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    if not files:
        raise MlopsError(f"data directory {source} is empty")
    base = source if source.is_dir() else source.parent
    entries = file_entries(files, base)
    prefix = f"s3://{LOCAL_BUCKET}/datasets/{tree_sha256(entries)[:16]}"
    uri = prefix if source.is_dir() else f"{prefix}/{source.name}"
    known = {path: sha256 for path, (_, sha256) in zip(files, entries, strict=True)}
    return store.put(source, uri, known)
