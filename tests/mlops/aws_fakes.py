"""Answer the SageMaker calls moto lacks, as Stubber would, while every other call goes to moto."""

from __future__ import annotations

import json
from typing import Any

from botocore.awsrequest import AWSResponse

from mlops.aws import Aws


def answer(aws: Aws, operation: str, response: dict[str, Any]) -> list[dict[str, Any]]:
    """Answer ``operation`` (e.g. "ListPipelineExecutionSteps") from a before-call hook, so
    paginators and plain calls alike get ``response``. Returns the requests seen."""
    seen: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        seen.append(json.loads(params["body"]))  # the serialized request: what was asked
        return AWSResponse("", 200, {}, None), response

    aws.client("sagemaker").meta.events.register(f"before-call.sagemaker.{operation}", hook)
    return seen
