"""`mlops endpoint status|wait|invoke --target aws`, with moto's endpoint, config and model records.

moto creates endpoints InService at once and has no update_endpoint, so a rolled-back update is
simulated as SageMaker leaves it: the endpoint InService on the old config, the new one unused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from mlops.aws import Aws
from mlops.cli import main

ROLE = "arn:aws:iam::123456789012:role/mlops-dev-sagemaker-endpoint"
GROUP = "mlops-tabular"


@pytest.fixture
def sagemaker(aws: Aws) -> Iterator[Any]:
    client = boto3.client("sagemaker", region_name="us-east-1")
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    for _ in range(2):
        client.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )
    yield client


def arn(version: int) -> str:
    return f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/{version}"


def serve(client: Any, version: int) -> None:
    """Create (or point mlops-dev at) a config serving this package version."""
    client.create_model(
        ModelName=f"m{version}",
        ExecutionRoleArn=ROLE,
        Containers=[{"ModelPackageName": arn(version)}],
    )
    client.create_endpoint_config(
        EndpointConfigName=f"c{version}",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"m{version}",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    client.create_endpoint(EndpointName="mlops-dev", EndpointConfigName=f"c{version}")


def test_status_shows_the_package_in_service(
    sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(sagemaker, 2)
    assert main(["endpoint", "status", "mlops-dev", "--target", "aws"]) == 0
    shown = capsys.readouterr().out
    assert "Endpoint mlops-dev: InService" in shown and f"Model package:  {arn(2)}" in shown


def test_wait_succeeds_when_the_approved_version_is_in_service(
    sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(sagemaker, 2)
    assert main(["endpoint", "wait", "mlops-dev", "--stage", "dev", "--timeout", "5"]) == 0
    assert f"InService on {arn(2)}" in capsys.readouterr().out


def test_wait_detects_a_silent_rollback(sagemaker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    serve(sagemaker, 1)  # the deploy of version 2 rolled back: version 1 still serves
    assert main(["endpoint", "wait", "mlops-dev", "--timeout", "5"]) == 1
    message = capsys.readouterr().err
    assert (
        "InService but on" in message
        and arn(1) in message
        and arn(2) in message
        and "rolled back" in message
    )
    assert main(["endpoint", "wait", "mlops-dev", "--version", "1", "--timeout", "5"]) == 0


def test_missing_endpoint_names_the_stack(
    sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["endpoint", "status", "mlops-dev", "--target", "aws"]) == 3
    assert "mlops-tabular-dev-model-deploy -c stage=dev` creates it" in capsys.readouterr().err


def test_invoke_through_sagemaker_runtime(
    sagemaker: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(sagemaker, 2)
    rows = tmp_path / "rows.csv"
    rows.write_text("1,2\n")
    assert main(["endpoint", "invoke", "mlops-dev", "--file", str(rows), "--target", "aws"]) == 0
    assert (
        capsys.readouterr().out.strip()
    )  # moto's canned answer; error classes are tested on our server
