"""`mlops ui --target aws`: the console over a deployed stage in moto (botocore's Stubber answers
ListPipelineExecutionSteps, which moto lacks): read-only pages, and approve/reject only with the
confirmation ticked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mlops.aws import Aws
from mlops.home import Home
from mlops.target.aws import AwsTarget
from tests.mlops.test_models_aws import GROUP, register, serve
from tests.mlops.ui_server import console, get, post

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def stage(aws: Aws, tmp_path: Any, local_definition: dict[str, Any]) -> Iterator[tuple[Aws, str]]:
    """Stage dev with its pipeline run once, two registered versions, an evaluation report in
    S3, and its console."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    report = {"metrics": {"accuracy": {"value": 0.97}}, "quality_gate": {"message": SCRIPT}}
    s3.put_object(Bucket="artifacts", Key="eval/evaluation.json", Body=json.dumps(report).encode())
    s3.put_object(Bucket="artifacts", Key="eval/report.html", Body=b"<html>the report</html>")
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    register(sagemaker, 2)
    sagemaker.create_pipeline(
        PipelineName=GROUP,
        PipelineDefinition=json.dumps(local_definition),
        RoleArn="arn:aws:iam::123456789012:role/mlops-dev-sagemaker-pipeline",
    )
    sagemaker.start_pipeline_execution(PipelineName=GROUP)
    with console(Home(tmp_path / "home"), AwsTarget(Home(tmp_path / "home"), aws)) as url:
        yield aws, url


def _token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_versions_are_read_from_the_registry_and_the_report_from_s3(
    stage: tuple[Aws, str],
) -> None:
    _, url = stage
    status, projects = get(f"{url}/projects")
    assert status == 200 and "AWS stage dev · project mlops-tabular" in projects, projects
    assert re.search(r"/projects/mlops-tabular/versions\">2</a>", projects)
    assert re.search(r"/projects/mlops-tabular/executions\">1</a>", projects)
    status, executions = get(f"{url}/projects/mlops-tabular/executions")
    assert status == 200 and executions.count('href="/executions/') == 1
    status, page = get(f"{url}/projects/mlops-tabular/versions/2")
    assert status == 200 and "accuracy" in page and "higher is better" in page
    assert SCRIPT not in page and "&lt;script&gt;" in page  # the gate's message, escaped
    assert 'name="confirm"' in page and "mlops models card 2 --target aws --stage dev" in page
    status, report = get(f"{url}/projects/mlops-tabular/versions/2/report")
    assert status == 200 and report == "<html>the report</html>"
    assert get(f"{url}/projects/other/versions")[0] == 404  # one project: the stage's


def test_approve_changes_the_registry_only_when_confirmed(stage: tuple[Aws, str]) -> None:
    aws, url = stage
    decide = f"{url}/projects/mlops-tabular/versions/1/approve"
    token = _token(get(f"{url}/projects/mlops-tabular/versions/1")[1])
    sagemaker = aws.client("sagemaker")
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/1"

    status, page = post(decide, {"csrf": token, "description": "alice: good"})
    assert status == 400 and "nothing changed: tick the box" in page
    assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == (
        "PendingManualApproval"
    )
    assert post(decide, {"csrf": "forged", "confirm": "yes", "description": "x"})[0] == 403
    status, page = post(decide, {"csrf": token, "confirm": "yes", "description": "alice: good"})
    assert status == 200 and 'id="approval">Approved<' in page
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "alice: good"


def test_the_stage_endpoint_is_shown_and_never_invoked(stage: tuple[Aws, str]) -> None:
    aws, url = stage
    status, empty = get(f"{url}/endpoints")
    assert status == 200 and 'id="endpoints"' in empty and "mlops-tabular-dev" not in empty
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/2"
    serve(aws.client("sagemaker"), "mlops-tabular-dev", arn, "dev-1")
    status, listed = get(f"{url}/endpoints")
    assert status == 200 and "mlops-tabular-dev" in listed and ">2</td>" in listed
    status, page = get(f"{url}/endpoints/mlops-tabular-dev")
    assert status == 200 and "InService" in page and arn in page
    token = _token(get(f"{url}/projects/mlops-tabular/versions/2")[1])
    status, answer = post(f"{url}/endpoints/mlops-tabular-dev/try", {"csrf": token})
    assert status == 400 and "does not invoke endpoints" in answer


def test_an_execution_shows_its_graph_steps_and_parameters(
    stage: tuple[Aws, str], local_definition: dict[str, Any]
) -> None:
    aws, url = stage
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/mlops-tabular/execution/abc123"
    start, end = datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 11, 28, 0, 1, 30, tzinfo=UTC)
    job = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/p-1"
    client = aws.client("sagemaker")
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionStatus": "Failed"},
            {"PipelineExecutionArn": arn},
        )
        stubber.add_response(
            "list_pipeline_execution_steps",
            {
                "PipelineExecutionSteps": [
                    {
                        "StepName": "Preprocess",
                        "StepStatus": "Succeeded",
                        "StartTime": start,
                        "EndTime": end,
                        "Metadata": {"ProcessingJob": {"Arn": job}},
                    },
                    {
                        "StepName": "Train",
                        "StepStatus": "Failed",
                        "StartTime": start,
                        "EndTime": end,
                        "FailureReason": f"AlgorithmError: {SCRIPT}",
                        "Metadata": {},
                    },
                ]
            },
            {"PipelineExecutionArn": arn, "SortOrder": "Ascending"},
        )
        stubber.add_response(
            "describe_pipeline_definition_for_execution",
            {"PipelineDefinition": json.dumps(local_definition)},
            {"PipelineExecutionArn": arn},
        )
        stubber.add_response(
            "list_pipeline_parameters_for_execution",
            {"PipelineParameters": [{"Name": "TargetColumn", "Value": "species"}]},
            {"PipelineExecutionArn": ANY},
        )
        status, page = get(f"{url}/executions/abc123")
        stubber.assert_no_pending_responses()
    assert status == 200, page
    steps = dict(re.findall(r'data-step="(\w+)" data-status="(\w+)"', page))
    assert steps["Preprocess"] == "Succeeded" and steps["Train"] == "Failed"
    assert steps["RegisterModel"] == "NotStarted"  # from the definition the execution ran
    assert "90.00" in page and "species" in page
    assert SCRIPT not in page and "AlgorithmError: &lt;script&gt;" in page
