"""The pipeline definition: structure, inputs, determinism, and no AWS call while building."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sagemaker_jobs.pipeline import PipelineSettings, definition_json, render_definition

SETTINGS = dict(
    image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops:abc",
    role_arn="arn:aws:iam::123456789012:role/pipeline",
    bucket="artifacts-123456789012",
    region="eu-west-1",
    code_version="0123456789ab",
)


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step["Arguments"].get(branch, []):
                found[inner["Name"]] = inner
    return found


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    return json.loads(definition_json(PipelineSettings(**SETTINGS)))


def test_steps_and_types(built: dict[str, Any]) -> None:
    assert [s["Name"] for s in built["Steps"]] == [
        "Fingerprint",
        "Preprocess",
        "Train",
        "Evaluate",
        "QualityGate",
    ]
    steps = steps_by_name(built)
    assert {n: s["Type"] for n, s in steps.items()} == {
        "Fingerprint": "Processing",
        "Preprocess": "Processing",
        "Train": "Training",
        "Evaluate": "Processing",
        "QualityGate": "Condition",
        "RegisterModel": "RegisterModel",
        "QualityGateFailed": "Fail",
    }


def test_parameters(built: dict[str, Any]) -> None:
    params = {p["Name"]: p for p in built["Parameters"]}
    assert set(params) == {
        "InputDataUri",
        "TargetColumn",
        "ProblemType",
        "ColumnTypes",
        "Estimator",
        "FeatureSelection",
        "ProcessingInstanceType",
        "ProcessingInstanceCount",
        "TrainingInstanceType",
        "QualityMetric",
        "QualityThreshold",
        "ModelApprovalStatus",
    }
    assert params["QualityThreshold"] == {
        "Name": "QualityThreshold",
        "Type": "Float",
        "DefaultValue": 0.7,
    }
    assert params["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"
    assert params["FeatureSelection"]["DefaultValue"] == "rules"  # importance:K is opt-in


def test_one_image_three_roles_and_account_values_are_inputs(built: dict[str, Any]) -> None:
    steps = steps_by_name(built)
    image, role = SETTINGS["image_uri"], SETTINGS["role_arn"]
    pre, train, ev = steps["Preprocess"], steps["Train"], steps["Evaluate"]
    assert pre["Arguments"]["AppSpecification"]["ImageUri"] == image
    assert pre["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "-m",
        "sagemaker_jobs.preprocess",
    ]
    assert (
        ev["Arguments"]["AppSpecification"]["ContainerEntrypoint"][-1] == "sagemaker_jobs.evaluate"
    )
    assert train["Arguments"]["AlgorithmSpecification"]["TrainingImage"] == image
    register = steps["RegisterModel"]["Arguments"]
    assert register["InferenceSpecification"]["Containers"][0]["Image"] == image
    assert {pre["Arguments"]["RoleArn"], train["Arguments"]["RoleArn"]} == {role}
    text = json.dumps(built)
    # Only our bucket, and no uploaded code or local paths anywhere.
    assert text.count("s3://") == text.count(f"s3://{SETTINGS['bucket']}/")
    assert "sourcedir" not in text and "/tmp" not in text and "/work" not in text


def test_quality_gate_tests_the_signed_margin_and_fails_with_its_message(
    built: dict[str, Any],
) -> None:
    # The operator is fixed here while the metric is a run-time parameter: Evaluate writes a
    # margin that is >= 0 when the gate passes, whichever way the metric improves.
    gate = steps_by_name(built)["QualityGate"]["Arguments"]
    (condition,) = gate["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "quality_gate.margin"
    assert condition["RightValue"] == 0.0
    assert [s["Name"] for s in gate["IfSteps"]] == ["RegisterModel"]
    message = gate["ElseSteps"][0]["Arguments"]["ErrorMessage"]
    assert message["Std:JsonGet"]["Path"] == "quality_gate.message"
    evaluate = steps_by_name(built)["Evaluate"]["Arguments"]["AppSpecification"]
    threshold = evaluate["ContainerArguments"][
        evaluate["ContainerArguments"].index("--threshold") + 1
    ]
    assert "Parameters.QualityThreshold" in json.dumps(threshold)  # value and bound: Evaluate's


def test_quality_metric_choices_are_the_gate_table(built: dict[str, Any]) -> None:
    from sagemaker_jobs.metric_directions import GATE_CHOICES

    params = {p["Name"]: p for p in built["Parameters"]}
    assert params["QualityMetric"]["EnumValues"] == list(GATE_CHOICES)
    assert {"balanced_accuracy", "f1_macro", "rmse", "mae"} <= set(GATE_CHOICES)


def test_registration_carries_metrics_and_lineage(built: dict[str, Any]) -> None:
    register = steps_by_name(built)["RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "mlops-tabular"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert (
        register["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"] == "application/json"
    )
    lineage = register["CustomerMetadataProperties"]
    assert lineage["CodeVersion"] == SETTINGS["code_version"]
    assert lineage["DatasetSha256"]["Std:JsonGet"]["Path"] == "dataset.sha256"
    assert lineage["PipelineExecutionId"] == {"Get": "Execution.PipelineExecutionId"}


def test_two_builds_are_byte_identical_across_processes() -> None:
    settings = PipelineSettings(**SETTINGS)
    first = definition_json(settings)  # one build here: the other is another process's
    assert definition_json(settings) is first  # built once per process, then reused
    code = (
        "import json,sys; from sagemaker_jobs.pipeline import PipelineSettings, definition_json;"
        "sys.stdout.write(definition_json(PipelineSettings(**json.loads(sys.argv[1]))))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, json.dumps(SETTINGS)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert other == first


def test_building_makes_no_aws_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.client

    def refuse(self: object, operation: str, params: object) -> None:
        raise AssertionError(f"the builder called AWS: {operation}")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)
    body = render_definition(PipelineSettings(**{**SETTINGS, "bucket": "another-bucket"}))
    assert "s3://another-bucket/" in body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role_arn", "MyRole"),
        ("bucket", ""),
        ("region", "mars"),
        ("processing_instance_type", "m5.large"),
        ("quality_threshold", 1.5),
        ("pipeline_name", "bad name"),
    ],
)
def test_settings_are_validated(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        PipelineSettings(**{**SETTINGS, field: value})


def test_a_definition_built_before_is_read_from_the_cache_until_its_inputs_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagemaker_jobs import pipeline

    settings = PipelineSettings(**SETTINGS)
    built = definition_json(settings)
    monkeypatch.setattr(pipeline, "_built", {})  # a new process: nothing built in memory
    assert definition_json(settings, cache=tmp_path) == built  # built, and written
    (written,) = tmp_path.glob("*.json")

    def no_build(settings: PipelineSettings) -> str:
        raise AssertionError("built again")

    monkeypatch.setattr(pipeline, "render_definition", no_build)
    monkeypatch.setattr(pipeline, "_built", {})
    assert definition_json(settings, cache=tmp_path) == built  # read back, not built
    other = settings.model_copy(update={"code_version": "fedcba987654"})
    with pytest.raises(AssertionError, match="built again"):  # other settings: another key
        definition_json(other, cache=tmp_path)
    # Other code of this package (or another SDK) is another key too.
    monkeypatch.setattr(pipeline, "_built", {})
    source = Path(pipeline.__file__).with_name("tuning.py")
    real_read = Path.read_bytes
    monkeypatch.setattr(
        Path, "read_bytes", lambda p: real_read(p) + (b"# edited" if p == source else b"")
    )
    with pytest.raises(AssertionError, match="built again"):
        definition_json(settings, cache=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [written.name]  # no partial file left


@pytest.mark.parametrize("damage", ["", '{"Version": "2020-12-01", "Ste', "[]"])
def test_a_damaged_cached_definition_is_built_again_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from sagemaker_jobs import pipeline

    settings = PipelineSettings(**SETTINGS)
    built = definition_json(settings)
    monkeypatch.setattr(pipeline, "_built", {})
    definition_json(settings, cache=tmp_path)
    (written,) = tmp_path.glob("*.json")
    written.write_text(damage, encoding="utf-8")  # truncated or edited by hand
    monkeypatch.setattr(pipeline, "_built", {})

    assert definition_json(settings, cache=tmp_path) == built
    assert written.read_text(encoding="utf-8") == built
