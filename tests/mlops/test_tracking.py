"""Experiment tracking: a real local execution logged to MLflow and read back with its client,
a tracking failure that keeps the execution, ranking by metric and direction, the URI order."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from mlops import tracking
from mlops.aws import Aws
from mlops.cli import main
from mlops.executor.records import ExecutionRecord, find_execution
from mlops.home import Home
from mlops.local import DEMO_DATA
from mlops.store import LocalObjectStore
from mlops.tracking import (
    COMPLETE_TAG,
    EXECUTION_TAG,
    ExecutionSummary,
    TrackingError,
    compare,
    local_tracking_uri,
    log_execution,
    resolve_tracking_uri,
)
from tests.mlops.aws_fakes import answer
from tests.mlops.conftest import DemoRun


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


Tracked = tuple[Home, str, str, ExecutionRecord]


@pytest.fixture(scope="module")
def tracked_run(demo_run: DemoRun) -> Iterator[Tracked]:
    """The session's demo run, whose tracking failed (its store's path runs under a file), then
    the printed retry into the home's own store.

    Yields the home, what `pipeline run` printed, what the retry printed, and the execution."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(demo_run.home.root))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        assert demo_run.code == 0, demo_run.out + demo_run.err  # tracking does not fail it
        code, retried = _run(["experiments", "log", demo_run.execution_id])  # the printed retry
        assert code == 0, retried
        yield demo_run.home, demo_run.out + demo_run.err, retried, demo_run.record


def _run(argv: list[str]) -> tuple[int, str]:
    """main() with stdout and stderr captured (capsys is per test; rich prints to sys.std*)."""
    buffer = io.StringIO()
    with redirect_stdout(buffer), redirect_stderr(buffer):
        code = main(argv)
    return code, buffer.getvalue()


@pytest.mark.slow
def test_tracking_failure_keeps_the_execution_and_says_how_to_retry(
    tracked_run: Tracked,
) -> None:
    _, printed, _, record = tracked_run
    assert record.status == "Succeeded"
    assert "Model package:  mlops-tabular version 1" in printed
    assert "Tracking failed: logging execution" in printed and "not-a-folder" in printed
    assert (
        f"The execution is kept (Succeeded). Log it later with: mlops experiments log {record.execution_id} --tracking-uri sqlite:///"
        in " ".join(printed.split())
    )


@pytest.mark.slow
def test_logged_run_holds_params_metrics_tags_and_artifacts(
    tracked_run: Tracked,
) -> None:
    home, _, retried, record = tracked_run
    uri = local_tracking_uri(home)
    assert f"in experiment mlops-tabular at {uri}" in retried
    mlflow = client(uri)
    experiment = mlflow.get_experiment_by_name("mlops-tabular")
    (run,) = mlflow.search_runs([experiment.experiment_id])
    assert run.info.run_name == record.execution_id and run.info.status == "FINISHED"
    params = run.data.params
    assert params["Estimator"] == "gradient_boosting" and params["QualityThreshold"] == "0.7"
    assert params["hp.estimator"] == "gradient_boosting"  # the Train step's hyperparameters
    assert params["InputDataUri"] == record.parameters["InputDataUri"]
    evaluate = next(s for s in record.steps if s.name == "Evaluate").outputs["evaluation"]
    evaluation_dir = LocalObjectStore(home.store).path_for(evaluate)
    evaluation = json.loads((evaluation_dir / "evaluation.json").read_text())
    assert run.data.metrics == {k: v["value"] for k, v in evaluation["metrics"].items()}
    tags = run.data.tags
    assert tags[EXECUTION_TAG] == record.execution_id and tags[COMPLETE_TAG] == "true"
    assert tags["mlops.execution_status"] == "Succeeded"
    assert tags["mlops.gate_metric"] == "accuracy" and tags["mlops.gate_passed"] == "true"
    assert tags["mlops.dataset_sha256"] == hashlib.sha256(DEMO_DATA.read_bytes()).hexdigest()
    assert tags["mlops.model_package_version"] == "1"
    assert (
        tags["mlops.code_version"]
        and tags["mlflow.source.git.commit"] == tags["mlops.code_version"]
    )
    logged = {a.path for a in mlflow.list_artifacts(run.info.run_id)}
    expected = {p.name for p in evaluation_dir.iterdir() if p.is_file()} | {"profile.json"}
    assert "evaluation.json" in logged and logged == expected
    # The artifacts stay under MLOPS_HOME, not in the working directory.
    assert run.info.artifact_uri.startswith((home.root / "mlflow" / "artifacts").as_uri())
    assert tags["mlops.project"] == "mlops-tabular" and tags["mlops.target_column"] == "species"
    assert tags["mlops.dataset_file"] == "penguins.csv"


@pytest.mark.slow
def test_the_run_logs_the_model_that_pyfunc_loads_and_that_predicts_as_served(
    tracked_run: Tracked, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    from sagemaker_jobs import artifacts

    home, _, _, record = tracked_run
    uri = local_tracking_uri(home)
    (run,) = client(uri).search_runs(
        [client(uri).get_experiment_by_name("mlops-tabular").experiment_id]
    )
    with _use_tracking_uri(uri):  # what `runs:/` resolves against
        loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    schema = loaded.metadata.get_input_schema()
    features = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    assert schema is not None and schema.input_names()[:5] == features
    assert (
        dict(zip(schema.input_names(), schema.input_types(), strict=True))["sex"].name == "string"
    )
    rows = pd.read_csv(DEMO_DATA).drop(columns=["species"]).sample(20, random_state=0)
    train = next(s for s in record.steps if s.name == "Train").outputs["ModelArtifacts"]
    archive = LocalObjectStore(home.store).path_for(str(train))
    served, _ = artifacts.load(artifacts.unpack(archive, tmp_path))  # the server's model
    assert list(loaded.predict(rows)) == list(served.predict(rows))


@pytest.mark.slow
def test_logging_again_is_a_no_op_and_a_half_logged_run_is_replaced(
    tracked_run: Tracked, capsys: pytest.CaptureFixture[str]
) -> None:
    home, _, _, record = tracked_run
    uri = local_tracking_uri(home)
    mlflow = client(uri)
    experiment_id = mlflow.get_experiment_by_name("mlops-tabular").experiment_id
    (first,) = mlflow.search_runs([experiment_id])
    assert main(["experiments", "log", record.execution_id]) == 0  # others run in this home
    assert f"already logged: MLflow run {first.info.run_id}" in capsys.readouterr().out
    # A failure mid-way leaves a run without the completion tag: a retry replaces it.
    mlflow.set_tag(first.info.run_id, COMPLETE_TAG, "false")
    summary = tracking.summarize_local(
        record, LocalObjectStore(home.store), experiment="mlops-tabular"
    )
    logged = log_execution(summary, uri)
    assert logged.replaced_partial and logged.run_id != first.info.run_id
    (only,) = mlflow.search_runs([experiment_id])
    assert only.info.run_id == logged.run_id


# Ranking ------------------------------------------------------------------------------------
def summary(
    execution_id: str, metrics: dict[str, float], estimator: str, start: int
) -> ExecutionSummary:
    return ExecutionSummary(
        experiment="ranked",
        execution_id=execution_id,
        status="Succeeded",
        start_ms=start,
        end_ms=start + 1000,
        params={"Estimator": estimator, "QualityThreshold": "0.7"},
        metrics=metrics,
        tags={EXECUTION_TAG: execution_id, "mlops.gate_metric": "r2"},
    )


@pytest.fixture(scope="module")
def ranked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, str]:
    home = Home(tmp_path_factory.mktemp("ranked"))
    uri = local_tracking_uri(home)
    runs = [
        summary("e1", {"r2": 0.71, "rmse": 40.0}, "linear", 1_000),
        summary("e2", {"r2": 0.83, "rmse": 31.0}, "gradient_boosting", 2_000),
        summary("e3", {"r2": 0.79, "rmse": 29.5}, "random_forest", 3_000),
        summary("e4", {}, "linear", 4_000),  # failed before evaluation: no metrics
    ]
    for run in runs:
        log_execution(run, uri)
    return home, uri


def test_compare_ranks_by_the_gate_metric_higher_first(ranked: tuple[Home, str]) -> None:
    _, uri = ranked
    result = compare(uri, "ranked")
    assert result.metric == "r2" and result.higher_is_better
    assert [r.name for r in result.runs] == ["e2", "e3", "e1", "e4"]  # no metric: last
    assert result.total_runs == 4


def test_compare_knows_lower_is_better_for_errors(ranked: tuple[Home, str]) -> None:
    _, uri = ranked
    result = compare(uri, "ranked", metric="rmse", top=2)
    assert not result.higher_is_better
    assert [r.name for r in result.runs] == ["e3", "e2"]


def test_compare_cli_prints_runs_side_by_side_and_json(
    ranked: tuple[Home, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home, _ = ranked
    monkeypatch.setenv("MLOPS_HOME", str(home.root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["experiments", "compare", "--experiment", "ranked", "--top", "3"]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if "#1" in line)
    assert header.index("#1 e2") < header.index("#2 e3") < header.index("#3 e1")
    estimator = next(line for line in table.splitlines() if "Estimator" in line)
    assert [c.strip() for c in estimator.strip("│ ").split("│")] == [
        "Estimator", "gradient_boosting", "random_forest", "linear",
    ]  # fmt: skip
    assert "r2 ↑ (ranked)" in table and "Same in all 3 runs: QualityThreshold=0.7" in table
    assert (
        main(["experiments", "compare", "--experiment", "ranked", "--metric", "rmse", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["metric"] == "rmse" and data["higher_is_better"] is False
    assert [r["execution_id"] for r in data["runs"]] == ["e3", "e2", "e1", "e4"]
    assert data["runs"][0]["params"]["Estimator"] == "random_forest"
    assert main(["experiments", "list"]) == 0
    assert "ranked" in capsys.readouterr().out


def test_compare_explains_an_unknown_metric_or_experiment(ranked: tuple[Home, str]) -> None:
    _, uri = ranked
    with pytest.raises(
        TrackingError, match=r"no run of 'ranked' has metric 'auc'; its runs have r2, rmse"
    ):
        compare(uri, "ranked", metric="auc")
    with pytest.raises(TrackingError, match=r"no experiment 'nope' .* it has .*ranked"):
        compare(uri, "nope")


def test_a_failed_run_is_tracked_with_its_failure(
    ranked: tuple[Home, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Preprocess fails at once on a file without the target: `pipeline run` still logs it."""
    from mlops.local import DEMO_DATA as demo

    _, uri = ranked
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    data = tmp_path / "no-target.csv"
    data.write_text(demo.read_text().replace("species", "kind"))
    argv = ["pipeline", "run", "--data", str(data), "--target", "species", "--track"]
    assert main([*argv, "--tracking-uri", uri]) == 1
    printed = capsys.readouterr().err
    assert "Execution failed: Step Preprocess failed" in printed and "Tracked:" in printed
    record = find_execution(Home.from_env().runs, "latest")
    mlflow = client(uri)
    (run,) = mlflow.search_runs(
        [mlflow.get_experiment_by_name("mlops-tabular").experiment_id],
        filter_string=f"tags.`{EXECUTION_TAG}` = '{record.execution_id}'",
    )
    assert run.info.status == "FAILED" and run.data.metrics == {}
    # Artifacts go beside the SQLite store given, not to ./mlruns of the working directory.
    assert run.info.artifact_uri.startswith((ranked[0].root / "mlflow" / "artifacts").as_uri())
    assert run.data.tags["mlops.failure_reason"] == record.failure_reason
    assert run.data.params["TargetColumn"] == "species"


# Tracking URI -------------------------------------------------------------------------------
def test_tracking_uri_option_then_environment_then_stage_then_local(tmp_path: Path) -> None:
    home = Home(tmp_path)
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/mlops-dev"
    env = {"MLFLOW_TRACKING_URI": "http://mlflow.internal:5000"}
    assert (
        resolve_tracking_uri("sqlite:///x.db", home, stage_uri=lambda: arn, env=env)
        == "sqlite:///x.db"
    )
    assert (
        resolve_tracking_uri(None, home, stage_uri=lambda: arn, env=env)
        == env["MLFLOW_TRACKING_URI"]
    )
    assert resolve_tracking_uri(None, home, stage_uri=lambda: arn, env={}) == arn
    assert resolve_tracking_uri(None, home, stage_uri=lambda: None, env={}) == (
        f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    )


def test_stage_tracking_server_arn_from_cdk_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlops.stages

    context = {
        "stages": {
            "dev": {"region": "eu-west-1"},
            "ml": {"region": "eu-west-1", "mlflow": {"tracking_server": True}},
        }
    }
    monkeypatch.setattr(mlops.stages, "load_context", lambda: context)
    assert tracking.stage_tracking_uri("dev", account="123456789012") is None
    assert tracking.stage_tracking_uri("ml", account=lambda: "123456789012") == (
        "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlops-ml"
    )


def test_a_tracking_server_arn_is_served_and_signed_by_the_sagemaker_mlflow_plugin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No request is made: the plugin's store and signer are resolved, not called."""
    from sagemaker_mlflow.auth_provider import AuthProvider
    from sagemaker_mlflow.mlflow_sagemaker_store import MlflowSageMakerStore

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlops-dev"
    with tracking.client._tracking(arn, "checking the plugin") as mlflow:
        assert isinstance(mlflow._tracking_client.store, MlflowSageMakerStore)
        # The signer reads the process-wide URI: it must be the server's, for its region.
        signer = AuthProvider().get_auth()
        assert (signer.region, signer.sigv4._service_name) == ("eu-west-1", "sagemaker-mlflow")
    assert "MLFLOW_TRACKING_URI" not in os.environ  # restored after the block


def test_an_execution_record_without_evaluation_logs_its_parameters(tmp_path: Path) -> None:
    """A run that failed in preprocess still counts: parameters and its failure reason."""
    home = Home(tmp_path)
    record = ExecutionRecord(
        execution_id="20261128-000000-abcdef",
        pipeline_name="mlops-tabular",
        run_dir=str(home.runs / "20261128-000000-abcdef"),
        parameters={"Estimator": "linear", "QualityThreshold": 0.7},
        status="Failed",
        start_time="2026-11-28T00:00:00.000+00:00",
        end_time="2026-11-28T00:00:02.000+00:00",
        failure_reason="Step Preprocess failed: column 'x' has non-numeric values",
    )
    summary = tracking.summarize_local(record, LocalObjectStore(home.store), experiment="failures")
    assert summary.metrics == {} and summary.artifacts == []
    assert summary.params == {"Estimator": "linear", "QualityThreshold": "0.7"}
    assert summary.tags["mlops.failure_reason"].startswith("Step Preprocess failed")
    assert summary.end_ms is not None and summary.end_ms - summary.start_ms == 2000


# A SageMaker pipeline execution --------------------------------------------------------------
ROLE = "arn:aws:iam::123456789012:role/mlops-dev-sagemaker-jobs"
BUCKET = "mlops-dev-artifacts"


def _sagemaker_execution(client: Any, s3: Any, definition: dict[str, Any]) -> list[dict[str, Any]]:
    """A pipeline run as SageMaker leaves it: jobs, S3 outputs, a registered package; returns
    the steps ListPipelineExecutionSteps would list (moto lacks that call)."""
    s3.create_bucket(Bucket=BUCKET)
    prefix = "pipelines/mlops-tabular/exec1"
    evaluation = {
        "metrics": {"accuracy": {"value": 0.97}, "f1": {"value": 0.96}},
        "quality_gate": {"metric": "accuracy", "value": 0.97},
        "problem_type": "classification",
    }
    s3.put_object(
        Bucket=BUCKET, Key=f"{prefix}/evaluation/evaluation.json", Body=json.dumps(evaluation)
    )
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/evaluation/report.html", Body=b"<html></html>")
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{prefix}/profile/profile.json",
        Body=json.dumps({"dataset": {"sha256": "ab" * 32}}),
    )
    client.create_pipeline(
        PipelineName="mlops-tabular", PipelineDefinition=json.dumps(definition), RoleArn=ROLE
    )
    client.start_pipeline_execution(
        PipelineName="mlops-tabular",
        PipelineParameters=[{"Name": "Estimator", "Value": "random_forest"}],
    )
    common = {"RoleArn": ROLE, "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}
    training = client.create_training_job(
        TrainingJobName="train-exec1",
        AlgorithmSpecification={
            "TrainingImage": "123.dkr.ecr/mlops:abc",
            "TrainingInputMode": "File",
        },
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/{prefix}/train"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        HyperParameters={"estimator": "random_forest", "n_estimators": "300"},
        **common,
    )["TrainingJobArn"]
    jobs = {}
    for name, outputs in (("preprocess", ["profile"]), ("evaluate", ["evaluation"])):
        jobs[name] = client.create_processing_job(
            ProcessingJobName=f"{name}-exec1",
            ProcessingResources={
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 30,
                }
            },
            AppSpecification={"ImageUri": "123.dkr.ecr/mlops:abc"},
            ProcessingOutputConfig={
                "Outputs": [
                    {
                        "OutputName": o,
                        "S3Output": {
                            "S3Uri": f"s3://{BUCKET}/{prefix}/{o}",
                            "LocalPath": f"/opt/ml/processing/{o}",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                    for o in outputs
                ]
            },
            **common,
        )["ProcessingJobArn"]
    client.create_model_package_group(ModelPackageGroupName="mlops-tabular")
    package = client.create_model_package(
        ModelPackageGroupName="mlops-tabular",
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"CodeVersion": "abc123def456", "DatasetSha256": "ab" * 32},
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "123.dkr.ecr/mlops:abc",
                    "ModelDataUrl": f"s3://{BUCKET}/{prefix}/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    return [
        {
            "StepName": "Preprocess",
            "StepStatus": "Succeeded",
            "Metadata": {"ProcessingJob": {"Arn": jobs["preprocess"]}},
        },
        {
            "StepName": "Train",
            "StepStatus": "Succeeded",
            "Metadata": {"TrainingJob": {"Arn": training}},
        },
        {
            "StepName": "Evaluate",
            "StepStatus": "Succeeded",
            "Metadata": {"ProcessingJob": {"Arn": jobs["evaluate"]}},
        },
        {
            "StepName": "QualityGate",
            "StepStatus": "Succeeded",
            "Metadata": {"Condition": {"Outcome": "True"}},
        },
        {
            "StepName": "RegisterModel",
            "StepStatus": "Succeeded",
            "Metadata": {"RegisterModel": {"Arn": package}},
        },
    ]


def test_log_a_sagemaker_execution_from_its_jobs_and_s3(
    aws: Aws,
    local_definition: dict[str, Any],
    ranked: tuple[Home, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, uri = ranked  # another experiment in the same store: a new SQLite store costs a second
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    sagemaker = aws.client("sagemaker")
    steps = _sagemaker_execution(sagemaker, aws.client("s3"), local_definition)
    answer(aws, "ListPipelineExecutionSteps", {"PipelineExecutionSteps": steps})
    args = [
        "experiments",
        "log",
        "latest",
        "--target",
        "aws",
        "--stage",
        "dev",
        "--tracking-uri",
        uri,
    ]
    assert main(args) == 0
    assert f"in experiment mlops-tabular at {uri}" in capsys.readouterr().out
    mlflow = client(uri)
    (run,) = mlflow.search_runs(
        [mlflow.get_experiment_by_name("mlops-tabular").experiment_id],
        filter_string="tags.`mlops.target` = 'aws'",  # the store is shared with other tests
    )
    params, tags = run.data.params, run.data.tags
    assert params["Estimator"] == "random_forest"  # given at start
    assert params["QualityThreshold"] == "0.7"  # the definition's default, filled in
    assert params["hp.n_estimators"] == "300" and params["hp.estimator"] == "random_forest"
    assert run.data.metrics == {"accuracy": 0.97, "f1": 0.96}
    assert tags["mlops.target"] == "aws" and tags["mlops.stage"] == "dev"
    assert tags["mlops.execution_arn"].endswith(f"/execution/{run.info.run_name}")
    assert tags["mlops.gate_passed"] == "true" and tags["mlops.gate_metric"] == "accuracy"
    assert (
        tags["mlops.model_package_version"] == "1" and tags["mlops.code_version"] == "abc123def456"
    )
    assert tags["mlops.dataset_sha256"] == "ab" * 32
    assert {a.path for a in mlflow.list_artifacts(run.info.run_id)} == {
        "evaluation.json",
        "report.html",
        "profile.json",
    }


@pytest.mark.slow
def test_a_cache_hit_takes_its_hyperparameters_from_the_execution_it_reused(
    tracked_run: Tracked,
) -> None:
    home, _, _, first = tracked_run
    again = ExecutionRecord.load(first.path)
    again.execution_id, again.run_dir = "20261128-235959-cached", str(home.runs / "cached")
    for step in again.steps:
        step.cache_hit = first.execution_id  # as the executor records a reused step
    summary = tracking.summarize_local(again, LocalObjectStore(home.store), experiment="x")
    assert summary.params["hp.estimator"] == "gradient_boosting"
    assert summary.metrics and summary.tags["mlops.gate_passed"] == "true"


@pytest.mark.slow
def test_tuning_trials_become_runs_nested_under_the_execution(
    tracked_run: Tracked,
) -> None:
    """A record shaped as the executor writes a Tuning step: trials with their hyperparameters,
    metrics and status; the best one's hyperparameters are the execution's."""
    home, _, _, record = tracked_run
    tuned = ExecutionRecord.load(record.path)
    tuned.execution_id, tuned.run_dir = "20261128-235959-tuned", str(home.runs / "tuned")
    train = next(s for s in tuned.steps if s.name == "Train")
    train.type, train.outputs["BestTrainingJob"] = "Tuning", "train-tuned-002"
    trial = {"start_time": tuned.start_time, "end_time": tuned.end_time, "failure_reason": None}
    train.trials = [
        {**trial, "name": "train-tuned-001", "status": "Completed", "objective": 0.91,
         "hyperparameters": {"learning_rate": "0.3"}, "metrics": {"validation:accuracy": 0.91}},
        {**trial, "name": "train-tuned-002", "status": "Completed", "objective": 0.96,
         "hyperparameters": {"learning_rate": "0.05"}, "metrics": {"validation:accuracy": 0.96}},
        {**trial, "name": "train-tuned-003", "status": "Failed", "objective": None,
         "hyperparameters": {"learning_rate": "9"}, "metrics": {}, "failure_reason": "diverged"},
    ]  # fmt: skip
    uri = local_tracking_uri(home)
    summary = tracking.summarize_local(tuned, LocalObjectStore(home.store), experiment="tuned")
    assert summary.params["hp.learning_rate"] == "0.05"  # the best trial's
    parent = log_execution(summary, uri)
    mlflow = client(uri)
    experiment_id = mlflow.get_experiment_by_name("tuned").experiment_id
    nested = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.run_id}'"
    )
    by_name = {run.info.run_name: run for run in nested}
    assert set(by_name) == {"train-tuned-001", "train-tuned-002", "train-tuned-003"}
    assert by_name["train-tuned-002"].data.metrics == {"validation:accuracy": 0.96}
    assert by_name["train-tuned-001"].data.params == {"hp.learning_rate": "0.3"}
    assert by_name["train-tuned-003"].info.status == "FAILED"
    assert by_name["train-tuned-003"].data.tags["mlops.failure_reason"] == "diverged"
    # Comparing executions leaves the trials out, and names each one's best trial.
    assert [r.run_id for r in compare(uri, "tuned").runs] == [parent.run_id]
    from mlops.commands.experiments import _table

    rendered = io.StringIO()
    Console(file=rendered, width=200).print(_table(compare(uri, "tuned")))
    assert "best trial" in rendered.getvalue() and "train-tuned-002" in rendered.getvalue()


def test_a_sagemaker_tuning_step_logs_its_training_jobs_as_nested_runs(
    aws: Aws,
    local_definition: dict[str, Any],
    ranked: tuple[Home, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tuning calls moto lacks are faked on the client; the rest is moto's."""
    from datetime import UTC, datetime

    _, uri = ranked
    tuning = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/train-exec1"
    when = datetime(2026, 11, 28, tzinfo=UTC)
    jobs = [
        {"TrainingJobName": "train-exec1", "TrainingJobStatus": "Completed",
         "TunedHyperParameters": {"n_estimators": "300"}, "TrainingStartTime": when,
         "TrainingEndTime": when,
         "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:accuracy", "Value": 0.95}},
        {"TrainingJobName": "train-exec1-b", "TrainingJobStatus": "Failed", "FailureReason": "OOM",
         "TunedHyperParameters": {"n_estimators": "5000"}, "TrainingStartTime": when},
    ]  # fmt: skip
    sagemaker = aws.client("sagemaker")
    steps = _sagemaker_execution(sagemaker, aws.client("s3"), local_definition)
    steps[1] = {
        "StepName": "Train",
        "StepStatus": "Succeeded",
        "Metadata": {"TuningJob": {"Arn": tuning}},
    }
    answer(aws, "ListPipelineExecutionSteps", {"PipelineExecutionSteps": steps})
    answer(
        aws,
        "DescribeHyperParameterTuningJob",
        {"BestTrainingJob": {"TrainingJobName": "train-exec1"}},
    )
    answer(aws, "ListTrainingJobsForHyperParameterTuningJob", {"TrainingJobSummaries": jobs})
    with tracking.scratch_dir() as scratch:
        summary = tracking.summarize_cloud(aws, "latest", Path(scratch))
        # its own experiment in the shared store: the other AWS test expects one run in its
        logged = log_execution(replace(summary, experiment="tuned-pipeline"), uri)
    assert summary.params["hp.n_estimators"] == "300"  # the best job's, from DescribeTrainingJob
    assert summary.tags["mlops.tuning.best_trial"] == "train-exec1"
    mlflow = client(uri)
    experiment_id = mlflow.get_experiment_by_name("tuned-pipeline").experiment_id
    nested = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{logged.run_id}'"
    )
    by_name = {run.info.run_name: run for run in nested}
    assert by_name["train-exec1"].data.metrics == {"validation:accuracy": 0.95}
    assert by_name["train-exec1-b"].info.status == "FAILED"
    assert by_name["train-exec1-b"].data.params == {"hp.n_estimators": "5000"}


def test_the_cli_imports_mlflow_only_when_it_logs_or_reads() -> None:
    import subprocess
    import sys

    code = "import sys, mlops.cli, mlops.tracking; print('mlflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
