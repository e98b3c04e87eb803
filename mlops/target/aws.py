"""The AWS target: a deployed stage's pipeline, registry, endpoints and buckets in SageMaker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.aws import Aws, explained
from mlops.errors import MlopsError
from mlops.home import Home
from mlops.registry.base import ModelPackage, ModelRegistry
from mlops.target.base import EndpointView, ExecutionRow, ShowSteps, StepRow, TargetKind

if TYPE_CHECKING:
    from mlops.lineage import Lineage
    from mlops.model_card import VersionFiles
    from mlops.monitoring_sources import CaptureFiles
    from mlops.tracking import ExecutionSummary


class AwsTarget:
    kind = TargetKind.aws

    def __init__(self, home: Home, aws: Aws) -> None:
        from mlops.registry.sagemaker import SageMakerModelRegistry

        self.home, self.aws = home, aws
        self.registry: ModelRegistry = SageMakerModelRegistry(aws)
        self.default_group = aws.stage.model_package_group
        self.project = aws.stage.project
        self.stage_name: str | None = aws.stage.name

    # pipeline -----------------------------------------------------------------------------
    def executions(self, limit: int) -> list[ExecutionRow]:
        from mlops.cloud import list_executions

        return [
            ExecutionRow(e.execution_id, e.status, e.started, "", e.failure_reason)
            for e in list_executions(self.aws, limit)
        ]

    def steps(self, execution: str, show: ShowSteps, *, watch: bool, interval: float) -> None:
        from mlops.cloud import CloudStep, execution_arn, follow_execution

        def rows(execution_id: str, status: str, found: list[CloudStep]) -> None:
            show(
                execution_id,
                status,
                [
                    StepRow(
                        s.name,
                        s.type,
                        s.status,
                        "" if s.seconds is None else f"{s.seconds:.2f}",
                        s.cache_hit,
                        s.detail,
                    )
                    for s in found
                ],
            )

        arn = execution_arn(self.aws, execution)
        follow_execution(self.aws, arn, rows, watch=watch, interval=interval)

    def upload(self, source: Path) -> str:
        from mlops.cloud import upload_data

        return upload_data(self.aws, source)

    # endpoints ----------------------------------------------------------------------------
    def endpoint(self, name: str) -> EndpointView:
        from mlops.cloud import endpoint_status

        status = endpoint_status(self.aws, name)
        details = [
            ("Config", f"{status.config} (last modified {status.last_modified})"),
            ("Model package", status.model_package_arn),
        ]
        if status.failure_reason:
            details.append(("Failure", status.failure_reason))
        return EndpointView(status.name, status.status, details)

    def invoke(
        self, name: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None
    ) -> bytes:
        extra = {"CustomAttributes": custom_attributes} if custom_attributes else {}
        with explained("sagemaker:InvokeEndpoint", f"endpoint {name}"):
            answer = self.aws.client("sagemaker-runtime").invoke_endpoint(
                EndpointName=name, ContentType=content_type, Accept=accept, Body=body, **extra
            )
        return bytes(answer["Body"].read())

    # tracking, model documents, lineage ---------------------------------------------------
    def tracking_summary(
        self, execution: str, scratch: Path, experiment: str | None
    ) -> ExecutionSummary:
        from dataclasses import replace

        from mlops.tracking import summarize_cloud

        summary = summarize_cloud(self.aws, execution, scratch)
        return replace(summary, experiment=experiment) if experiment else summary

    def version_files(self, package: ModelPackage) -> VersionFiles:
        from mlops.model_card import AwsVersionFiles

        return AwsVersionFiles(self.home, package, self.aws)

    def lineage(self, group: str, version: int) -> Lineage:
        from mlops.lineage import aws_lineage

        return aws_lineage(self.aws, group, version)

    # monitoring ---------------------------------------------------------------------------
    def baseline_dir(self, package: ModelPackage, into: Path | None) -> tuple[Path, str]:
        from mlops.monitoring_sources import aws_baseline

        scratch = self.home.root / "monitoring" / "baselines" / package.group / str(package.version)
        return aws_baseline(self.aws, package, into or scratch), "downloaded"

    def served_package(self, endpoint: str) -> ModelPackage:
        from mlops.cloud import endpoint_status

        arn = endpoint_status(self.aws, endpoint).model_package_arn
        *_, group, version = arn.split("/") if arn.count("/") >= 2 else ("", "", "")
        if not version.isdigit():
            raise MlopsError(f"endpoint {endpoint} serves no model package; pass --baseline")
        return self.registry.describe_model_package(group, int(version))

    def captures(self, endpoint: str, max_files: int) -> CaptureFiles:
        from mlops.monitoring_sources import aws_captures

        return aws_captures(self.aws, endpoint, max_files)
