"""`mlops monitor baseline|drift --target aws` against moto: the baseline from the model package's
DriftCheckBaselines in S3, captures from the endpoint config's DataCaptureConfig prefix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from mlops.aws import Aws
from mlops.cli import main
from mlops.registry.sagemaker import SageMakerModelRegistry
from sagemaker_jobs import data
from sagemaker_jobs.baseline import write_baseline
from tests.mlops.captures import as_requests, capture, shifted

ROLE = "arn:aws:iam::123456789012:role/mlops-dev-sagemaker-endpoint"
GROUP = "mlops-tabular"
BUCKET = "mlops-dev-artifacts"
BASELINE = f"s3://{BUCKET}/pipelines/mlops-tabular/exec-1/preprocess/baseline"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    from mlops.local import DEMO_DATA

    table, schema = data.prepare(pd.read_csv(DEMO_DATA), data.DataSpec(target="species"))
    train, validation, test = (
        table.iloc[rows] for rows in data.split(table, schema, validation=0.15, test=0.15, seed=42)
    )
    directory = tmp_path_factory.mktemp("baseline")
    write_baseline(directory, train, schema)
    return directory, pd.concat([validation, test])[list(schema.features)]


@pytest.fixture
def stage(aws: Aws, demo: tuple[Path, pd.DataFrame]) -> Iterator[Any]:
    """A deployed stage: the baseline in S3, version 1 registered with it, an endpoint serving
    it with data capture to s3://BUCKET/data-capture."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    key = BASELINE.removeprefix(f"s3://{BUCKET}/")
    for path in demo[0].iterdir():
        s3.put_object(Bucket=BUCKET, Key=f"{key}/{path.name}", Body=path.read_bytes())
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    registry = SageMakerModelRegistry(aws)
    package = registry.create_model_package(
        GROUP,
        model_data_url=f"s3://{BUCKET}/model.tar.gz",
        image_uri="img",
        approval_status="Approved",
        metrics={},
        metadata={},
        content_types=["text/csv"],
        response_types=["application/json"],
        drift_baseline={
            "statistics": f"{BASELINE}/statistics.json",
            "constraints": f"{BASELINE}/constraints.json",
        },
    )
    sagemaker.create_model(
        ModelName="m1", ExecutionRoleArn=ROLE, Containers=[{"ModelPackageName": package.arn}]
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="c1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 20,
            "DestinationS3Uri": f"s3://{BUCKET}/data-capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    )
    sagemaker.create_endpoint(EndpointName="mlops-dev", EndpointConfigName="c1")
    yield s3


def upload_captures(s3: Any, tmp_path: Path, rows: pd.DataFrame) -> None:
    """Capture files as SageMaker writes them: <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/."""
    for path in capture(tmp_path / "capture", as_requests(rows), endpoint="mlops-dev"):
        key = "data-capture/" + path.relative_to(tmp_path / "capture").as_posix()
        s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())


def test_baseline_is_downloaded_from_the_packages_drift_check_baselines(
    stage: Any, demo: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["monitor", "baseline", "1", "--target", "aws", "--output", str(tmp_path / "b")]
    assert main(args) == 0
    assert "(downloaded)" in capsys.readouterr().out
    for name in ("statistics.json", "constraints.json", "schema.json"):
        assert (tmp_path / "b" / name).read_bytes() == (demo[0] / name).read_bytes()
    # What `make ci-deploy` hands to cdk as -c baseline_uri: the registered folder itself.
    assert main(["monitor", "baseline", "1", "--uri", "--target", "aws"]) == 0
    assert capsys.readouterr().out.strip() == BASELINE


def test_drift_reads_the_endpoints_s3_captures(
    stage: Any, demo: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drift = ["monitor", "drift", "--endpoint", "mlops-dev", "--target", "aws", "--stage", "dev"]
    assert main([*drift, "--output", str(tmp_path / "none")]) == 3
    assert "no capture files under s3://mlops-dev-artifacts/data-capture/mlops-dev/" in (
        capsys.readouterr().err
    )

    upload_captures(stage, tmp_path / "normal", demo[1])
    assert main([*drift, "--output", str(tmp_path / "ok")]) == 0
    assert json.loads((tmp_path / "ok" / "constraint_violations.json").read_text()) == {
        "violations": []
    }

    upload_captures(stage, tmp_path / "moved", pd.concat([shifted(demo[1])] * 3))
    assert main([*drift, "--output", str(tmp_path / "drift")]) == 1
    violations = json.loads((tmp_path / "drift" / "constraint_violations.json").read_text())
    assert {v["feature_name"] for v in violations["violations"]} == {"island", "body_mass_g"}
