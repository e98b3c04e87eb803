"""`mlops experiments`: log executions to MLflow, list experiments, compare the best runs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from mlops.commands import PROJECT_OPTION, err, flagged, out
from mlops.errors import MlopsError
from mlops.home import Home
from mlops.target import TargetKind, open_target

if TYPE_CHECKING:
    from mlops.executor.records import ExecutionRecord
    from mlops.registry import ModelRegistry
    from mlops.tracking import Comparison, LoggedRun

app = typer.Typer(no_args_is_help=True, help="Experiment tracking with MLflow (local or managed).")


TRACKING_URI_OPTION = typer.Option(
    "--tracking-uri",
    help="MLflow tracking URI or a SageMaker tracking server ARN "
    "(default: MLFLOW_TRACKING_URI, the stage's server, or SQLite under MLOPS_HOME).",
)
STAGE_OPTION = typer.Option(
    "--stage",
    envvar="MLOPS_STAGE",
    help="Stage in cdk.json: its managed tracking server, if it has one.",
)
TARGET_OPTION = typer.Option(
    "--target", help="local (an execution in .mlops) or aws (a SageMaker pipeline execution)."
)


def _tracking_uri(option: str | None, home: Home, stage: str | None) -> str:
    from mlops.tracking import resolve_tracking_uri, stage_tracking_uri

    def from_stage() -> str | None:
        if stage is None:
            return None
        return stage_tracking_uri(stage, account=lambda: _account(stage))

    return resolve_tracking_uri(option, home, stage_uri=from_stage)


def _account(stage: str) -> str:
    from mlops.aws import explained
    from mlops.target import connect

    with explained("sts:GetCallerIdentity"):
        return str(connect(stage).client("sts").get_caller_identity()["Account"])


def _local_pipeline_name(project: str | None) -> str:
    """A project's experiment carries its pipeline's name."""
    from mlops.local import local_settings

    if project:
        return local_settings("unknown", project=project).pipeline_name
    return local_settings(code_version="unknown").pipeline_name


def _logged(run: LoggedRun, execution_id: str) -> str:
    if run.already_logged:
        return f"execution {execution_id} is already logged: MLflow run {run.run_id}"
    again = " (replacing a half-logged earlier attempt)" if run.replaced_partial else ""
    return f"MLflow run {run.run_id} in experiment {run.experiment} at {run.uri}{again}"


def track_local_execution(
    record: ExecutionRecord,
    home: Home,
    registry: ModelRegistry,
    *,
    tracking_uri: str | None,
    experiment: str,
    code_version: str | None,
) -> bool:
    """After `pipeline run`: log the execution; on failure say so, keep it, and tell how to retry.

    Returns whether it was logged. Never raises for a tracking failure: the execution stands."""
    from mlops.store import LocalObjectStore
    from mlops.tracking import TrackingError, log_execution, summarize_local

    try:
        uri = _tracking_uri(tracking_uri, home, None)
        summary = summarize_local(
            record,
            LocalObjectStore(home.store),
            experiment=experiment,
            code_version=code_version,
            registry=registry,
        )
        run = log_execution(summary, uri)
    except MlopsError as exc:
        kind = "Tracking failed" if isinstance(exc, TrackingError) else "Tracking skipped"
        err.print(flagged(f"{kind}:", "yellow", str(exc)))
        err.print(
            f"The execution is kept ({record.status}). Log it later with: "
            f"mlops experiments log {record.execution_id}"
            + (f" --tracking-uri {tracking_uri}" if tracking_uri else "")
        )
        return False
    err.print(f"Tracked:        {_logged(run, record.execution_id)}")
    return True


@app.command("log")
def log(
    execution: Annotated[str, typer.Argument(help="Execution id, 'latest', or (aws) an ARN.")],
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str | None, STAGE_OPTION] = None,
    tracking_uri: Annotated[str | None, TRACKING_URI_OPTION] = None,
    experiment: Annotated[
        str | None, typer.Option(help="Experiment name (default: the project's pipeline name).")
    ] = None,
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """Log one execution (parameters, metrics, tags, evaluation artifacts) as an MLflow run."""
    from mlops.tracking import log_execution, scratch_dir

    home = Home.from_env()
    where = open_target(home, target, stage or "dev", project)
    uri = _tracking_uri(tracking_uri, home, stage or where.stage_name)
    with scratch_dir() as scratch:  # under MLOPS_HOME, as every temporary folder
        summary = where.tracking_summary(execution, Path(scratch), experiment)
        run = log_execution(summary, uri)
    out.print(_logged(run, summary.execution_id))


@app.command("list")
def list_(
    stage: Annotated[str | None, STAGE_OPTION] = None,
    tracking_uri: Annotated[str | None, TRACKING_URI_OPTION] = None,
) -> None:
    """List the experiments of the tracking store, most recently used first."""
    from mlops.tracking import list_experiments

    home = Home.from_env()
    uri = _tracking_uri(tracking_uri, home, stage)
    table = Table("Experiment", "Id", "Runs", "Last run")
    for view in list_experiments(uri):
        if view.name == "Default" and not view.runs:
            continue  # MLflow creates it in every store
        table.add_row(view.name, view.experiment_id, str(view.runs), _when(view.last_run_ms))
    err.print(f"Tracking URI: {uri}")
    out.print(table)


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")[:19]


@app.command("compare")
def compare_(
    experiment: Annotated[
        str | None, typer.Option(help="Experiment name (default: the project's pipeline name).")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Rank by this metric (default: the quality-gate metric).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=50, help="How many runs to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    stage: Annotated[str | None, STAGE_OPTION] = None,
    tracking_uri: Annotated[str | None, TRACKING_URI_OPTION] = None,
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """The best runs side by side: metrics, then the parameters that differ between them."""
    from mlops.tracking import compare

    home = Home.from_env()
    uri = _tracking_uri(tracking_uri, home, stage)
    name = experiment or (
        _stage_pipeline(stage, project) if stage else _local_pipeline_name(project)
    )
    result = compare(uri, name, metric, top)
    if as_json:
        print(
            json.dumps(
                {
                    "experiment": result.experiment,
                    "metric": result.metric,
                    "higher_is_better": result.higher_is_better,
                    "total_runs": result.total_runs,
                    "runs": [run.to_dict() for run in result.runs],
                },
                indent=2,
            )
        )
        return
    if not result.runs:
        out.print(f"Experiment {name} has no runs yet at {uri}")
        return
    out.print(_table(result))
    hidden = _identical_params(result)
    if hidden:
        out.print(f"Same in all {len(result.runs)} runs: " + ", ".join(hidden))
    err.print(f"{result.total_runs} run(s) in {name} at {uri}")


def _stage_pipeline(stage: str, project: str | None) -> str:
    from mlops.aws import Stage

    return Stage.load(stage, project).pipeline_name


def _differs(result: Comparison, key: str) -> bool:
    return len({run.params.get(key) for run in result.runs}) > 1


def _identical_params(result: Comparison) -> list[str]:
    keys = sorted({k for run in result.runs for k in run.params})
    return [f"{k}={result.runs[0].params.get(k)}" for k in keys if not _differs(result, k)]


def _table(result: Comparison) -> Table:
    """Runs as columns (best first), facts as rows: reads well for a handful of runs."""
    from sagemaker_jobs.metric_directions import higher_is_better

    arrow = "↑" if result.higher_is_better else "↓"
    table = Table("", *(f"#{i} {run.name}" for i, run in enumerate(result.runs, 1)))
    runs = result.runs

    def row(label: str | Text, values: list[str] | list[Text]) -> None:
        table.add_row(label, *values)

    row("status", [run.tags.get("mlops.execution_status", run.status) for run in runs])
    row("started", [_when(run.start_ms) for run in runs])
    metrics = sorted(
        {m for run in runs for m in run.metrics}, key=lambda m: (m != result.metric, m)
    )
    for name in metrics:
        values = [run.metrics.get(name) for run in runs]
        present = [v for v in values if v is not None]
        higher = higher_is_better(name)
        best = (max(present) if higher else min(present)) if present else None
        cells = [
            Text(
                "" if v is None else f"{v:.6g}",
                style="bold green" if v is not None and v == best and len(present) > 1 else "",
            )
            for v in values
        ]
        label = f"{name} {arrow} (ranked)" if name == result.metric else name
        row(Text(label, style="bold" if name == result.metric else ""), cells)
    for key in sorted(k for k in {k for run in runs for k in run.params} if _differs(result, k)):
        row(key, [run.params.get(key, "") for run in runs])
    row("gate passed", [run.tags.get("mlops.gate_passed", "") for run in runs])
    if any("mlops.tuning.best_trial" in run.tags for run in runs):
        row("best trial", [run.tags.get("mlops.tuning.best_trial", "") for run in runs])
    row("model version", [run.tags.get("mlops.model_package_version", "") for run in runs])
    row("code version", [run.tags.get("mlops.code_version", "") for run in runs])
    row("dataset sha256", [run.tags.get("mlops.dataset_sha256", "")[:12] for run in runs])
    return table
