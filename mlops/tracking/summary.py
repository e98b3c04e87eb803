"""Experiment tracking's pure half: an execution's facts mapped to one MLflow run's params,
metrics, tags and artifacts (``ExecutionSummary``), the order of the tracking URIs, and the ranking
of logged runs. No files, no clients: ``sources`` gathers the facts, ``client`` talks to MLflow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError
from mlops.home import Home
from sagemaker_jobs.metric_directions import higher_is_better

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXECUTION_TAG = "mlops.execution_id"
COMPLETE_TAG = "mlops.logged"  # set last: a run without it is a failed attempt, replaced on retry
GATE_TAG = "mlops.gate_metric"
HYPERPARAMETER_PREFIX = "hp."
RUN_STATUS = {"Succeeded": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
TRIAL_STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
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
    model: ModelToLog | None = None


@dataclass(frozen=True)
class ModelToLog:
    """The trained model to log as an MLflow model: its ``model.tar.gz`` and the test split
    (Preprocess's output folder) that gives the input example."""

    archive: Path
    test_split: Path


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
def ms(iso: str | None) -> int | None:
    """An ISO 8601 time as MLflow's epoch milliseconds."""
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


def summarize(
    *,
    experiment: str,
    execution_id: str,
    status: str,
    start_ms: int,
    end_ms: int | None,
    parameters: Mapping[str, Any],
    hyperparameters: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None,
    profile: Mapping[str, Any] | None,
    artifacts: Sequence[Path],
    gate_passed: bool | None,
    package: Mapping[str, Any],
    extra_tags: Mapping[str, str],
) -> ExecutionSummary:
    """The one mapping from an execution's facts to MLflow params, metrics, tags and artifacts.

    ``evaluation`` and ``profile`` are the Evaluate step's evaluation.json and the data profile,
    when the execution got that far; ``artifacts`` the files to log with the run."""
    params = {name: str(value)[:_MAX_PARAM] for name, value in parameters.items()}
    params.update(
        {f"{HYPERPARAMETER_PREFIX}{k}": str(v)[:_MAX_PARAM] for k, v in hyperparameters.items()}
    )
    metrics: dict[str, float] = {}
    tags = {
        EXECUTION_TAG: execution_id,
        "mlops.execution_status": status,
        "mlops.project": experiment,  # one experiment per project
        **extra_tags,
    }
    if target := parameters.get("TargetColumn"):
        tags["mlops.target_column"] = str(target)
    if uri := parameters.get("InputDataUri"):
        tags["mlops.dataset_uri"] = str(uri)
    if evaluation is not None:
        for name, entry in evaluation.get("metrics", {}).items():
            value = entry.get("value") if isinstance(entry, dict) else entry
            if isinstance(value, int | float):
                metrics[name] = float(value)
        if gate := evaluation.get("quality_gate", {}).get("metric"):
            tags[GATE_TAG] = str(gate)
        if problem := evaluation.get("problem_type"):
            tags["mlops.problem_type"] = str(problem)
    if profile is not None and (sha := profile.get("dataset", {}).get("sha256")):
        tags["mlops.dataset_sha256"] = str(sha)
    if gate_passed is not None:
        tags["mlops.gate_passed"] = str(gate_passed).lower()
    metadata = package.get("metadata", {})
    if metadata.get("DatasetSha256"):
        tags["mlops.dataset_sha256"] = str(metadata["DatasetSha256"])
    if metadata.get("DatasetUri"):
        tags["mlops.dataset_uri"] = str(metadata["DatasetUri"])
    if metadata.get("CodeVersion"):
        tags["mlops.code_version"] = str(metadata["CodeVersion"])
    if package.get("version") is not None:
        tags["mlops.model_package_version"] = str(package["version"])
        tags["mlops.model_package_arn"] = str(package.get("arn", ""))
    if uri := tags.get("mlops.dataset_uri"):
        tags["mlops.dataset_file"] = uri.rstrip("/").rsplit("/", 1)[-1]
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
        artifacts=list(artifacts),
    )


def trial_summary(
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
        start_ms=ms(trial.get("start_time")) or 0,
        end_ms=ms(trial.get("end_time")),
        params={
            f"{HYPERPARAMETER_PREFIX}{k}": str(v)[:_MAX_PARAM] for k, v in hyperparameters.items()
        },
        metrics=metrics,
        tags=tags,
    )


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


def top_level(tags: Mapping[str, str]) -> bool:
    """An execution's completely logged run (not a tuning trial, not a half-logged attempt);
    runs other tools logged to the experiment count too."""
    if PARENT_TAG in tags:
        return False
    return tags.get(COMPLETE_TAG) == "true" or EXECUTION_TAG not in tags


def rank_runs(
    runs: Sequence[RunView], experiment: str, metric: str | None = None, top: int = 5
) -> Comparison:
    """The experiment's best runs by ``metric`` (default: the runs' quality-gate metric)."""
    runs = [r for r in runs if top_level(r.tags)]
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
