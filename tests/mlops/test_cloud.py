"""`mlops data upload` and `mlops pipeline start|executions` against a stage, faked with moto."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.aws import Aws
from mlops.cli import main
from mlops.home import Home

BUCKET = "mlops-dev-data-123456789012-us-east-1"  # moto's account, the dev stage's region
AWS = ["--target", "aws", "--stage", "dev"]


@pytest.fixture
def deployed(aws: Aws, local_definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    import json

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_pipeline(
        PipelineName="mlops-tabular",
        PipelineDefinition=json.dumps(local_definition),
        RoleArn="arn:aws:iam::123456789012:role/mlops-dev-sagemaker-pipeline",
    )
    yield {"s3": s3, "sagemaker": sagemaker}


def test_upload_puts_the_file_under_its_hash_with_metadata(
    deployed: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "churn.csv"
    data.write_text("a,b\n1,2\n")
    assert main(["data", "upload", str(data), *AWS]) == 0
    uri = capsys.readouterr().out.strip()
    assert uri.startswith(f"s3://{BUCKET}/datasets/") and uri.endswith("/churn.csv")
    key = uri.removeprefix(f"s3://{BUCKET}/")
    head = deployed["s3"].head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()


def test_upload_to_a_stage_that_is_not_deployed(
    deployed: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed["s3"].delete_bucket(Bucket=BUCKET)
    (tmp_path / "x.csv").write_text("a\n1\n")
    assert main(["data", "upload", str(tmp_path / "x.csv"), *AWS]) == 3
    assert "mlops-dev-foundation -c stage=dev` creates it" in capsys.readouterr().err


def test_upload_locally_prints_a_local_store_uri(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    assert main(["data", "upload", str(tmp_path / "x.csv")]) == 0
    assert capsys.readouterr().out.startswith("s3://mlops-local/datasets/")


def test_start_checks_parameters_against_the_deployed_definition(
    deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pipeline", "start", "-p", "QualityThreshold=high", "--stage", "dev"]) == 2
    assert "parameter QualityThreshold is Float" in capsys.readouterr().err
    assert (
        main(["pipeline", "start", "-p", "TargetColumn=churned", "-p", "QualityThreshold=0.8"]) == 0
    )
    started = capsys.readouterr().out
    assert (
        "Started arn:aws:sagemaker:us-east-1:123456789012:pipeline/mlops-tabular/execution/"
        in started
    )
    assert main(["pipeline", "executions", *AWS]) == 0
    listed = capsys.readouterr().out
    assert "Succeeded" in listed or "Executing" in listed
    execution = deployed["sagemaker"].list_pipeline_executions(PipelineName="mlops-tabular")[
        "PipelineExecutionSummaries"
    ]
    assert len(execution) == 1


def test_start_on_a_stage_without_its_pipeline(
    deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deployed["sagemaker"].delete_pipeline(PipelineName="mlops-tabular", ClientRequestToken="x" * 32)
    assert main(["pipeline", "start", "--stage", "dev"]) == 3
    assert "mlops-tabular-model-build -c stage=dev` creates it" in capsys.readouterr().err
