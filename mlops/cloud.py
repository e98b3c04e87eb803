"""What the CLI does against a deployed stage: upload data, start and follow the pipeline.

The names come from the stage (cdk.json) and the stacks' fixed naming, so nothing is looked up
in CloudFormation: the data bucket is ``mlops-<stage>-data-<account>-<region>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.api_requests import check_pipeline
from mlops.aws import Aws, explained
from mlops.errors import ExecutionFailed, MlopsError, NotFound
from mlops.executor.definition import resolve_parameters
from sagemaker_jobs.digests import file_sha256, tree_sha256


def _files(source: Path) -> list[Path]:
    if not source.exists():
        raise NotFound(f"data {source} does not exist; pass a CSV/Parquet file or a directory")
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    if not files:
        raise MlopsError(f"data directory {source} is empty")
    return files


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
    hashes = {path: file_sha256(path) for path in files}
    digest = tree_sha256((p.relative_to(base).as_posix(), h) for p, h in hashes.items())
    bucket = data_bucket(aws)
    prefix = f"datasets/{digest[:16]}"
    s3 = aws.client("s3")
    hint = (
        f"`npx cdk deploy {aws.stage.names.foundation_stack} -c stage={aws.stage.name}` creates it."
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
    build = aws.stage.build_names
    hint = f"`npx cdk deploy {build.build_stack} -c stage={build.stage}` creates it."
    with explained("sagemaker:DescribePipeline", f"pipeline {name}", hint):
        described = aws.client("sagemaker").describe_pipeline(PipelineName=name)
    return dict(json.loads(described["PipelineDefinition"]))


def start_pipeline(aws: Aws, overrides: dict[str, str]) -> str:
    """Start the deployed pipeline; parameters are checked against its own definition first."""
    definition = _definition(aws)
    values = resolve_parameters(definition, overrides)
    # Refuse what a step would have SageMaker reject later (after the paid training).
    check_pipeline(definition, overrides, aws.stage.pipeline_name)
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
            PipelineName=aws.stage.pipeline_name,
            SortBy="CreationTime",
            SortOrder="Descending",
            PaginationConfig={"MaxItems": limit},
        ):
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


@dataclass(frozen=True)
class EndpointStatus:
    name: str
    status: str
    config: str
    model_package_arn: str
    last_modified: str
    failure_reason: str


TRANSITIONAL = ("Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed")


def endpoint_status(aws: Aws, name: str) -> EndpointStatus:
    """The endpoint, the config in service and the model package that config serves."""
    client = aws.client("sagemaker")
    hint = f"`npx cdk deploy {aws.stage.names.deploy_stack} -c stage={aws.stage.name}` creates it."
    with explained("sagemaker:DescribeEndpoint", f"endpoint {name}", hint):
        endpoint = client.describe_endpoint(EndpointName=name)
    config_name = endpoint["EndpointConfigName"]
    with explained("sagemaker:DescribeEndpointConfig", f"endpoint config {config_name}"):
        config = client.describe_endpoint_config(EndpointConfigName=config_name)
    model_name = config["ProductionVariants"][0]["ModelName"]
    with explained("sagemaker:DescribeModel", f"model {model_name}"):
        model = client.describe_model(ModelName=model_name)
    containers = model.get("Containers") or [model.get("PrimaryContainer", {})]
    return EndpointStatus(
        name=name,
        status=endpoint["EndpointStatus"],
        config=config_name,
        model_package_arn=containers[0].get("ModelPackageName", ""),
        last_modified=endpoint["LastModifiedTime"].isoformat(timespec="seconds"),
        failure_reason=endpoint.get("FailureReason", ""),
    )


def wait_for_endpoint(
    aws: Aws,
    name: str,
    expected_package: str,
    *,
    timeout: float,
    poll: float = 15,
    progress: Any = None,
) -> EndpointStatus:
    """Wait until the endpoint settles, then insist it serves ``expected_package``.

    An update that rolled back leaves the endpoint InService on the old config: that is a
    failure here, reported with the package in service and SageMaker's failure reason."""
    import time

    deadline = time.monotonic() + timeout
    status = endpoint_status(aws, name)
    while status.status in TRANSITIONAL:
        if time.monotonic() > deadline:
            raise MlopsError(f"endpoint {name} is still {status.status} after {timeout:.0f}s")
        if progress:
            progress(status)
        time.sleep(poll)
        status = endpoint_status(aws, name)
    if status.status != "InService":
        raise ExecutionFailed(
            f"endpoint {name} is {status.status}: {status.failure_reason or 'no reason given'}"
        )
    if status.model_package_arn != expected_package:
        raise ExecutionFailed(
            f"endpoint {name} is InService but on {status.model_package_arn or 'an unknown model'} "
            f"(config {status.config}), not the requested {expected_package}: the update rolled back"
            + (f". Reason: {status.failure_reason}" if status.failure_reason else "")
        )
    return status


def latest_approved(aws: Aws, group: str) -> str:
    with explained("sagemaker:ListModelPackages", f"model package group {group}"):
        found = aws.client("sagemaker").list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )["ModelPackageSummaryList"]
    if not found:
        raise NotFound(f"model package group {group!r} has no approved version")
    return str(found[0]["ModelPackageArn"])


@dataclass(frozen=True)
class ReleasePlan:
    """What a release run should do, decided once at its start (the release's Plan action)."""

    model_package_arn: str  # the version every later action deploys, however long it waits
    release: bool
    reason: str

    def env(self) -> str:
        """Lines for a shell's ``set -a; . file``: CodeBuild exports them as the Plan action's
        output variables (buildspec.yml), which the later stages' entry conditions read."""
        return (
            f"MLOPS_RELEASE={'yes' if self.release else 'no'}\n"
            f"MODEL_PACKAGE_ARN={self.model_package_arn}\n"
        )


def release_plan(aws: Aws, group: str, last_endpoint: str) -> ReleasePlan:
    """Release the newest approved version unless the last stage's endpoint already serves it.

    SageMaker sends a "Model Package State Change" event for every change of an approved
    version (a metadata edit too) and the event does not say what changed, so the rule that
    starts the release cannot tell a new approval from an edit: this check can."""
    arn = latest_approved(aws, group)
    try:
        serving = endpoint_status(aws, last_endpoint)
    except NotFound:
        return ReleasePlan(arn, True, f"{last_endpoint} does not exist yet")
    if serving.status == "InService" and serving.model_package_arn == arn:
        return ReleasePlan(
            arn,
            False,
            f"{last_endpoint} already serves {arn} (a metadata edit or a repeated approval "
            "started this run): nothing to release",
        )
    current = serving.model_package_arn or "no model package"
    return ReleasePlan(arn, True, f"{last_endpoint} is {serving.status} on {current}")


def execution_arn(aws: Aws, execution: str) -> str:
    """An execution id (as listed), 'latest', or a full ARN -> the ARN."""
    if execution.startswith("arn:"):
        return execution
    if execution == "latest":
        found = list_executions(aws, 1)
        if not found:
            raise NotFound(
                f"pipeline {aws.stage.pipeline_name} has no execution yet; mlops pipeline start"
            )
        return found[0].arn
    with explained("sts:GetCallerIdentity"):
        account = aws.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:sagemaker:{aws.stage.region}:{account}:pipeline/{aws.stage.pipeline_name}/execution/{execution}"


# ListPipelineExecutionSteps tells a step's type by the key of its Metadata.
_STEP_TYPES = {
    "ProcessingJob": "Processing",
    "TrainingJob": "Training",
    "Condition": "Condition",
    "Fail": "Fail",
    "RegisterModel": "RegisterModel",
    "Model": "Model",
    "TuningJob": "Tuning",
}


@dataclass(frozen=True)
class CloudStep:
    name: str
    type: str
    status: str
    seconds: float | None
    detail: str  # the failure reason, or what the step produced (job ARN, outcome, package)
    cache_hit: str = ""  # the execution whose results SageMaker reused (CacheHitResult)


def _step(step: dict[str, Any]) -> CloudStep:
    metadata = step.get("Metadata", {})
    kind = next((label for key, label in _STEP_TYPES.items() if key in metadata), "")
    seconds = (
        (step["EndTime"] - step["StartTime"]).total_seconds()
        if "EndTime" in step and "StartTime" in step
        else None
    )
    produced = ", ".join(
        f"{k}={v.get('Arn', v.get('Outcome', v))}"
        for k, v in metadata.items()
        if isinstance(v, dict)
    )
    return CloudStep(
        step["StepName"],
        kind,
        step.get("StepStatus", ""),
        seconds,
        step.get("FailureReason") or produced,
        step.get("CacheHitResult", {}).get("SourcePipelineExecutionArn", "").rsplit("/", 1)[-1],
    )


def raw_execution_steps(aws: Any, arn: str) -> list[dict[str, Any]]:
    """Every step of an execution as SageMaker reports it, oldest first, across pages."""
    client = aws.client("sagemaker")
    with explained("sagemaker:ListPipelineExecutionSteps", arn):
        return [
            step
            for page in client.get_paginator("list_pipeline_execution_steps").paginate(
                PipelineExecutionArn=arn, SortOrder="Ascending"
            )
            for step in page["PipelineExecutionSteps"]
        ]


def execution_parameters(aws: Any, arn: str) -> dict[str, str]:
    """The parameter values an execution ran with (ListPipelineParametersForExecution)."""
    client = aws.client("sagemaker")
    with explained("sagemaker:ListPipelineParametersForExecution", arn):
        return {
            p["Name"]: p["Value"]
            for page in client.get_paginator("list_pipeline_parameters_for_execution").paginate(
                PipelineExecutionArn=arn
            )
            for p in page["PipelineParameters"]
        }


def execution_steps(aws: Aws, arn: str) -> tuple[str, list[CloudStep]]:
    """The execution's status and its steps, oldest first (ListPipelineExecutionSteps)."""
    client = aws.client("sagemaker")
    with explained("sagemaker:DescribePipelineExecution", arn):
        status = client.describe_pipeline_execution(PipelineExecutionArn=arn)[
            "PipelineExecutionStatus"
        ]
    return status, [_step(step) for step in raw_execution_steps(aws, arn)]


def deployed_definition(aws: Aws) -> dict[str, Any]:
    return _definition(aws)


RUNNING = ("Executing", "Stopping")


def follow_execution(
    aws: Aws,
    arn: str,
    show: Callable[[str, str, list[CloudStep]], None],
    *,
    watch: bool,
    interval: float,
) -> str:
    """Show the execution's steps, and with ``watch`` again every ``interval`` seconds until it
    ends. An execution that ended Failed or Stopped raises, with each failed step's reason."""
    import time

    while True:
        status, found = execution_steps(aws, arn)
        show(arn.rsplit("/", 1)[-1], status, found)
        if not watch or status not in RUNNING:
            break
        time.sleep(interval)
    if status in ("Failed", "Stopped"):
        reasons = "; ".join(f"{s.name}: {s.detail}" for s in found if s.status == "Failed")
        raise ExecutionFailed(f"execution {status}" + (f": {reasons}" if reasons else ""))
    return status
