"""Model cards and reports of registered versions: the demo run, any local version, and AWS."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.aws import Aws
from mlops.cli import main
from mlops.home import HOME_ENV, Home
from mlops.local import DEMO_DATA
from mlops.model_card.content import CardSources, build_card, render_markdown
from mlops.registry import LocalModelRegistry, ModelPackage
from mlops.store import LocalObjectStore
from sagemaker_jobs.digests import file_sha256
from tests.mlops.conftest import DemoRun

AWS = ["--target", "aws", "--stage", "dev"]
EVALUATION = {
    "problem_type": "classification",
    "test_rows": 52,
    "metrics": {
        "accuracy": {"value": 0.96},
        "f1": {"value": 0.95},
        "roc_auc": {"value": None},  # undefined metrics stay out of the card
    },
    "confusion_matrix": {"labels": ["a", "b"], "matrix": [[25, 1], [1, 25]]},
    "quality_gate": {"metric": "accuracy", "value": 0.96, "threshold": 0.7, "passed": True},
}
PROFILE = {
    "dataset": {"sha256": "ab" * 32, "raw_rows": 344, "rows": 342},
    "problem_type": "classification",
    "target": {"name": "species", "class_counts": {"a": 200, "b": 12}},
    "missing_values": {"x": 3, "y": 0},
    "dropped_columns": {"row_id": "identifier"},
}


def _manifest(model_dir: Path) -> dict[str, Any]:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return {**manifest, "hyperparameters": {"estimator": "random_forest", "n_estimators": 50}}


def _package(**changes: Any) -> ModelPackage:
    fields: dict[str, Any] = {
        "group": "mlops-tabular",
        "version": 3,
        "arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-tabular/3",
        "approval_status": "Approved",
        "created": "2026-11-28T00:00:00+00:00",
        "model_data_url": "s3://artifacts/run-1/model.tar.gz",
        "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops:abc",
        "metrics": EVALUATION,
        "metadata": {
            "DatasetSha256": "ab" * 32,
            "DatasetUri": "s3://data/penguins.csv",
            "PipelineExecutionId": "exec-1",
            "CodeVersion": "c0de",
        },
        "approval_description": "alice: ok",
    }
    return ModelPackage(**{**fields, **changes})


def test_card_has_the_model_card_schema_shape_and_every_fact(model_dir: Path) -> None:
    from sagemaker.core.shapes.model_card_shapes import ModelCardContent

    card = build_card(CardSources(_package(), _manifest(model_dir), "f" * 64, PROFILE))
    # SageMaker's own pydantic shapes of the model card content accept it.
    ModelCardContent.model_validate(card)
    test_metrics = card["evaluation_details"][0]["metric_groups"][0]["metric_data"]
    assert [(m["name"], m["value"]) for m in test_metrics] == [("accuracy", 0.96), ("f1", 0.95)]
    assert "passed" in test_metrics[0]["notes"] and "0.7" in test_metrics[0]["notes"]
    matrix = card["evaluation_details"][0]["metric_groups"][1]["metric_data"][0]
    assert (matrix["type"], matrix["value"]) == ("matrix", [[25, 1], [1, 25]])
    hyper = card["training_details"]["training_job_details"]["hyper_parameters"]
    assert {"name": "n_estimators", "value": "50"} in hyper  # the schema wants strings
    custom = card["additional_information"]["custom_details"]
    assert custom["model_artifact_sha256"] == "f" * 64
    assert (custom["dataset_sha256"], custom["pipeline_execution_id"]) == ("ab" * 32, "exec-1")
    assert "island (categorical)" in custom["features"]
    limits = card["additional_information"]["caveats_and_recommendations"]
    assert "52 held-out rows of one split (one row moves accuracy by 1.9 points)" in limits
    assert "b (12 rows)" in limits
    assert "x (3)" in limits and "y (0)" not in limits and "row_id (identifier)" in limits

    markdown = render_markdown(card)
    for fact in ("ab" * 32, "f" * 64, "exec-1", "c0de", "| n_estimators | 50 |", "alice: ok"):
        assert fact in markdown
    assert "| accuracy | test | 0.96 | Quality gate passed" in markdown
    assert markdown.count("\n- ") >= 4  # the known limits, one bullet each


# a pipeline-registered version, and the commands on it ------------------------------------
@pytest.fixture
def demo(demo_run: DemoRun) -> Home:
    """The session's demo run (`mlops pipeline run` itself is tested in test_pipeline_run,
    which checks that it prints the report and the card); its version 1 is the run's."""
    return demo_run.home


@pytest.mark.slow
def test_card_of_a_run_holds_its_lineage_and_artifact_hash(
    demo: Home, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv(HOME_ENV, str(demo.root))
    assert main(["models", "card", "1", "--format", "json"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == demo.root / "models/local/mlops-tabular/1/model-card.json"
    content = json.loads(path.read_text())
    package = LocalModelRegistry(demo.registry).describe_model_package("mlops-tabular", 1)
    custom = content["additional_information"]["custom_details"]
    archive = LocalObjectStore(demo.store).path_for(package.model_data_url)
    assert custom["model_artifact_sha256"] == file_sha256(archive)
    assert custom["pipeline_execution_id"] == package.metadata["PipelineExecutionId"]
    assert custom["dataset_sha256"] == file_sha256(DEMO_DATA)
    gate = content["evaluation_details"][0]["metadata"]
    assert (gate["gate_threshold"], gate["gate_passed"]) == ("0.7", "True")
    assert main(["models", "card", "1"]) == 0
    markdown = Path(capsys.readouterr().out.strip()).read_text()
    assert file_sha256(DEMO_DATA) in markdown and file_sha256(archive) in markdown


@pytest.mark.slow
def test_models_card_and_report_commands_write_where_asked(
    demo: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv(HOME_ENV, str(demo.root))
    assert main(["models", "card", "1", "--format", "json", "--output", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "model-card.json")
    assert json.loads((tmp_path / "model-card.json").read_text())["model_overview"]["model_version"]
    assert main(["models", "report", "1", "--output", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "report.html")
    assert len(re.findall(r'<img src="data:image/png', (tmp_path / "report.html").read_text())) == 5
    assert main(["models", "card", "1", "--format", "pdf"]) == 2
    assert "use markdown or json" in capsys.readouterr().err
    assert main(["models", "report", "7"]) == 3
    assert "has no version 7" in capsys.readouterr().err


@pytest.mark.slow
def test_a_version_from_before_reports_gets_its_report_rebuilt(
    demo: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(demo.root))
    package = LocalModelRegistry(demo.registry).describe_model_package("mlops-tabular", 1)
    store = LocalObjectStore(demo.store)
    evaluation_dir = store.path_for(package.model_data_url).parents[3] / "evaluate/evaluation"
    report = evaluation_dir / "report.html"
    kept = report.read_bytes()  # the session's run: put back for the tests after this one
    report.unlink()  # as an Evaluate step before reports left it
    try:
        assert main(["models", "report", "1", "--output", str(tmp_path)]) == 0
    finally:
        report.write_bytes(kept)
    html = (tmp_path / "report.html").read_text()
    assert len(re.findall(r'<img src="data:image/png', html)) == 5
    assert "threshold 0.7" in html


# AWS ---------------------------------------------------------------------------------------
@pytest.fixture
def registered(aws: Aws, model_archive: Path) -> Iterator[Any]:
    """A version as the deployed pipeline registers it: package, metrics and files in S3."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    s3.upload_file(str(model_archive), "artifacts", "run-1/model.tar.gz")
    prefix = "pipelines/mlops-tabular/exec-1/evaluate/evaluation"
    for name, body in (
        ("evaluation.json", json.dumps(EVALUATION)),
        ("profile.json", json.dumps(PROFILE)),
        ("report.html", "<html><body>the S3 report</body></html>"),
    ):
        s3.put_object(Bucket="artifacts", Key=f"{prefix}/{name}", Body=body.encode())
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model_package_group(ModelPackageGroupName="mlops-tabular")
    package = _package()
    sagemaker.create_model_package(
        ModelPackageGroupName="mlops-tabular",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": package.image_uri, "ModelDataUrl": package.model_data_url}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://artifacts/{prefix}/evaluation.json",
                }
            }
        },
        CustomerMetadataProperties=package.metadata,
    )
    yield s3, file_sha256(model_archive), prefix


def test_aws_card_and_report_come_from_the_registry_and_s3(
    registered: Any, home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, archive_sha256, prefix = registered
    assert main(["models", "card", "1", "--format", "json", *AWS]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == home.root / "models/aws-dev/mlops-tabular/1/model-card.json"
    card = json.loads(path.read_text())
    custom = card["additional_information"]["custom_details"]
    assert custom["model_artifact_sha256"] == archive_sha256  # streamed from S3 and hashed
    assert custom["code_version"] == "c0de"
    assert "b (12 rows)" in card["additional_information"]["caveats_and_recommendations"]
    assert card["model_package_details"]["model_approval_status"] == "PendingManualApproval"

    assert main(["models", "report", "1", *AWS]) == 0
    report = Path(capsys.readouterr().out.strip())
    assert report.read_text() == "<html><body>the S3 report</body></html>"

    s3.delete_object(Bucket="artifacts", Key=f"{prefix}/report.html")
    assert main(["models", "report", "1", *AWS]) == 3
    assert "registered before the Evaluate step wrote reports" in capsys.readouterr().err


def test_regression_card_names_no_classes_and_no_accuracy(model_dir: Path) -> None:
    evaluation = {
        "problem_type": "regression",
        "test_rows": 40,
        "metrics": {"rmse": {"value": 3.5}, "r2": {"value": 0.8}},
        "quality_gate": {"metric": "r2", "value": 0.8, "threshold": 0.9, "passed": False},
    }
    profile = {**PROFILE, "target": {"name": "mass", "mean": 4200.0, "std": 800.0}}
    manifest = {**_manifest(model_dir), "problem_type": "regression", "target": "mass"}
    card = build_card(CardSources(_package(metrics=evaluation), manifest, "e" * 64, profile))
    groups = card["evaluation_details"][0]["metric_groups"]
    assert [g["name"] for g in groups] == ["test split"]  # no confusion matrix
    assert card["evaluation_details"][0]["evaluation_observation"].startswith("Quality gate failed")
    limits = card["additional_information"]["caveats_and_recommendations"]
    assert "40 held-out rows of one split." in limits and "accuracy" not in limits
    assert "| r2 | test | 0.8 | Quality gate failed: r2 = 0.8" in render_markdown(card)
