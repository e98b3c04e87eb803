"""`mlops models ... --target aws` against SageMaker Model Registry, faked with moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops.aws import Aws, explained
from mlops.cli import main
from mlops.errors import MlopsError, NotFound

GROUP = "mlops-tabular"
AWS = ["--target", "aws", "--stage", "dev"]


@pytest.fixture
def sagemaker(aws: Aws) -> Iterator[Any]:
    client = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    report = {
        "metrics": {"accuracy": {"value": 0.97}},
        "quality_gate": {"metric": "accuracy", "value": 0.97},
    }
    s3.put_object(Bucket="artifacts", Key="eval/evaluation.json", Body=json.dumps(report).encode())
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    yield client


def register(client: Any, count: int) -> None:
    for _ in range(count):
        client.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "123.dkr.ecr.us-east-1.amazonaws.com/mlops-dev:abc",
                        "ModelDataUrl": "s3://artifacts/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": "s3://artifacts/eval/evaluation.json",
                    }
                }
            },
            CustomerMetadataProperties={"DatasetSha256": "ab" * 32},
        )


def test_list_pages_through_every_version_with_its_metrics(
    sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    register(sagemaker, 23)  # more than one page of ListModelPackages
    assert main(["models", "list", *AWS]) == 0
    listed = capsys.readouterr().out
    rows = [line for line in listed.splitlines() if "PendingManualApproval" in line]
    assert len(rows) == 23 and all("accuracy=0.97" in r and "abababababab" in r for r in rows)


def test_approve_then_reject_an_approved_version(
    sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    register(sagemaker, 2)
    assert main(["models", "approve", "2", "--description", "alice: beats v1", *AWS]) == 0
    assert "mlops-tabular version 2: Approved" in capsys.readouterr().out
    assert main(["models", "reject", "2", "--description", "bob: drift in prod", *AWS]) == 0
    assert main(["models", "describe", "2", *AWS]) == 0
    described = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert (described["approval_status"], described["approval_description"]) == (
        "Rejected",
        "bob: drift in prod",
    )
    assert described["metrics"]["quality_gate"]["value"] == 0.97
    assert described["arn"].endswith(":model-package/mlops-tabular/2")
    summary = sagemaker.describe_model_package(ModelPackageName=described["arn"])
    assert summary["ModelApprovalStatus"] == "Rejected"


def test_missing_version_and_missing_group(
    sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    register(sagemaker, 1)
    assert main(["models", "describe", "9", *AWS]) == 3
    assert "has no version 9" in capsys.readouterr().err
    assert main(["models", "list", "--group", "nope", *AWS]) == 3
    assert (
        "npx cdk deploy mlops-dev-model-build -c stage=dev` creates group nope"
        in capsys.readouterr().err
    )


def test_no_credentials_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert main(["models", "list", *AWS]) == 2
    assert "no AWS credentials" in capsys.readouterr().err


def test_unknown_target_and_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--target", "cloud"]) == 2
    # an Enum option: typer rejects the value as a usage error, naming the choices
    assert "'cloud' is not one of 'local', 'aws'" in capsys.readouterr().err
    assert main(["models", "list", "--target", "aws", "--stage", "qa"]) == 2
    assert "unknown stage 'qa'" in capsys.readouterr().err


def _client_error(code: str, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


@pytest.mark.parametrize(
    ("code", "error", "text"),
    [
        (
            "AccessDeniedException",
            MlopsError,
            "access denied: sagemaker:ListModelPackages on group g. Check the IAM",
        ),
        ("ExpiredTokenException", MlopsError, "session token has expired"),
        (
            "ThrottlingException",
            MlopsError,
            "kept throttling sagemaker:ListModelPackages after 10 tries",
        ),
        ("ResourceNotFound", NotFound, "group g does not exist. deploy it"),
        ("InternalFailure", MlopsError, "failed: InternalFailure: m"),
    ],
)
def test_aws_errors_say_what_to_check(code: str, error: type, text: str) -> None:
    """moto cannot return these errors, so the seam is the translator itself."""
    with (
        pytest.raises(error) as caught,
        explained("sagemaker:ListModelPackages", "group g", "deploy it"),
    ):
        raise _client_error(code)
    assert text in str(caught.value)


def test_latest_approved_prints_the_arn_ci_deploys(
    sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    register(sagemaker, 3)
    assert main(["models", "latest-approved", *AWS]) == 3
    assert "has no approved version" in capsys.readouterr().err
    for version in (1, 2):
        assert main(["models", "approve", str(version), *AWS]) == 0
    capsys.readouterr()
    assert main(["models", "latest-approved", *AWS]) == 0
    assert capsys.readouterr().out.strip().endswith(":model-package/mlops-tabular/2")


def serve(client: Any, endpoint: str, package_arn: str, name: str) -> None:
    """What `cdk deploy` of a deploy stack leaves: a model on the package, a config, the endpoint."""
    client.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/endpoint",
        Containers=[{"ModelPackageName": package_arn}],
    )
    client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    if name.endswith("-1"):
        client.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    else:
        client.update_endpoint(EndpointName=endpoint, EndpointConfigName=name)


def test_release_plan_releases_a_new_approval_once(
    sagemaker: Any, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """The release's Plan action: a new approval releases; a state change of the version prod
    already serves (a metadata edit) does not; the planned ARN is the one deployed later."""
    register(sagemaker, 2)
    plan = ["models", "release-plan", "--stage", "prod", "--output", str(tmp_path / "release.env")]
    assert main(plan) == 3  # NotFound: nothing approved yet
    assert "has no approved version" in capsys.readouterr().err

    assert main(["models", "approve", "1", *AWS]) == 0
    capsys.readouterr()
    assert main(plan) == 0
    shown = capsys.readouterr()
    first = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/1"
    assert shown.out == f"MLOPS_RELEASE=yes\nMODEL_PACKAGE_ARN={first}\n"
    assert "mlops-tabular-prod does not exist yet" in shown.err
    assert (tmp_path / "release.env").read_text() == shown.out

    serve(sagemaker, "mlops-tabular-prod", first, "prod-1")  # the release deployed it
    # Approved again with a new description: a state change that fires the release rule (moto's
    # UpdateModelPackage forgets the status when only metadata is given, so it is set too).
    sagemaker.update_model_package(
        ModelPackageArn=first, ModelApprovalStatus="Approved", ApprovalDescription="typo fixed"
    )
    assert main(plan) == 0
    shown = capsys.readouterr()
    assert shown.out.startswith("MLOPS_RELEASE=no\n")
    assert "already serves" in shown.err and "nothing to release" in shown.err

    assert main(["models", "approve", "2", *AWS]) == 0
    capsys.readouterr()
    assert main(plan) == 0
    shown = capsys.readouterr()
    assert shown.out == f"MLOPS_RELEASE=yes\nMODEL_PACKAGE_ARN={first[:-1]}2\n"
    assert f"mlops-tabular-prod is InService on {first}" in shown.err
