"""`mlops pipeline steps --target aws [--watch]` and `mlops pipeline definition --deployed`.

moto has no ListPipelineExecutionSteps, so that one call is answered by botocore's Stubber on
the command's own SageMaker client (the seam: ``Aws.client``); the rest runs under moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mlops.aws import Aws
from mlops.cli import main
from mlops.commands import pipeline

ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/mlops-tabular/execution/abc123"


def _steps(stubber: Stubber, status: str, steps: list[dict[str, Any]]) -> None:
    stubber.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionStatus": status},
        {"PipelineExecutionArn": ARN},
    )
    stubber.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": steps},
        {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"},
    )


def step(name: str, status: str, reason: str = "") -> dict[str, Any]:
    job = {"Preprocess": "ProcessingJob", "Train": "TrainingJob"}[name]
    entry: dict[str, Any] = {
        "StepName": name,
        "StepStatus": status,
        "StartTime": datetime(2026, 11, 28, tzinfo=UTC),
        "Metadata": {
            job: {"Arn": f"arn:aws:sagemaker:us-east-1:123456789012:{job.lower()}/{name.lower()}-1"}
        },
    }
    if status != "Executing":
        entry["EndTime"] = datetime(2026, 11, 28, 0, 1, 30, tzinfo=UTC)
    if reason:
        entry["FailureReason"] = reason
    return entry


def test_steps_watch_follows_until_the_end_and_shows_failure_reasons(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    client = aws.client("sagemaker")
    with Stubber(client) as stubber:
        _steps(stubber, "Executing", [step("Preprocess", "Succeeded"), step("Train", "Executing")])
        _steps(
            stubber,
            "Failed",
            [
                step("Preprocess", "Succeeded"),
                step("Train", "Failed", "AlgorithmError: bad hyperparameters"),
            ],
        )
        assert (
            main(["pipeline", "steps", ARN, "--target", "aws", "--watch", "--interval", "1"]) == 1
        )
        stubber.assert_no_pending_responses()
    captured = capsys.readouterr()
    assert captured.out.count("Execution abc123:") == 2 and "Executing" in captured.out
    assert "Train: AlgorithmError: bad hyperparameters" in captured.err
    header = next(
        line for line in captured.out.splitlines() if "Step" in line and "Seconds" in line
    )
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == list(
        pipeline.STEP_COLUMNS
    )  # as the local listing
    assert "Processing" in captured.out and "90.00" in captured.out
    assert (
        "ProcessingJob=arn:aws:sagemaker:us-east-1:123456789012:processingjob/preprocess-1"
        in captured.out
    )


def test_definition_deployed_shows_the_body_and_its_difference(
    aws: Aws, local_definition: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deployed = json.loads(
        json.dumps(local_definition).replace(
            "local/sagemaker-mlops:latest", "123.dkr.ecr/mlops:abc"
        )
    )
    boto3.client("sagemaker", region_name="us-east-1").create_pipeline(
        PipelineName="mlops-tabular",
        PipelineDefinition=json.dumps(deployed),
        RoleArn="arn:aws:iam::123456789012:role/mlops-dev-sagemaker-pipeline",
    )
    assert main(["pipeline", "definition", "--deployed", "--stage", "dev"]) == 0
    captured = capsys.readouterr()
    assert (
        json.loads(captured.out)["Steps"][0]["Arguments"]["AppSpecification"]["ImageUri"]
        == "123.dkr.ecr/mlops:abc"
    )
    assert "changed lines against the local definition" in captured.err
    assert (
        '"ImageUri": "123.dkr.ecr/mlops:abc"' in captured.err
        and '"ImageUri": "local/sagemaker-mlops:latest"' in captured.err
    )
