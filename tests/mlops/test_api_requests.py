"""The requests a pipeline sends to SageMaker, validated against botocore's service model with
the rules botocore's own validator skips (patterns, lengths, list sizes, enums, ranges)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.api_requests import (
    PlannedRequest,
    check_requests,
    pipeline_requests,
    rejection,
    validate_request,
)
from mlops.cli import main
from mlops.errors import ExecutionFailed, MlopsError
from mlops.executor.records import find_execution
from mlops.executor.runner import LocalPipelineExecutor
from mlops.home import Home
from mlops.local import DEMO_DATA, LOCAL_IMAGE
from mlops.registry import LocalModelRegistry
from mlops.stages import load_context, names, stage_settings
from sagemaker_jobs.pipeline import PipelineSettings, definition_json

STAGES = ("dev", "staging", "prod")


def stage_definition(stage: str) -> dict[str, Any]:
    """A definition built with the stage's settings (tuning, VPC, threshold) as CloudFormation
    resolves it (account values filled in)."""
    settings = stage_settings({**load_context(), "stage": stage})[1]
    network: dict[str, Any] = (
        {"subnets": ("subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719")}
        | {"security_group_ids": ("sg-0a1b2c3d4e5f60718",)}
        if settings.vpc
        else {}
    )
    return json.loads(
        definition_json(
            PipelineSettings(
                pipeline_name=names().pipeline,
                model_package_group=names().model_package_group,
                image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-"
                "assets-123456789012-us-east-1:0123456789abcdef",
                role_arn="arn:aws:iam::123456789012:role/mlops-jobs",
                bucket="mlops-artifacts-123456789012-us-east-1",
                region=settings.region,
                quality_threshold=settings.quality_threshold,
                tuning=settings.tuning,
                code_version="0123456789ab",
                **network,
            )
        )
    )


@pytest.fixture(scope="module")
def definitions() -> dict[str, dict[str, Any]]:
    return {stage: stage_definition(stage) for stage in STAGES}


def planned(definition: dict[str, Any], **parameters: object) -> list[PlannedRequest]:
    return pipeline_requests(definition, parameters)


def test_every_stage_sends_valid_requests_for_every_job_step(
    definitions: dict[str, dict[str, Any]],
) -> None:
    for stage, definition in definitions.items():
        requests = planned(definition)
        assert check_requests(requests) == [], stage
        tunes = stage_settings({**load_context(), "stage": stage})[1].tuning is not None
        train = "CreateHyperParameterTuningJob" if tunes else "CreateTrainingJob"
        assert [(r.step, r.operation) for r in requests] == [
            ("Fingerprint", "CreateProcessingJob"),
            ("Preprocess", "CreateProcessingJob"),
            ("Train", train),
            ("Evaluate", "CreateProcessingJob"),
            ("RegisterModel", "CreateModelPackage"),  # the condition's branch is planned too
        ], stage


def test_requests_hold_parameters_properties_and_plausible_run_time_values(
    definitions: dict[str, dict[str, Any]],
) -> None:
    by_step = {r.step: r.request for r in planned(definitions["dev"], ColumnTypes="a=numeric")}
    preprocess, tuning, register = by_step["Preprocess"], by_step["Train"], by_step["RegisterModel"]
    arguments = preprocess["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--column-types") + 1] == "a=numeric"
    assert preprocess["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1  # typed
    in_vpc = planned(definitions["prod"])[1].request
    assert in_vpc["NetworkConfig"]["VpcConfig"]["Subnets"]
    assert len(tuning["HyperParameterTuningJobName"]) <= 32  # SageMaker's limit for tuning
    # Steps downstream read the earlier steps' properties: outputs, the best trial's model.
    train_uri = tuning["TrainingJobDefinition"]["InputDataConfig"][0]["DataSource"]
    assert (
        train_uri["S3DataSource"]["S3Uri"]
        == (preprocess["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"])
    )
    model_url = register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert tuning["HyperParameterTuningJobName"] in model_url
    assert model_url.endswith("/output/model.tar.gz")
    metadata = register["CustomerMetadataProperties"]
    assert len(metadata["DatasetSha256"]) == 64  # a property file's value, stood in for


def test_a_data_file_name_with_parentheses_fails_registration_before_anything_runs(
    definitions: dict[str, dict[str, Any]],
) -> None:
    uri = "s3://bucket/datasets/0a1b/penguins (v2).csv"
    problems = check_requests(planned(definitions["dev"], InputDataUri=uri))
    assert len(problems) == 1
    assert problems[0].startswith(
        "step RegisterModel (CreateModelPackage): CustomerMetadataProperties['DatasetUri']: "
        f"{uri!r} does not match the pattern"
    )
    assert problems[0].endswith("remove or replace the characters '(' ')'")
    # Spaces are letters of \p{Z}: allowed.
    spaced = "s3://bucket/datasets/0a1b/penguins v2.csv"
    assert check_requests(planned(definitions["dev"], InputDataUri=spaced)) == []
    # The error names the parameter the value came from.
    message = str(rejection(problems, {"InputDataUri": uri}))
    assert "(from parameter InputDataUri)" in message and "nothing was started" in message


def test_an_empty_metadata_value_is_refused() -> None:
    request = {
        "ModelPackageGroupName": "group",
        "CustomerMetadataProperties": {"CodeVersion": "", "a": "b"},
    }
    assert validate_request("CreateModelPackage", request) == [
        "CustomerMetadataProperties['CodeVersion']: '' has 0 characters, fewer than 1; "
        "give a non-empty value"
    ]


def test_container_arguments_are_at_most_256_characters_and_100_items(
    definitions: dict[str, dict[str, Any]],
) -> None:
    long_types = ",".join(f"column_{i}=numeric" for i in range(20))
    assert len(long_types) == 349
    problems = check_requests(planned(definitions["dev"], ColumnTypes=long_types))
    assert problems == [
        "step Preprocess (CreateProcessingJob): AppSpecification.ContainerArguments[5]: "
        f"{repr(long_types)[:57]}... (349 characters) has 349 characters, more than 256; "
        "shorten it to at most 256"
    ]
    request = planned(definitions["dev"])[0].request
    request["AppSpecification"]["ContainerArguments"] = ["--flag"] * 101
    assert validate_request("CreateProcessingJob", request) == [
        "AppSpecification.ContainerArguments: 101 items, more than 100; this list takes at most 100"
    ]


def test_botocore_alone_misses_what_this_validation_catches() -> None:
    """The gap this module closes: botocore's ParamValidator accepts both requests."""
    from botocore.validate import ParamValidator

    from mlops.api_requests import _service_model

    model = _service_model()
    request = {
        "ModelPackageGroupName": "group",
        "CustomerMetadataProperties": {"DatasetUri": "s3://b/penguins (v2).csv"},
    }
    shape = model.operation_model("CreateModelPackage").input_shape
    assert not ParamValidator().validate(request, shape).has_errors()
    assert validate_request("CreateModelPackage", request)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            {"ModelPackageGroupName": "group", "ModelApprovalStatus": "Approve"},
            "ModelApprovalStatus: 'Approve' is not one of ['Approved', 'Rejected', "
            "'PendingManualApproval']; use one of them",
        ),
        (
            {"ModelPackageGroupName": "group", "ModelPackageDescription": "x" * 1025},
            f"ModelPackageDescription: {repr('x' * 1025)[:57]}... "
            "(1025 characters) has 1025 characters, more than 1024; shorten it to at most 1024",
        ),
        (
            {"ModelPackageGroupName": "my_group"},
            "ModelPackageGroupName: 'my_group' does not match the pattern "
            "(arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{12}:[a-z\\-]*\\/)?"
            "([a-zA-Z0-9]([a-zA-Z0-9-]){0,62})(?<!-); remove or replace the characters '_'",
        ),
        (
            {"ModelPackageGroupName": "group", "ModelPackageGroupNam": "x"},
            "ModelPackageGroupNam: not a field of CreateModelPackageInput; remove it or use one of",
        ),
        (
            {"ModelPackageGroupName": "group", "CustomerMetadataProperties": "a=b"},
            "CustomerMetadataProperties: 'a=b' is not a map; give an object of names to values",
        ),
    ],
)
def test_each_rule_names_the_field_the_value_and_the_fix(
    request_: dict[str, Any], expected: str
) -> None:
    problems = validate_request("CreateModelPackage", request_)
    assert len(problems) == 1 and problems[0].startswith(expected)


def test_ranges_types_required_fields_and_map_sizes() -> None:
    request = {
        "ProcessingJobName": "job",
        "AppSpecification": {"ImageUri": "image"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 0, "InstanceType": "ml.m5.large"}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": "3600"},
        "Environment": {f"K{i}": "v" for i in range(101)},
    }
    assert validate_request("CreateProcessingJob", request) == [
        "RoleArn: missing; it is required, add it",
        "ProcessingResources.ClusterConfig.VolumeSizeInGB: missing; it is required, add it",
        "ProcessingResources.ClusterConfig.InstanceCount: 0 is outside 1 to 100; "
        "give a value in that range",
        "StoppingCondition.MaxRuntimeInSeconds: '3600' is not an integer",
        "Environment: 101 entries, more than 100; this map takes at most 100",
    ]


def test_every_pattern_of_the_operations_used_compiles() -> None:
    """Java-style patterns (surrogate pairs, \\p{...}) must all be readable by `regex`."""
    from mlops.api_requests import OPERATIONS, _compiled, _service_model

    seen: set[str] = set()

    def walk(shape: Any) -> None:
        if shape.name in seen:
            return
        seen.add(shape.name)
        if "pattern" in shape.metadata:
            _compiled(shape.metadata["pattern"])
        for inner in getattr(shape, "members", {}).values():
            walk(inner)
        for attribute in ("member", "key", "value"):
            if hasattr(shape, attribute):
                walk(getattr(shape, attribute))

    for operation in [*OPERATIONS.values(), "StartPipelineExecution"]:
        walk(_service_model().operation_model(operation).input_shape)
    assert len(seen) > 200


def test_an_unknown_step_type_or_operation_is_named() -> None:
    definition = {"Parameters": [], "Steps": [{"Name": "L", "Type": "Lambda", "Arguments": {}}]}
    with pytest.raises(MlopsError, match="step L has type Lambda"):
        pipeline_requests(definition, {})
    with pytest.raises(MlopsError, match="no operation 'CreateThing'"):
        validate_request("CreateThing", {})


# Where the checks run: before each local step, and before `pipeline run` / `pipeline start`.
def _processing(name: str, arguments: list[str]) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "RoleArn": "arn:aws:iam::000000000000:role/mlops-local",
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 30,
                }
            },
            "AppSpecification": {
                "ImageUri": LOCAL_IMAGE,
                "ContainerEntrypoint": ["python3", "-c", "print('ran')"],
                "ContainerArguments": arguments,
            },
        },
    }


def test_the_local_executor_fails_the_step_sagemaker_would_refuse(home: Home) -> None:
    first = _processing("First", ["ok"])
    second = _processing("Second", ["x" * 257])
    second["DependsOn"] = ["First"]
    executor = LocalPipelineExecutor(home, LocalModelRegistry(home.registry), image_uri=LOCAL_IMAGE)
    with pytest.raises(ExecutionFailed) as failed:
        executor.run({"Steps": [first, second]}, {})
    assert str(failed.value).startswith(
        "Step Second failed: SageMaker would reject its CreateProcessingJob request: "
        "AppSpecification.ContainerArguments[0]: 'xxx"
    )
    assert str(failed.value).endswith(
        "has 257 characters, more than 256; shorten it to at most 256"
    )
    record = find_execution(home.runs, "latest")
    assert [(s.name, s.status) for s in record.steps] == [
        ("First", "Succeeded"),
        ("Second", "Failed"),
    ]
    assert not (Path(record.run_dir) / "steps" / "Second" / "opt").exists()  # it never started


def test_pipeline_run_refuses_a_data_file_name_before_any_step(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "penguins (v2).csv"
    shutil.copy(DEMO_DATA, data)
    assert main(["pipeline", "run", "--data", str(data), "--target", "species"]) == 2
    message = capsys.readouterr().err
    assert "CustomerMetadataProperties['DatasetUri']" in message
    assert "remove or replace the characters '(' ')'" in message
    assert "(from parameter InputDataUri)" in message
    assert not home.runs.exists() or not any(home.runs.iterdir())  # no execution at all


def test_pipeline_run_refuses_a_column_types_argument_over_256_characters(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    long_types = ",".join(f"column_{i}=numeric" for i in range(20))
    assert main(["pipeline", "run", "--column-types", long_types]) == 2
    message = capsys.readouterr().err
    assert "AppSpecification.ContainerArguments[5]" in message
    assert "(from parameter ColumnTypes)" in message


def test_pipeline_start_refuses_before_starting_an_execution(
    fake_aws_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    local_definition: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from moto import mock_aws

    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_pipeline(
            PipelineName="mlops-tabular",
            PipelineDefinition=json.dumps(local_definition),
            RoleArn="arn:aws:iam::123456789012:role/mlops-dev-sagemaker-pipeline",
        )
        uri = "s3://mlops-dev-data-123456789012-us-east-1/datasets/0a1b/penguins (v2).csv"
        assert main(["pipeline", "start", "-p", f"InputDataUri={uri}", "--stage", "dev"]) == 2
        assert "CustomerMetadataProperties['DatasetUri']" in capsys.readouterr().err
        listed = sagemaker.list_pipeline_executions(PipelineName="mlops-tabular")
        assert listed["PipelineExecutionSummaries"] == []
