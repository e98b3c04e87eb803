"""The registry interface over SageMaker Model Registry (a stage's Model Package Group)."""

from __future__ import annotations

import json
from typing import Any

from mlops.aws import Aws, explained, read_object
from mlops.errors import MlopsError, NotFound
from mlops.registry.base import ModelPackage
from mlops.registry.local import check_status


class SageMakerModelRegistry:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.sagemaker = aws.client("sagemaker")

    def _hint(self, group: str) -> str:
        return f"`npx cdk deploy mlops-{self.aws.stage.name}-model-build -c stage={self.aws.stage.name}` creates group {group}."

    def _check_group(self, group: str) -> None:
        with explained(
            "sagemaker:DescribeModelPackageGroup", f"model package group {group}", self._hint(group)
        ):
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=group)

    def _summaries(self, group: str) -> list[dict[str, Any]]:
        self._check_group(group)
        summaries: list[dict[str, Any]] = []
        with explained("sagemaker:ListModelPackages", f"model package group {group}"):
            for page in self.sagemaker.get_paginator("list_model_packages").paginate(
                ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Ascending"
            ):
                summaries.extend(page["ModelPackageSummaryList"])
        return summaries

    def _metrics(self, described: dict[str, Any]) -> dict[str, Any]:
        """The evaluation report the pipeline attached (ModelQuality statistics in S3)."""
        uri = (
            described.get("ModelMetrics", {})
            .get("ModelQuality", {})
            .get("Statistics", {})
            .get("S3Uri")
        )
        if not uri:
            return {}
        body = read_object(self.aws, uri)
        try:
            return dict(json.loads(body))
        except ValueError as exc:
            raise MlopsError(f"the model metrics at {uri} are not JSON: {exc}") from exc

    def _package(self, described: dict[str, Any], with_metrics: bool = True) -> ModelPackage:
        container = described["InferenceSpecification"]["Containers"][0]
        spec = described["InferenceSpecification"]
        return ModelPackage(
            group=described["ModelPackageGroupName"],
            version=int(described["ModelPackageVersion"]),
            arn=described["ModelPackageArn"],
            approval_status=described["ModelApprovalStatus"],
            created=described["CreationTime"].isoformat(timespec="seconds"),
            model_data_url=container.get("ModelDataUrl", ""),
            image_uri=container.get("Image", ""),
            metrics=self._metrics(described) if with_metrics else {},
            metadata=dict(described.get("CustomerMetadataProperties", {})),
            approval_description=described.get("ApprovalDescription", ""),
            content_types=list(spec.get("SupportedContentTypes", [])),
            response_types=list(spec.get("SupportedResponseMIMETypes", [])),
            drift_baseline=_drift_baseline(described),
        )

    def _describe(self, arn: str) -> dict[str, Any]:
        with explained("sagemaker:DescribeModelPackage", arn):
            return dict(self.sagemaker.describe_model_package(ModelPackageName=arn))

    def _arn(self, group: str, version: int) -> str:
        for summary in self._summaries(group):
            if int(summary["ModelPackageVersion"]) == version:
                return str(summary["ModelPackageArn"])
        raise NotFound(f"model package group {group!r} has no version {version}")

    def create_model_package(
        self,
        group: str,
        *,
        model_data_url: str,
        image_uri: str,
        approval_status: str,
        metrics: dict[str, Any],
        metadata: dict[str, str],
        content_types: list[str],
        response_types: list[str],
        drift_baseline: dict[str, str] | None = None,
    ) -> ModelPackage:
        check_status(approval_status)
        self._check_group(group)
        with explained("sagemaker:CreateModelPackage", f"model package group {group}"):
            created = self.sagemaker.create_model_package(
                ModelPackageGroupName=group,
                ModelApprovalStatus=approval_status,
                CustomerMetadataProperties=metadata,
                InferenceSpecification={
                    "Containers": [{"Image": image_uri, "ModelDataUrl": model_data_url}],
                    "SupportedContentTypes": content_types,
                    "SupportedResponseMIMETypes": response_types,
                },
                **_drift_check_baselines(drift_baseline or {}),
            )
        return self._package(self._describe(created["ModelPackageArn"]), with_metrics=False)

    def list_groups(self) -> list[str]:
        groups: list[str] = []
        with explained("sagemaker:ListModelPackageGroups"):
            for page in self.sagemaker.get_paginator("list_model_package_groups").paginate():
                groups.extend(
                    g["ModelPackageGroupName"] for g in page["ModelPackageGroupSummaryList"]
                )
        return sorted(groups)

    def list_model_packages(self, group: str) -> list[ModelPackage]:
        return [self._package(self._describe(s["ModelPackageArn"])) for s in self._summaries(group)]

    def describe_model_package(self, group: str, version: int) -> ModelPackage:
        return self._package(self._describe(self._arn(group, version)))

    def update_approval_status(
        self, group: str, version: int, status: str, description: str = ""
    ) -> ModelPackage:
        check_status(status)
        arn = self._arn(group, version)
        arguments = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if description:
            arguments["ApprovalDescription"] = description
        with explained("sagemaker:UpdateModelPackage", arn):
            self.sagemaker.update_model_package(**arguments)
        return self._package(self._describe(arn), with_metrics=False)


def _drift_baseline(described: dict[str, Any]) -> dict[str, str]:
    """Model Monitor's baseline the pipeline registered (DriftCheckBaselines.ModelDataQuality)."""
    quality = described.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    return {kind.lower(): source["S3Uri"] for kind, source in quality.items() if "S3Uri" in source}


def _drift_check_baselines(baseline: dict[str, str]) -> dict[str, Any]:
    if not baseline:
        return {}
    sources = {
        kind.capitalize(): {"ContentType": "application/json", "S3Uri": uri}
        for kind, uri in baseline.items()
    }
    return {"DriftCheckBaselines": {"ModelDataQuality": sources}}
