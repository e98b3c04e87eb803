"""`mlops lineage`: from a model version back to the data hash, locally (two real runs of the
demo pipeline, the second one from the cache) and in AWS (moto, plus a botocore hook for the
one call moto lacks)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from mlops.aws import Aws
from mlops.cli import main
from mlops.endpoints import EndpointRecord
from mlops.executor.records import ExecutionRecord, list_executions
from mlops.home import Home
from mlops.lineage import aws_lineage, local_lineage
from mlops.local import DEMO_DATA, DEMO_TARGET, LOCAL_IMAGE
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore
from sagemaker_jobs.digests import file_sha256
from tests.conftest import offline
from tests.mlops.aws_fakes import answer
from tests.mlops.conftest import DemoRun, run_cli

GROUP = "mlops-tabular"
DATA_SHA256 = file_sha256(DEMO_DATA)


@pytest.fixture(scope="module")
def two_runs(demo_run: DemoRun) -> tuple[Home, ExecutionRecord, ExecutionRecord]:
    """The session's demo run (version 1), then `mlops pipeline run` again in its home with another
    estimator, which registers version 2 (a byte-identical model would register nothing, and
    the only other run there, test_pipeline_run's unreachable threshold, registers nothing):
    Preprocess comes from the first run's cache, Train and Evaluate run anew."""
    home = demo_run.home
    before = {r.execution_id for r in list_executions(home.runs)}
    with pytest.MonkeyPatch.context() as patch:
        offline(patch)
        patch.setenv("MLOPS_HOME", str(home.root))
        code, out, err = run_cli(["pipeline", "run", "-p", "Estimator=linear"])
    assert code == 0, out + err
    (second,) = [r for r in list_executions(home.runs) if r.execution_id not in before]
    return home, demo_run.record, second


def _serve(home: Home, name: str, arn: str) -> None:
    """An endpoint record as `mlops endpoint deploy` writes it (its server is not running)."""
    record = EndpointRecord(
        name=name, pid=4_194_305, port=1, url="http://127.0.0.1:1", group=GROUP, version=0,
        model_package_arn=arn, model_dir="", log_file="", started="", workers=1,
    )  # fmt: skip
    folder = home.root / "endpoints" / name
    folder.mkdir(parents=True)
    (folder / "endpoint.json").write_text(json.dumps(asdict(record)), encoding="utf-8")


@pytest.mark.slow
def test_the_second_run_takes_preprocess_from_the_cache(
    two_runs: tuple[Home, ExecutionRecord, ExecutionRecord],
) -> None:
    home, first, second = two_runs
    hits = {s.name: s.cache_hit for s in second.steps}
    assert hits == {
        "Fingerprint": None,  # uncached: it hashes the data in every execution
        "Preprocess": first.execution_id,  # same data, same arguments
        "Train": None,  # another estimator: a new model
        "Evaluate": None,
        "QualityGate": None,  # conditions and registration are never cached
        "RegisterModel": None,
    }
    registry = LocalModelRegistry(home.registry)
    v1, v2 = (registry.describe_model_package(GROUP, v) for v in (1, 2))
    assert v2.model_data_url != v1.model_data_url
    assert v2.metadata["PipelineExecutionId"] == second.execution_id


@pytest.mark.slow
def test_local_lineage_walks_from_the_version_back_to_the_data_hash(
    two_runs: tuple[Home, ExecutionRecord, ExecutionRecord],
) -> None:
    home, first, second = two_runs
    package = LocalModelRegistry(home.registry).describe_model_package(GROUP, 2)
    _serve(home, "serving-v2", package.arn)
    _serve(home, "serving-v1", package.arn.replace("/2", "/1"))

    found = local_lineage(home, GROUP, 2)

    assert found.execution == second.execution_id
    assert found.parameters == second.parameters and found.parameters["TargetColumn"] == DEMO_TARGET
    assert found.data.sha256 == DATA_SHA256 == package.metadata["DatasetSha256"]
    steps = {s.name: s for s in found.steps}
    assert [s.name for s in found.steps][:4] == ["Fingerprint", "Preprocess", "Train", "Evaluate"]
    assert steps["Preprocess"].cache_hit == first.execution_id
    assert steps["Train"].cache_hit is None
    assert all(steps[n].image == LOCAL_IMAGE and steps[n].code_version for n in steps if n != "QualityGate" and n != "RegisterModel")  # fmt: skip
    # Each hand-off matches by content hash: data -> Preprocess -> Train -> Evaluate, package.
    assert steps["Preprocess"].inputs[0].sha256 == DATA_SHA256
    produced = {o.name: o.sha256 for o in steps["Preprocess"].outputs}
    assert {i.name: i.sha256 for i in steps["Train"].inputs} == {
        "train": produced["train"],
        "validation": produced["validation"],
    }
    model = steps["Train"].outputs[0]
    store = LocalObjectStore(home.store)
    assert model.uri == package.model_data_url
    assert model.sha256 == found.package["model_sha256"]
    assert model.sha256 == file_sha256(store.path_for(package.model_data_url))
    assert steps["Evaluate"].inputs[0].sha256 == model.sha256
    assert [e["name"] for e in found.endpoints] == ["serving-v2"]


@pytest.mark.slow
def test_lineage_command_prints_the_chain_and_json(
    two_runs: tuple[Home, ExecutionRecord, ExecutionRecord],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home, first, second = two_runs
    monkeypatch.setenv("MLOPS_HOME", str(home.root))

    assert main(["lineage", "1"]) == 0
    text = capsys.readouterr().out
    assert f"sha256 {DATA_SHA256}" in text and f"Execution   {first.execution_id}" in text
    assert "Step        Train (Training, Succeeded)" in text and "cache hit" not in text

    assert main(["lineage", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["sha256"] == DATA_SHA256

    assert main(["pipeline", "steps", second.execution_id]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    rows = {line.split("│")[1].strip(): line for line in lines}
    assert first.execution_id in rows["Preprocess"] and first.execution_id not in rows["Train"]


def test_a_version_not_registered_by_the_pipeline_has_no_lineage(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    LocalModelRegistry(home.registry).create_model_package(
        GROUP, model_data_url="s3://b/m.tar.gz", image_uri=LOCAL_IMAGE,
        approval_status="Approved", metrics={}, metadata={}, content_types=[], response_types=[],
    )  # fmt: skip
    assert main(["lineage", "1"]) == 2
    assert "no PipelineExecutionId" in capsys.readouterr().err
    assert main(["lineage", "1", "--target", "mars"]) == 2


# AWS ------------------------------------------------------------------------------------------
REGION, ACCOUNT = "us-east-1", "123456789012"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlops-dev:abc123"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-sagemaker-pipeline"
EXECUTION = "exec42"
RAW = "s3://mlops-dev-data/datasets/0123abcd/penguins.csv"
SPLITS = f"s3://artifacts/pipelines/mlops-tabular/{EXECUTION}/preprocess"
MODEL = f"s3://artifacts/pipelines/mlops-tabular/{EXECUTION}/train/train-1/output/model.tar.gz"


def _deployed(aws: Aws) -> dict[str, Any]:
    """What a SageMaker run leaves: the versioned data object, jobs, the package, endpoints."""
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    s3.create_bucket(Bucket="mlops-dev-data")
    s3.put_bucket_versioning(Bucket="mlops-dev-data", VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(
        Bucket="mlops-dev-data", Key=RAW.split("/", 3)[3], Body=DEMO_DATA.read_bytes(),
        Metadata={"sha256": DATA_SHA256},
    )  # fmt: skip
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key=MODEL.split("/", 3)[3], Body=b"model")
    sm.create_processing_job(
        ProcessingJobName="preprocess-1",
        RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE},
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        ProcessingInputs=[
            {"InputName": "raw", "S3Input": {
                "S3Uri": RAW, "LocalPath": "/opt/ml/processing/input/raw",
                "S3DataType": "S3Prefix", "S3InputMode": "File"}},
        ],
        ProcessingOutputConfig={"Outputs": [
            {"OutputName": "train", "S3Output": {
                "S3Uri": f"{SPLITS}/train", "LocalPath": "/opt/ml/processing/output/train",
                "S3UploadMode": "EndOfJob"}},
        ]},
    )  # fmt: skip
    sm.create_training_job(
        TrainingJobName="train-1",
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"{SPLITS}/train"}}}],
        OutputDataConfig={"S3OutputPath": MODEL.rsplit("/train-1/", 1)[0]},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )  # fmt: skip
    sm.create_pipeline(
        PipelineName="mlops-tabular", RoleArn=ROLE,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [], "Parameters": [
            {"Name": "Estimator", "Type": "String", "DefaultValue": "gradient_boosting"}]}),
    )  # fmt: skip
    execution = sm.start_pipeline_execution(
        PipelineName="mlops-tabular",
        PipelineParameters=[{"Name": "Estimator", "Value": "random_forest"}],
    )["PipelineExecutionArn"]
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    package = sm.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": MODEL}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={
            "PipelineExecutionId": execution.rsplit("/", 1)[-1], "DatasetUri": RAW,
            "DatasetSha256": DATA_SHA256, "CodeVersion": "abc123",
        },
    )["ModelPackageArn"]  # fmt: skip
    for name, container in (
        ("serving", {"ModelPackageName": package}),
        ("other", {"Image": IMAGE, "ModelDataUrl": "s3://artifacts/another/model.tar.gz"}),
    ):
        sm.create_model(
            ModelName=f"{name}-model", ExecutionRoleArn=ROLE, PrimaryContainer=container
        )
        sm.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": f"{name}-model",
                "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        )  # fmt: skip
        sm.create_endpoint(EndpointName=f"{name}-endpoint", EndpointConfigName=f"{name}-config")
    return {"package": package, "data_version": put["VersionId"], "execution": execution}


def test_aws_lineage_walks_from_the_package_to_the_data_version_and_endpoints(aws: Aws) -> None:
    made = _deployed(aws)
    job = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    earlier = f"{job}:pipeline/mlops-tabular/execution/exec41"
    seen = answer(aws, "ListPipelineExecutionSteps", {"PipelineExecutionSteps": [
        {"StepName": "Preprocess", "StepStatus": "Succeeded",
         "Metadata": {"ProcessingJob": {"Arn": f"{job}:processing-job/preprocess-1"}},
         "CacheHitResult": {"SourcePipelineExecutionArn": earlier}},
        {"StepName": "Train", "StepStatus": "Succeeded",
         "Metadata": {"TrainingJob": {"Arn": f"{job}:training-job/train-1"}}},
        {"StepName": "RegisterModel", "StepStatus": "Succeeded",
         "Metadata": {"RegisterModel": {"Arn": made["package"]}}},
    ]})  # fmt: skip

    found = aws_lineage(aws, GROUP, 1)

    assert seen[0]["PipelineExecutionArn"] == made["execution"]
    assert found.parameters == {"Estimator": "random_forest"}
    assert found.data.sha256 == DATA_SHA256
    assert found.data.version_id == made["data_version"] is not None
    steps = {s.name: s for s in found.steps}
    assert steps["Preprocess"].cache_hit == "exec41" and steps["Train"].cache_hit is None
    assert steps["Preprocess"].image == IMAGE and steps["Preprocess"].code_version == "abc123"
    assert [(o.name, o.uri) for o in steps["Preprocess"].outputs] == [("train", f"{SPLITS}/train")]
    assert [(i.name, i.uri) for i in steps["Train"].inputs] == [("train", f"{SPLITS}/train")]
    assert steps["Train"].outputs[0].uri == MODEL == found.package["model_data_url"]
    assert steps["RegisterModel"].job == made["package"]
    assert [e["name"] for e in found.endpoints] == ["serving-endpoint"]


def test_aws_lineage_follows_a_tuning_step_to_its_best_training_job(aws: Aws) -> None:
    _deployed(aws)
    tuning = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/tune-1"
    answer(aws, "ListPipelineExecutionSteps", {"PipelineExecutionSteps": [
        {"StepName": "Tune", "StepStatus": "Succeeded", "Metadata": {"TuningJob": {"Arn": tuning}}},
    ]})  # fmt: skip
    asked = answer(
        aws,
        "DescribeHyperParameterTuningJob",
        {
            "HyperParameterTuningJobName": "tune-1",
            "BestTrainingJob": {"TrainingJobName": "train-1"},
        },
    )

    found = aws_lineage(aws, GROUP, 1)
    (step,) = found.steps
    # no step here read the raw data: its hash is the one the package recorded
    assert (found.data.sha256, found.data.version_id) == (DATA_SHA256, None)

    assert asked == [{"HyperParameterTuningJobName": "tune-1"}]
    assert (step.type, step.job, step.image) == ("Tuning", tuning, IMAGE)
    assert [(i.name, i.uri) for i in step.inputs] == [("train", f"{SPLITS}/train")]
    assert step.outputs[0].uri == MODEL
