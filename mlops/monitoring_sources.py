"""Where monitoring finds its inputs: a version's baseline and an endpoint's capture files,
in the local home (store, registry, endpoints) or in a deployed stage (SageMaker and S3)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mlops.aws import read_object, split_s3_uri
from mlops.errors import MlopsError, NotFound
from mlops.home import Home
from mlops.registry import ModelPackage
from mlops.store import LocalObjectStore
from sagemaker_jobs.baseline import CONSTRAINTS_FILE, SCHEMA_FILE, STATISTICS_FILE

CaptureFiles = list[tuple[str, str]]  # (where, JSON Lines text)


def _sibling(uri: str, name: str) -> str:
    return uri.rsplit("/", 1)[0] + "/" + name


# Local ----------------------------------------------------------------------------------------
def local_captures(home: Home, endpoint: str, max_files: int) -> CaptureFiles:
    """The newest ``max_files`` capture files of a local endpoint (kept after a delete, as in
    S3); the ``yyyy/mm/dd/hh`` folders sort by time."""
    root = home.root / "endpoints" / endpoint / "capture"
    files = sorted(root.rglob("*.jsonl"))[-max_files:] if root.exists() else []
    if not files:
        raise NotFound(
            f"no captured requests for local endpoint {endpoint!r} (looked in {root}); deploy it "
            f"with capture on (mlops endpoint deploy --name {endpoint} --capture-percent 100) "
            "and send it requests"
        )
    return [(str(f), f.read_text(encoding="utf-8")) for f in files]


def local_baseline(store: LocalObjectStore, package: ModelPackage) -> Path:
    """The folder holding the baseline the pipeline registered with this version."""
    uri = package.drift_baseline.get("statistics")
    if not uri:
        raise NotFound(
            f"{package.group} version {package.version} was registered without a baseline "
            "(before monitoring existed); `mlops monitor baseline "
            f"{package.version} --output DIR` recomputes one from its training split"
        )
    path = store.path_for(uri)
    if not path.exists():
        raise NotFound(f"the baseline of version {package.version} is gone from the store: {path}")
    return path.parent


def train_split_uri(package: ModelPackage) -> str:
    """The train split of the execution that registered this version (same pipeline prefix)."""
    execution = package.metadata.get("PipelineExecutionId", "")
    marker = f"/{execution}/"
    if not execution or marker not in package.model_data_url:
        raise NotFound(
            f"{package.group} version {package.version} does not say which pipeline execution "
            "made it, so its training split cannot be found"
        )
    return package.model_data_url.split(marker)[0] + marker + "preprocess/train"


def recompute_baseline(store: LocalObjectStore, package: ModelPackage, into: Path) -> Path:
    """Baseline a version registered before the pipeline wrote one, from its train split."""
    import json

    from sagemaker_jobs.baseline import write_baseline
    from sagemaker_jobs.contract import JobError
    from sagemaker_jobs.data import Schema, read_split

    split = store.path_for(train_split_uri(package))
    if not (split / "schema.json").exists():
        raise NotFound(f"the training split of version {package.version} is gone: {split}")
    try:
        schema = Schema.from_dict(json.loads((split / "schema.json").read_text("utf-8")))
        write_baseline(into, read_split(split, schema), schema)
    except JobError as exc:
        raise MlopsError(f"cannot baseline version {package.version}: {exc}") from exc
    return into


def copy_baseline(source: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for name in (STATISTICS_FILE, CONSTRAINTS_FILE, SCHEMA_FILE):
        if (source / name).exists() and source.resolve() != into.resolve():
            shutil.copy2(source / name, into / name)
    return into


# AWS ------------------------------------------------------------------------------------------
def aws_baseline(aws: Any, package: ModelPackage, into: Path) -> Path:
    """Download the baseline SageMaker holds for this version (DriftCheckBaselines) into ``into``."""
    statistics = package.drift_baseline.get("statistics")
    constraints = package.drift_baseline.get("constraints")
    if not statistics or not constraints:
        raise NotFound(
            f"{package.group} version {package.version} has no DriftCheckBaselines "
            "(ModelDataQuality statistics and constraints); it was registered by an older "
            "pipeline: run the pipeline again, or pass --baseline DIR"
        )
    into.mkdir(parents=True, exist_ok=True)
    (into / STATISTICS_FILE).write_bytes(read_object(aws, statistics))
    (into / CONSTRAINTS_FILE).write_bytes(read_object(aws, constraints))
    try:  # the names of the _c<i> columns, written beside them by the preprocess job
        (into / SCHEMA_FILE).write_bytes(read_object(aws, _sibling(statistics, SCHEMA_FILE)))
    except NotFound:
        (into / SCHEMA_FILE).unlink(missing_ok=True)
    return into


def capture_destination(aws: Any, endpoint: str) -> str:
    """The S3 prefix the endpoint's config captures to (DataCaptureConfig.DestinationS3Uri)."""
    from mlops.aws import explained

    client = aws.client("sagemaker")
    with explained("sagemaker:DescribeEndpoint", f"endpoint {endpoint}"):
        config_name = client.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    with explained("sagemaker:DescribeEndpointConfig", f"endpoint config {config_name}"):
        config = client.describe_endpoint_config(EndpointConfigName=config_name)
    capture = config.get("DataCaptureConfig") or {}
    if not capture.get("EnableCapture", True) or not capture.get("DestinationS3Uri"):
        raise MlopsError(
            f"endpoint {endpoint} does not capture data (its config {config_name} has no "
            "DataCaptureConfig); set endpoint.data_capture_percent for the stage in cdk.json"
        )
    return str(capture["DestinationS3Uri"]).rstrip("/")


def aws_captures(aws: Any, endpoint: str, max_files: int) -> CaptureFiles:
    """The newest ``max_files`` capture files under ``<destination>/<endpoint>/``."""
    from mlops.aws import explained

    prefix = f"{capture_destination(aws, endpoint)}/{endpoint}/"
    bucket, key = split_s3_uri(prefix)
    objects: list[dict[str, Any]] = []
    with explained("s3:ListBucket", prefix):
        for page in (
            aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        ):
            objects.extend(o for o in page.get("Contents", []) if o["Key"].endswith(".jsonl"))
    if not objects:
        raise NotFound(
            f"no capture files under {prefix} yet; SageMaker writes them a few minutes after "
            "the endpoint receives requests"
        )
    newest = sorted(objects, key=lambda o: o["Key"])[-max_files:]  # keys are yyyy/mm/dd/hh/...
    return [
        (f"s3://{bucket}/{o['Key']}", read_object(aws, f"s3://{bucket}/{o['Key']}").decode("utf-8"))
        for o in newest
    ]
