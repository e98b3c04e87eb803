"""Experiment tracking's sources: an execution's facts gathered from a local run (its record,
its jobs' /opt/ml trees, the object store) or from SageMaker and S3, and the stage's tracking
server from cdk.json. ``summary`` maps the facts to a run; ``client`` logs it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlops.aws import download_prefix
from mlops.errors import MlopsError
from mlops.executor.definition import resolve_parameters
from mlops.executor.records import ExecutionRecord
from mlops.store import LocalObjectStore
from mlops.tracking.summary import (
    RUN_STATUS,
    ExecutionSummary,
    ModelToLog,
    TrackingError,
    ms,
    summarize,
    trial_summary,
)


def stage_tracking_uri(stage: str, account: Any = None) -> str | None:
    """The stage's managed tracking server ARN, if cdk.json turns one on (else None).

    ``account`` is the stage's account id, or a callable returning it (asked only when needed)."""
    from mlops.stages import load_context, stage_settings

    name, settings = stage_settings({**load_context(), "stage": stage})
    if not settings.mlflow.tracking_server:
        return None
    account_id = settings.account or (account() if callable(account) else account)
    if not account_id:
        raise MlopsError(
            f"stage {stage!r} has a tracking server but no account to name it by; "
            "set the stage's account in cdk.json or pass --tracking-uri ARN"
        )
    return settings.mlflow.server_arn(name, settings.region, str(account_id))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise TrackingError(f"cannot read {path}: {exc}") from exc


def _evaluation(
    evaluation_dir: Path | None, profile: Path | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[Path]]:
    """evaluation.json, the data profile, and the files to log: whatever the Evaluate step
    wrote (evaluation, report, model card), then the profile unless Evaluate kept a copy."""
    evaluation: dict[str, Any] | None = None
    artifacts: list[Path] = []
    if evaluation_dir is not None and (evaluation_dir / "evaluation.json").is_file():
        evaluation = _read_json(evaluation_dir / "evaluation.json")
        artifacts.extend(sorted(p for p in evaluation_dir.rglob("*") if p.is_file()))
    found: dict[str, Any] | None = None
    if profile is not None and profile.is_file():
        found = _read_json(profile)
        if profile.name not in {p.name for p in artifacts}:
            artifacts.append(profile)
    return evaluation, found, artifacts


def summarize_local(
    record: ExecutionRecord,
    store: LocalObjectStore,
    *,
    experiment: str,
    code_version: str | None = None,
    registry: Any = None,
) -> ExecutionSummary:
    """A local execution, from its record, its run directory and the object store."""
    outputs: dict[str, Any] = {}
    hyperparameters: dict[str, Any] = {}
    gate_passed: bool | None = None
    trials: list[ExecutionSummary] = []
    extra = {"mlops.target": "local", "mlops.pipeline": experiment}
    for step in record.steps:
        outputs.update(step.outputs)
        # A cache hit ran nothing: the job's files are in the execution it reused.
        step_dir = Path(record.run_dir).parent / (step.cache_hit or record.execution_id)
        step_dir = step_dir / "steps" / step.name
        if step.type == "Training" and step.status == "Succeeded":
            hyperparameters = _job_hyperparameters(step_dir, {})
        if step.type == "Tuning" and step.status == "Succeeded":
            best = str(step.outputs.get("BestTrainingJob", ""))
            for trial in step.trials:
                tuned = _job_hyperparameters(
                    step_dir / "trials" / trial["name"], trial["hyperparameters"]
                )
                if trial["name"] == best:
                    hyperparameters = tuned
                trials.append(trial_summary(experiment, record.execution_id, trial, tuned))
            extra.update({"mlops.tuning.best_trial": best, "mlops.tuning.trials": str(len(trials))})
        if step.type == "Condition" and "Outcome" in step.outputs:
            gate_passed = bool(step.outputs["Outcome"])
    package: dict[str, Any] = {}
    if arn := outputs.get("ModelPackageArn"):
        package = {"arn": arn, "version": outputs.get("ModelPackageVersion")}
        if registry is not None:
            group, version = arn.split("/")[-2], int(arn.split("/")[-1])
            package["metadata"] = registry.describe_model_package(group, version).metadata
    if code_version:
        extra["mlops.code_version"] = code_version
    if record.failure_reason:
        extra["mlops.failure_reason"] = record.failure_reason
    evaluation = outputs.get("evaluation")
    profile = outputs.get("profile")
    model = None
    if outputs.get("ModelArtifacts") and outputs.get("test"):
        model = ModelToLog(
            store.path_for(str(outputs["ModelArtifacts"])), store.path_for(str(outputs["test"]))
        )
    facts = _evaluation(
        store.path_for(evaluation) if evaluation else None,
        store.path_for(profile) / "profile.json" if profile else None,
    )
    summary = summarize(
        experiment=experiment,
        execution_id=record.execution_id,
        status=record.status,
        start_ms=ms(record.start_time) or 0,
        end_ms=ms(record.end_time),
        parameters=record.parameters,
        hyperparameters=hyperparameters,
        evaluation=facts[0],
        profile=facts[1],
        artifacts=facts[2],
        gate_passed=gate_passed,
        package=package,
        extra_tags=extra,
    )
    return replace(summary, trials=trials, model=model)


def _job_hyperparameters(job_dir: Path, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """What a training job was given (``hyperparameters.json`` in its /opt/ml tree), or else
    what the record holds; SageMaker's own ``_tuning_objective_metric`` is left out."""
    path = job_dir / "opt/ml/input/config/hyperparameters.json"
    found = _read_json(path) if path.is_file() else dict(recorded)
    return {k: v for k, v in found.items() if not k.startswith("_")}


def summarize_cloud(aws: Any, execution: str, scratch: Path) -> ExecutionSummary:
    """A SageMaker pipeline execution: its parameters, the training job's hyperparameters, the
    evaluation and profile its processing jobs wrote to S3 (fetched into ``scratch``), the gate's
    outcome and the registered package."""
    from mlops.aws import explained
    from mlops.cloud import execution_arn, execution_parameters, raw_execution_steps

    arn = execution_arn(aws, execution)
    sagemaker = aws.client("sagemaker")
    with explained("sagemaker:DescribePipelineExecution", arn):
        described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    status = described["PipelineExecutionStatus"]
    if status not in RUN_STATUS:
        raise MlopsError(
            f"execution {arn.rsplit('/', 1)[-1]} is {status}; log it once it has ended "
            f"(mlops pipeline steps {arn.rsplit('/', 1)[-1]} --target aws --watch follows it)"
        )
    with explained("sagemaker:DescribePipelineDefinitionForExecution", arn):
        definition = json.loads(
            sagemaker.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)[
                "PipelineDefinition"
            ]
        )
    given = execution_parameters(aws, arn)
    hyperparameters: dict[str, Any] = {}
    outputs: dict[str, str] = {}
    gate_passed: bool | None = None
    package: dict[str, Any] = {}
    trials: list[ExecutionSummary] = []
    tuning: dict[str, str] = {}
    for step in raw_execution_steps(aws, arn):
        if step.get("StepStatus") != "Succeeded":
            continue
        metadata = step.get("Metadata", {})
        if job := metadata.get("TrainingJob", {}).get("Arn"):
            with explained("sagemaker:DescribeTrainingJob", job):
                hyperparameters = sagemaker.describe_training_job(
                    TrainingJobName=job.rsplit("/", 1)[-1]
                ).get("HyperParameters", {})
        if job := metadata.get("TuningJob", {}).get("Arn"):
            hyperparameters, trials, tuning = _cloud_tuning(
                sagemaker, job, aws.stage.pipeline_name, arn.rsplit("/", 1)[-1]
            )
        if job := metadata.get("ProcessingJob", {}).get("Arn"):
            with explained("sagemaker:DescribeProcessingJob", job):
                config = sagemaker.describe_processing_job(
                    ProcessingJobName=job.rsplit("/", 1)[-1]
                ).get("ProcessingOutputConfig", {})
            for output in config.get("Outputs", []):
                outputs[output["OutputName"]] = output["S3Output"]["S3Uri"]
        if "Condition" in metadata:
            gate_passed = str(metadata["Condition"].get("Outcome")).lower() == "true"
        if registered := metadata.get("RegisterModel", {}).get("Arn"):
            with explained("sagemaker:DescribeModelPackage", registered):
                model = sagemaker.describe_model_package(ModelPackageName=registered)
            package = {
                "arn": registered,
                "version": model.get("ModelPackageVersion"),
                "metadata": model.get("CustomerMetadataProperties", {}),
            }
    evaluation = (
        download_prefix(aws, outputs["evaluation"], scratch / "evaluation")
        if "evaluation" in outputs
        else None
    )
    profile = (
        download_prefix(aws, outputs["profile"], scratch / "profile")
        if "profile" in outputs
        else None
    )
    extra = {
        "mlops.target": "aws",
        "mlops.stage": aws.stage.name,
        "mlops.pipeline": aws.stage.pipeline_name,
        "mlops.execution_arn": arn,
    }
    if reason := described.get("FailureReason"):
        extra["mlops.failure_reason"] = reason
    extra.update(tuning)
    modified = described.get("LastModifiedTime")
    facts = _evaluation(evaluation, profile / "profile.json" if profile else None)
    summary = summarize(
        experiment=aws.stage.pipeline_name,
        execution_id=arn.rsplit("/", 1)[-1],
        status=status,
        start_ms=int(described["CreationTime"].timestamp() * 1000),
        end_ms=int(modified.timestamp() * 1000) if modified else None,
        parameters=resolve_parameters(definition, given),
        hyperparameters=hyperparameters,
        evaluation=facts[0],
        profile=facts[1],
        artifacts=facts[2],
        gate_passed=gate_passed,
        package=package,
        extra_tags=extra,
    )
    return replace(summary, trials=trials)


def _cloud_tuning(
    sagemaker: Any, arn: str, experiment: str, execution_id: str
) -> tuple[dict[str, Any], list[ExecutionSummary], dict[str, str]]:
    """A TuningStep's job: the best training job's hyperparameters, every training job as a
    trial, and tags naming the best one."""
    from mlops.aws import explained

    name = arn.rsplit("/", 1)[-1]
    with explained("sagemaker:DescribeHyperParameterTuningJob", arn):
        described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    best = described.get("BestTrainingJob", {}).get("TrainingJobName", "")
    hyperparameters: dict[str, Any] = {}
    if best:
        with explained("sagemaker:DescribeTrainingJob", best):
            given = sagemaker.describe_training_job(TrainingJobName=best).get("HyperParameters", {})
        hyperparameters = {k: v for k, v in given.items() if not k.startswith("_")}
    trials = []
    operation = "list_training_jobs_for_hyper_parameter_tuning_job"
    with explained("sagemaker:ListTrainingJobsForHyperParameterTuningJob", arn):
        pages = list(sagemaker.get_paginator(operation).paginate(HyperParameterTuningJobName=name))
    for page in pages:
        for job in page["TrainingJobSummaries"]:
            objective = job.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
            trial = {
                "name": job["TrainingJobName"],
                "status": job.get("TrainingJobStatus", ""),
                "start_time": job["TrainingStartTime"].isoformat()
                if job.get("TrainingStartTime")
                else None,
                "end_time": job["TrainingEndTime"].isoformat()
                if job.get("TrainingEndTime")
                else None,
                "failure_reason": job.get("FailureReason"),
                "metrics": {objective["MetricName"]: objective["Value"]} if objective else {},
            }
            tuned = job.get("TunedHyperParameters", {})
            trials.append(trial_summary(experiment, execution_id, trial, tuned))
    tags = {"mlops.tuning.best_trial": best, "mlops.tuning.trials": str(len(trials))}
    return hyperparameters, trials, tags


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for artifacts fetched from S3 before they are logged."""
    return tempfile.TemporaryDirectory(prefix="mlops-tracking-")
