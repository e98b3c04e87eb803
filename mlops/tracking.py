"""Experiment tracking: one MLflow run per pipeline execution, local or in SageMaker.

An execution (a local record, or a SageMaker pipeline execution) is first summarized into an
``ExecutionSummary`` (parameters, hyperparameters, metrics, tags, artifact files) with no MLflow
involved; ``log_execution`` then writes it as one run of the experiment named after the pipeline.
Logging is idempotent: an execution already logged is not logged twice, and a half-logged run
(a failure mid-way) is replaced. MLflow is imported only here, and only when used: it is slow.

Tracking URI, first found wins: ``--tracking-uri``, ``MLFLOW_TRACKING_URI``, the stage's managed
tracking server (``mlflow.tracking_server`` in cdk.json; its ARN is the URI, which the
``sagemaker-mlflow`` plugin resolves and signs), then a SQLite store under ``MLOPS_HOME``
(MLflow 3's default backend; its file store is in maintenance mode and refuses new stores).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.aws import download_prefix
from mlops.errors import MlopsError
from mlops.executor.records import ExecutionRecord
from mlops.home import Home
from mlops.store import LocalObjectStore
from sagemaker_jobs.metric_directions import higher_is_better

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXECUTION_TAG = "mlops.execution_id"
COMPLETE_TAG = "mlops.logged"  # set last: a run without it is a failed attempt, replaced on retry
GATE_TAG = "mlops.gate_metric"
HYPERPARAMETER_PREFIX = "hp."
_RUN_STATUS = {"Succeeded": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
_TRIAL_STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests such runs under their parent
_MAX_TAG = 5000  # MLflow keeps tag values up to 8000 characters; failure reasons are cut
_MAX_PARAM = 6000  # MLflow's limit for a parameter value


class TrackingError(MlopsError):
    """Logging to or reading from the tracking server failed; the execution itself is intact."""


@dataclass(frozen=True)
class ExecutionSummary:
    """What one execution contributes to its experiment, independent of MLflow."""

    experiment: str
    execution_id: str
    status: str
    start_ms: int
    end_ms: int | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: list[Path] = field(default_factory=list)
    trials: list[ExecutionSummary] = field(default_factory=list)  # tuning trials: nested runs


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment: str
    uri: str
    already_logged: bool = False
    replaced_partial: bool = False


# Tracking URI ---------------------------------------------------------------------------
def local_tracking_uri(home: Home) -> str:
    return f"sqlite:///{home.root / 'mlflow' / 'mlflow.db'}"


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


def resolve_tracking_uri(
    option: str | None,
    home: Home,
    *,
    stage_uri: Any = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """``--tracking-uri``, then MLFLOW_TRACKING_URI, then the stage's server, then local SQLite.

    ``stage_uri`` is a callable giving the stage's URI or None (called only when needed)."""
    env = os.environ if env is None else env
    if option:
        return option
    if env.get(TRACKING_URI_ENV):
        return env[TRACKING_URI_ENV]
    if stage_uri is not None and (uri := stage_uri()):
        return str(uri)
    return local_tracking_uri(home)


# Summaries ------------------------------------------------------------------------------
def _ms(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise TrackingError(f"cannot read {path}: {exc}") from exc


def summarize(
    *,
    experiment: str,
    execution_id: str,
    status: str,
    start_ms: int,
    end_ms: int | None,
    parameters: Mapping[str, Any],
    hyperparameters: Mapping[str, Any],
    evaluation_dir: Path | None,
    profile: Path | None,
    gate_passed: bool | None,
    package: Mapping[str, Any],
    extra_tags: Mapping[str, str],
) -> ExecutionSummary:
    """The one mapping from an execution's facts to MLflow params, metrics, tags and artifacts."""
    params = {name: str(value)[:_MAX_PARAM] for name, value in parameters.items()}
    params.update(
        {f"{HYPERPARAMETER_PREFIX}{k}": str(v)[:_MAX_PARAM] for k, v in hyperparameters.items()}
    )
    metrics: dict[str, float] = {}
    tags = {EXECUTION_TAG: execution_id, "mlops.execution_status": status, **extra_tags}
    artifacts: list[Path] = []
    if evaluation_dir is not None and (evaluation_dir / "evaluation.json").is_file():
        evaluation = _read_json(evaluation_dir / "evaluation.json")
        for name, entry in evaluation.get("metrics", {}).items():
            value = entry.get("value") if isinstance(entry, dict) else entry
            if isinstance(value, int | float):
                metrics[name] = float(value)
        if gate := evaluation.get("quality_gate", {}).get("metric"):
            tags[GATE_TAG] = str(gate)
        if problem := evaluation.get("problem_type"):
            tags["mlops.problem_type"] = str(problem)
        # evaluation.json and whatever the evaluate step wrote beside it (report, model card)
        artifacts.extend(sorted(p for p in evaluation_dir.rglob("*") if p.is_file()))
    if profile is not None and profile.is_file():
        if sha := _read_json(profile).get("dataset", {}).get("sha256"):
            tags["mlops.dataset_sha256"] = str(sha)
        if profile.name not in {p.name for p in artifacts}:  # evaluate may keep a copy already
            artifacts.append(profile)
    if gate_passed is not None:
        tags["mlops.gate_passed"] = str(gate_passed).lower()
    metadata = package.get("metadata", {})
    if metadata.get("DatasetSha256"):
        tags["mlops.dataset_sha256"] = str(metadata["DatasetSha256"])
    if metadata.get("CodeVersion"):
        tags["mlops.code_version"] = str(metadata["CodeVersion"])
    if package.get("version") is not None:
        tags["mlops.model_package_version"] = str(package["version"])
        tags["mlops.model_package_arn"] = str(package.get("arn", ""))
    if code := tags.get("mlops.code_version"):
        tags["mlflow.source.git.commit"] = code  # MLflow's UI shows it as the source version
    return ExecutionSummary(
        experiment=experiment,
        execution_id=execution_id,
        status=status,
        start_ms=start_ms,
        end_ms=end_ms,
        params=params,
        metrics=metrics,
        tags={k: v[:_MAX_TAG] for k, v in tags.items()},
        artifacts=artifacts,
    )


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
                trials.append(_trial(experiment, record.execution_id, trial, tuned))
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
    summary = summarize(
        experiment=experiment,
        execution_id=record.execution_id,
        status=record.status,
        start_ms=_ms(record.start_time) or 0,
        end_ms=_ms(record.end_time),
        parameters=record.parameters,
        hyperparameters=hyperparameters,
        evaluation_dir=store.path_for(evaluation) if evaluation else None,
        profile=store.path_for(profile) / "profile.json" if profile else None,
        gate_passed=gate_passed,
        package=package,
        extra_tags=extra,
    )
    return replace(summary, trials=trials)


def _job_hyperparameters(job_dir: Path, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """What a training job was given (``hyperparameters.json`` in its /opt/ml tree), or else
    what the record holds; SageMaker's own ``_tuning_objective_metric`` is left out."""
    path = job_dir / "opt/ml/input/config/hyperparameters.json"
    found = _read_json(path) if path.is_file() else dict(recorded)
    return {k: v for k, v in found.items() if not k.startswith("_")}


def _trial(
    experiment: str, execution_id: str, trial: Mapping[str, Any], hyperparameters: Mapping[str, Any]
) -> ExecutionSummary:
    """One tuning trial (a training job) as a run nested under its execution's run."""
    tags = {"mlops.parent_execution_id": execution_id, "mlops.trial_status": str(trial["status"])}
    if trial.get("failure_reason"):
        tags["mlops.failure_reason"] = str(trial["failure_reason"])[:_MAX_TAG]
    metrics = {k: float(v) for k, v in (trial.get("metrics") or {}).items()}
    return ExecutionSummary(
        experiment=experiment,
        execution_id=str(trial["name"]),
        status=str(trial["status"]),
        start_ms=_ms(trial.get("start_time")) or 0,
        end_ms=_ms(trial.get("end_time")),
        params={
            f"{HYPERPARAMETER_PREFIX}{k}": str(v)[:_MAX_PARAM] for k, v in hyperparameters.items()
        },
        metrics=metrics,
        tags=tags,
    )


def summarize_cloud(aws: Any, execution: str, scratch: Path) -> ExecutionSummary:
    """A SageMaker pipeline execution: its parameters, the training job's hyperparameters, the
    evaluation and profile its processing jobs wrote to S3 (fetched into ``scratch``), the gate's
    outcome and the registered package."""
    from mlops.aws import explained
    from mlops.cloud import execution_arn, execution_parameters, raw_execution_steps
    from mlops.executor.definition import resolve_parameters

    arn = execution_arn(aws, execution)
    sagemaker = aws.client("sagemaker")
    with explained("sagemaker:DescribePipelineExecution", arn):
        described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    status = described["PipelineExecutionStatus"]
    if status not in _RUN_STATUS:
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
    summary = summarize(
        experiment=aws.stage.pipeline_name,
        execution_id=arn.rsplit("/", 1)[-1],
        status=status,
        start_ms=int(described["CreationTime"].timestamp() * 1000),
        end_ms=int(modified.timestamp() * 1000) if modified else None,
        parameters=resolve_parameters(definition, given),
        hyperparameters=hyperparameters,
        evaluation_dir=evaluation,
        profile=profile / "profile.json" if profile else None,
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
            trials.append(_trial(experiment, execution_id, trial, tuned))
    tags = {"mlops.tuning.best_trial": best, "mlops.tuning.trials": str(len(trials))}
    return hyperparameters, trials, tags


# MLflow ---------------------------------------------------------------------------------
def import_in_background() -> threading.Thread:
    """Import MLflow's client and SQL store while the pipeline's jobs run (child processes, so
    this process is idle): it takes about 2.5 s, which a run would otherwise wait for at the end."""

    def load() -> None:
        with contextlib.suppress(ImportError):  # logging imports it again and reports a failure
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    thread = threading.Thread(target=load, name="mlflow-import", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _tracking(uri: str, action: str) -> Iterator[Any]:
    """An MLflow client for ``uri``; any failure in the block becomes one TrackingError."""
    try:
        from mlflow import MlflowClient
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        # MLflow logs its schema migrations at INFO on first use of a store: not news here.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # The sagemaker-mlflow plugin signs requests for the process-wide tracking URI, not the
        # client's: set it for the block (and restore it, with MLFLOW_TRACKING_URI, after).
        with _use_tracking_uri(uri):
            yield MlflowClient(tracking_uri=uri)
    except MlopsError:
        raise
    except Exception as exc:  # MLflow, SQLAlchemy, HTTP and AWS errors all land here, re-raised
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TrackingError(
            f"{action} at {uri} failed: {type(exc).__name__}: {detail[:500]}"
        ) from exc


def _experiment_id(client: Any, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment {name!r} is deleted at {uri}: restore it (mlflow experiments restore) "
                "or pass another --experiment"
            )
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=_artifact_location(uri, name)))


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Beside a SQLite store, its artifacts: ``<store folder>/artifacts/<experiment>`` (MLflow
    would use ./mlruns of whatever directory the command runs in). A server decides its own."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()
    return (database.parent / "artifacts" / experiment).as_uri()


def _runs_of(client: Any, experiment_id: str, execution_id: str) -> list[Any]:
    return list(
        client.search_runs(
            [experiment_id], filter_string=f"tags.`{EXECUTION_TAG}` = '{execution_id}'"
        )
    )


def log_execution(summary: ExecutionSummary, uri: str) -> LoggedRun:
    """Log one execution as one run; do nothing if it is already logged completely."""
    with _tracking(uri, f"logging execution {summary.execution_id}") as client:
        from mlflow.entities import Metric, Param

        experiment_id = _experiment_id(client, summary.experiment, uri)
        earlier = _runs_of(client, experiment_id, summary.execution_id)
        for run in earlier:
            if run.data.tags.get(COMPLETE_TAG) == "true":
                return LoggedRun(run.info.run_id, summary.experiment, uri, already_logged=True)
        for run in earlier:  # an attempt that failed half-way: start clean, trials too
            for trial in client.search_runs(
                [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{run.info.run_id}'"
            ):
                client.delete_run(trial.info.run_id)
            client.delete_run(run.info.run_id)
        run = client.create_run(
            experiment_id,
            start_time=summary.start_ms,
            tags=summary.tags,
            run_name=summary.execution_id,
        )
        run_id = run.info.run_id
        timestamp = summary.end_ms or summary.start_ms
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, timestamp, 0) for k, v in sorted(summary.metrics.items())],
            params=[Param(k, v) for k, v in sorted(summary.params.items())],
        )
        for path in summary.artifacts:
            client.log_artifact(run_id, str(path))
        for trial in summary.trials:
            nested = client.create_run(
                experiment_id,
                start_time=trial.start_ms,
                tags={**trial.tags, PARENT_TAG: run_id},
                run_name=trial.execution_id,
            ).info.run_id
            client.log_batch(
                nested,
                metrics=[
                    Metric(k, v, trial.end_ms or trial.start_ms, 0)
                    for k, v in trial.metrics.items()
                ],
                params=[Param(k, v) for k, v in sorted(trial.params.items())],
            )
            client.set_terminated(
                nested, _TRIAL_STATUS.get(trial.status, "FAILED"), end_time=trial.end_ms
            )
        client.set_tag(run_id, COMPLETE_TAG, "true")
        client.set_terminated(
            run_id, _RUN_STATUS.get(summary.status, "FAILED"), end_time=summary.end_ms
        )
    return LoggedRun(run_id, summary.experiment, uri, replaced_partial=bool(earlier))


# Reading back ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunView:
    run_id: str
    name: str
    status: str
    start_ms: int
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "execution_id": self.tags.get(EXECUTION_TAG, self.name),
            "status": self.status,
            "start_time": datetime.fromtimestamp(self.start_ms / 1000)
            .astimezone()
            .isoformat(timespec="seconds"),
            "metrics": self.metrics,
            "params": self.params,
            "tags": {k: v for k, v in self.tags.items() if not k.startswith("mlflow.")},
        }


@dataclass(frozen=True)
class Comparison:
    experiment: str
    metric: str
    higher_is_better: bool
    runs: list[RunView]  # best first; runs without the metric last
    total_runs: int


@dataclass(frozen=True)
class ExperimentView:
    experiment_id: str
    name: str
    runs: int
    last_run_ms: int | None


def _top_level(tags: Mapping[str, str]) -> bool:
    """An execution's completely logged run (not a tuning trial, not a half-logged attempt);
    runs other tools logged to the experiment count too."""
    if PARENT_TAG in tags:
        return False
    return tags.get(COMPLETE_TAG) == "true" or EXECUTION_TAG not in tags


def _view(run: Any) -> RunView:
    return RunView(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id,
        status=run.info.status,
        start_ms=int(run.info.start_time or 0),
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
    )


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], max_results=1000, order_by=["start_time DESC"], page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def compare(uri: str, experiment: str, metric: str | None = None, top: int = 5) -> Comparison:
    """The experiment's best runs by ``metric`` (default: the runs' quality-gate metric)."""
    with _tracking(uri, f"reading experiment {experiment!r}") as client:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in client.search_experiments())
            raise TrackingError(
                f"no experiment {experiment!r} at {uri}"
                + (f"; it has {', '.join(names)}" if names else "; run `mlops pipeline run` first")
            )
        runs = [_view(r) for r in _all_runs(client, str(found.experiment_id))]
    runs = [r for r in runs if _top_level(r.tags)]
    if metric is None:
        gates = [r.tags[GATE_TAG] for r in runs if GATE_TAG in r.tags]
        metric = gates[0] if gates else next((m for r in runs for m in sorted(r.metrics)), "")
    if runs and metric and not any(metric in r.metrics for r in runs):
        known = sorted({m for r in runs for m in r.metrics})
        raise TrackingError(
            f"no run of {experiment!r} has metric {metric!r}; its runs have {', '.join(known) or 'no metrics'}"
        )
    higher = higher_is_better(metric)
    with_metric = [r for r in runs if metric in r.metrics]
    with_metric.sort(
        key=lambda r: (-r.metrics[metric] if higher else r.metrics[metric], -r.start_ms)
    )
    without = [r for r in runs if metric not in r.metrics]
    ranked = with_metric + without
    return Comparison(experiment, metric, higher, ranked[:top], len(runs))


def list_experiments(uri: str) -> list[ExperimentView]:
    with _tracking(uri, "listing experiments") as client:
        views = []
        for experiment in client.search_experiments():
            runs = [
                r
                for r in _all_runs(client, str(experiment.experiment_id))
                if _top_level(r.data.tags)
            ]
            views.append(
                ExperimentView(
                    str(experiment.experiment_id),
                    experiment.name,
                    len(runs),
                    max((int(r.info.start_time or 0) for r in runs), default=None),
                )
            )
    return sorted(views, key=lambda v: v.last_run_ms or 0, reverse=True)


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for artifacts fetched from S3 before they are logged."""
    return tempfile.TemporaryDirectory(prefix="mlops-tracking-")
