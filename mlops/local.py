"""The local platform's composition: stand-ins for account values, the demo data, uploads."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from mlops.errors import MlopsError
from mlops.store import LocalObjectStore
from sagemaker_jobs.pipeline import PipelineSettings

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


def local_settings(code_version: str | None = None) -> PipelineSettings:
    return PipelineSettings(
        image_uri=LOCAL_IMAGE,
        role_arn=LOCAL_ROLE,
        bucket=LOCAL_BUCKET,
        default_target=DEMO_TARGET,
        code_version=code_version or git_commit(),
    )


def upload_dataset(store: LocalObjectStore, source: Path) -> str:
    """Put a data file (or a directory of them) in the store under its content hash."""
    if not source.exists():
        raise MlopsError(f"data {source} does not exist; pass a CSV/Parquet file or a directory")
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    if not files:
        raise MlopsError(f"data directory {source} is empty")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    prefix = f"s3://{LOCAL_BUCKET}/datasets/{digest.hexdigest()[:16]}"
    uri = prefix if source.is_dir() else f"{prefix}/{source.name}"
    return store.put(source, uri)
