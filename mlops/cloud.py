"""What the CLI does against a deployed stage: upload data, start and follow the pipeline.

The names come from the stage (cdk.json) and the stacks' fixed naming, so nothing is looked up
in CloudFormation: the data bucket is ``mlops-<stage>-data-<account>-<region>``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.aws import Aws, explained
from mlops.errors import MlopsError, NotFound
from mlops.executor.runner import resolve_parameters


def _files(source: Path) -> list[Path]:
    if not source.exists():
        raise NotFound(f"data {source} does not exist; pass a CSV/Parquet file or a directory")
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    if not files:
        raise MlopsError(f"data directory {source} is empty")
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_bucket(aws: Aws) -> str:
    with explained("sts:GetCallerIdentity"):
        account = aws.client("sts").get_caller_identity()["Account"]
    return f"mlops-{aws.stage.name}-data-{account}-{aws.stage.region}"


def upload_data(aws: Aws, source: Path) -> str:
    """Upload a file or folder under a prefix named by the content hash; return the S3 URI.

    Each object carries its own sha256 in its metadata; the bucket's default encryption is the
    stage's KMS key, so no key is named here."""
    files = _files(source)
    base = source if source.is_dir() else source.parent
    hashes = {path: _sha256(path) for path in files}
    digest = hashlib.sha256(
        "".join(f"{p.relative_to(base)}\0{h}\n" for p, h in hashes.items()).encode()
    )
    bucket = data_bucket(aws)
    prefix = f"datasets/{digest.hexdigest()[:16]}"
    s3 = aws.client("s3")
    hint = (
        f"`npx cdk deploy mlops-{aws.stage.name}-foundation -c stage={aws.stage.name}` creates it."
    )
    for path, sha in hashes.items():
        key = f"{prefix}/{path.relative_to(base)}"
        with explained("s3:PutObject", f"s3://{bucket}/{key}", hint), path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": sha})
    return f"s3://{bucket}/{prefix}" + ("" if source.is_dir() else f"/{source.name}")


@dataclass(frozen=True)
class CloudExecution:
    arn: str
    status: str
    started: str
    failure_reason: str

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


def _definition(aws: Aws) -> dict[str, Any]:
    name = aws.stage.pipeline_name
    hint = (
        f"`npx cdk deploy mlops-{aws.stage.name}-model-build -c stage={aws.stage.name}` creates it."
    )
    with explained("sagemaker:DescribePipeline", f"pipeline {name}", hint):
        described = aws.client("sagemaker").describe_pipeline(PipelineName=name)
    return dict(json.loads(described["PipelineDefinition"]))


def start_pipeline(aws: Aws, overrides: dict[str, str]) -> str:
    """Start the deployed pipeline; parameters are checked against its own definition first."""
    values = resolve_parameters(_definition(aws), overrides)
    parameters = [{"Name": k, "Value": str(v)} for k, v in values.items() if k in overrides]
    with explained("sagemaker:StartPipelineExecution", f"pipeline {aws.stage.pipeline_name}"):
        started = aws.client("sagemaker").start_pipeline_execution(
            PipelineName=aws.stage.pipeline_name, PipelineParameters=parameters
        )
    return str(started["PipelineExecutionArn"])


def list_executions(aws: Aws, limit: int) -> list[CloudExecution]:
    found: list[CloudExecution] = []
    client = aws.client("sagemaker")
    with explained("sagemaker:ListPipelineExecutions", f"pipeline {aws.stage.pipeline_name}"):
        for page in client.get_paginator("list_pipeline_executions").paginate(
            PipelineName=aws.stage.pipeline_name, SortBy="CreationTime", SortOrder="Descending",
            PaginationConfig={"MaxItems": limit},
        ):  # fmt: skip
            for summary in page["PipelineExecutionSummaries"]:
                found.append(
                    CloudExecution(
                        arn=summary["PipelineExecutionArn"],
                        status=summary.get("PipelineExecutionStatus", ""),
                        started=summary["StartTime"].isoformat(timespec="seconds"),
                        failure_reason=summary.get("PipelineExecutionFailureReason", ""),
                    )
                )
    return found
