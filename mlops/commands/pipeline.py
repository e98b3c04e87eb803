"""`mlops pipeline`: build the definition, run it locally, start it in SageMaker, inspect runs."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text

from mlops.commands import (
    DEFAULT_PROJECT,
    PROJECT_OPTION,
    STAGE_OPTION,
    TARGET_OPTION,
    current_home,
    err,
    experiments,
    flagged,
    models,
    out,
    target_for,
)
from mlops.errors import ExecutionFailed, MlopsError
from mlops.executor.records import EXECUTION_FILE, ExecutionRecord, StepRecord
from mlops.home import Home
from mlops.registry import LocalModelRegistry, ModelPackage
from mlops.store import LocalObjectStore
from mlops.target import StepRow, TargetKind
from sagemaker_jobs.contract import JobError

app = typer.Typer(no_args_is_help=True, help="Build, run and inspect the pipeline.")

# Local and AWS listings share their columns, so scripts read both alike.
STEP_COLUMNS = ("Step", "Type", "Status", "Seconds", "Cache hit", "Outputs / failure reason")
EXECUTION_COLUMNS = (
    "Execution",
    "Status",
    "Started",
    "Seconds",
    "Data set",
    "Target",
    "Problem",
    "Failure reason",
)
TUNING_OPTION = typer.Option(
    "--tuning",
    help="Tuning settings (JSON/YAML): the Train step becomes a hyperparameter tuning job.",
)


# pipeline ------------------------------------------------------------------------------
@app.command("definition")
def definition(
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of stdout.")
    ] = None,
    deployed: Annotated[
        bool, typer.Option(help="The stage's deployed definition, and its diff from the local one.")
    ] = False,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    tuning: Annotated[Path | None, TUNING_OPTION] = None,
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """Print the pipeline definition JSON that CDK deploys and `pipeline run` executes."""
    from mlops.local import load_tuning, local_settings
    from sagemaker_jobs.pipeline import definition_json

    if deployed and tuning is None:  # compare like with like: the stage's own tuning
        from mlops.stages import load_context, stage_settings

        tuning_settings = stage_settings({**load_context(), "stage": stage})[1].tuning
    else:
        tuning_settings = load_tuning(tuning) if tuning else None
    body = definition_json(
        local_settings(tuning=tuning_settings, project=project or DEFAULT_PROJECT),
        cache=current_home().definitions,
    )
    if deployed:
        import difflib

        from mlops.cloud import deployed_definition
        from mlops.target import connect_project

        remote = json.dumps(
            deployed_definition(connect_project(stage, project)), indent=2, sort_keys=True
        )
        diff = list(
            difflib.unified_diff(
                body.splitlines(),
                remote.splitlines(),
                "local",
                f"deployed ({stage})",
                lineterm="",
                n=1,
            )
        )
        changed = [d for d in diff if d[:1] in "+-" and d[:3] not in ("+++", "---")]
        err.print(
            f"{len(changed)} changed lines against the local definition "
            "(image, role and bucket always differ: CloudFormation fills them in)"
        )
        if diff:
            err.print("\n".join(diff), markup=False, highlight=False)
        body = remote  # stdout stays one JSON document; the diff went to stderr
    if output:
        output.write_text(body + "\n", encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        print(body)


def _parse_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise MlopsError(
                f"--param {item!r}: write Name=Value, e.g. --param QualityThreshold=0.9"
            )
        params[name.strip()] = value
    return params


HEARTBEAT_ENV = "MLOPS_HEARTBEAT_SECONDS"
HEARTBEAT_SECONDS = 10.0


class ConsoleReporter:
    """Live step progress on the terminal; job logs too with --verbose. Where output is not a
    terminal (CI, notebooks, a pipe), a running step prints a heartbeat line every
    ``heartbeat`` seconds instead of a spinner: step, elapsed time, its last log line."""

    def __init__(
        self,
        console: Console,
        verbose: bool,
        heartbeat: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console, self.verbose = console, verbose
        self.heartbeat, self.clock = heartbeat, clock
        self._status: Status | None = None
        self._beating: tuple[threading.Thread, threading.Event] | None = None
        self._last_line = ""

    def step_started(self, record: StepRecord) -> None:
        self._last_line = ""
        if self.console.is_terminal:
            self._status = self.console.status(Text(f"{record.name} ({record.type}) running..."))
            self._status.start()
            return
        stopped = threading.Event()
        thread = threading.Thread(
            target=self._beat, args=(record.name, stopped), name="heartbeat", daemon=True
        )
        self._beating = (thread, stopped)
        thread.start()

    def _beat(self, step: str, stopped: threading.Event) -> None:
        started = self.clock()
        while not stopped.wait(self.heartbeat):
            last = f": {self._last_line}" if self._last_line else ""
            self.console.print(
                Text(f"... {step} running, {self.clock() - started:.0f}s elapsed{last}")
            )

    def step_finished(self, record: StepRecord) -> None:
        if self._status:
            self._status.stop()
            self._status = None
        if self._beating:
            thread, stopped = self._beating
            stopped.set()
            thread.join()
            self._beating = None
        mark, style = {"Succeeded": ("✓", "green"), "Failed": ("✗", "red")}.get(
            record.status, ("■", "yellow")
        )
        self.console.print(
            flagged(
                mark,
                style,
                f"{record.name:<18} {record.type:<14} {record.status:<10} "
                f"{record.seconds or 0:6.2f}s"
                + (f"  cache hit: reused {record.cache_hit}" if record.cache_hit else ""),
            )
        )
        if record.cache_note:
            self.console.print(flagged("  note:", "yellow", record.cache_note))

    def log_line(self, step: str, line: str) -> None:
        if line.strip():
            self._last_line = line.strip()[:160]
        if self.verbose:
            self.console.print(Text(f"  {step} | {line}", style="dim"), highlight=False)


@app.command("run")
def run(
    data: Annotated[
        Path | None, typer.Option(help="CSV/Parquet file or directory (default: the demo set).")
    ] = None,
    target_column: Annotated[
        str | None,
        typer.Option(
            "--target-column",
            "--target",  # its first name: `pipeline run` is local only, so it cannot clash
            help="Column to predict (required with --data).",
        ),
    ] = None,
    problem_type: Annotated[
        str | None, typer.Option(help="auto, classification or regression.")
    ] = None,
    column_types: Annotated[
        str | None, typer.Option(help="NAME=numeric|categorical|datetime,...")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Pipeline parameter Name=Value (repeatable)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the jobs' own logs.")
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Run every step, even where a cached run would match."),
    ] = False,
    track: Annotated[
        bool,
        typer.Option(
            "--track/--no-track", envvar="MLOPS_TRACK", help="Log the execution to MLflow."
        ),
    ] = True,
    tracking_uri: Annotated[str | None, experiments.TRACKING_URI_OPTION] = None,
    tuning: Annotated[Path | None, TUNING_OPTION] = None,
    project: Annotated[str, PROJECT_OPTION] = DEFAULT_PROJECT,
) -> None:
    """Run the pipeline definition locally: preprocess, train, evaluate, gate, register."""
    from mlops.api_requests import check_pipeline
    from mlops.executor import forked
    from mlops.executor.runner import LocalPipelineExecutor
    from mlops.local import (
        DEMO_DATA,
        DEMO_TARGET,
        LOCAL_IMAGE,
        load_tuning,
        local_settings,
        upload_dataset,
    )
    from sagemaker_jobs.pipeline import definition_json

    overrides = _parse_params(param or [])
    if data is not None and not target_column and "TargetColumn" not in overrides:
        raise MlopsError("--data needs --target-column COLUMN: the name of the column to predict")
    home = current_home()
    store = LocalObjectStore(home.store)
    source = data or DEMO_DATA
    overrides.setdefault("InputDataUri", upload_dataset(store, source))
    for name, value in (
        ("TargetColumn", target_column),
        ("ProblemType", problem_type),
        ("ColumnTypes", column_types),
    ):
        if value is not None:
            overrides[name] = value
    if data is None:
        overrides.setdefault("TargetColumn", DEMO_TARGET)  # the demo's target, unless -p names one
    err.print(f"Building the pipeline definition and running it on {source} ...")
    forked.warm()  # the jobs' fork server imports its libraries while the definition is built
    settings = local_settings(tuning=load_tuning(tuning) if tuning else None, project=project)
    definition = json.loads(definition_json(settings, cache=home.definitions))
    # What SageMaker would refuse only after the paid steps is refused before any step here.
    check_pipeline(definition, overrides, settings.pipeline_name)
    # The store lets the registry see a retrained model identical to a registered one.
    registry = LocalModelRegistry(home.registry, store)
    _check_project(home, registry, settings.model_package_group, overrides)
    executor = LocalPipelineExecutor(
        home,
        registry,
        image_uri=LOCAL_IMAGE,
        reporter=ConsoleReporter(err, verbose, _heartbeat_seconds()),
        use_cache=not no_cache,
    )

    def tracked(record: ExecutionRecord) -> None:
        if track:
            experiments.track_local_execution(
                record,
                home,
                registry,
                tracking_uri=tracking_uri,
                experiment=settings.pipeline_name,
                code_version=settings.code_version,
            )

    if track:
        from mlops.tracking import import_in_background

        import_in_background()
    try:
        record = executor.run(definition, overrides, settings.pipeline_name)
    except ExecutionFailed as exc:
        err.print(flagged("Execution failed:", "red", str(exc)))
        err.print(f"Run directory: {exc.run_dir}  (step logs under steps/<name>/log.txt)")
        if track and exc.exit_code == 1 and exc.run_dir:  # failed, not stopped: metrics count
            tracked(ExecutionRecord.load(Path(exc.run_dir) / EXECUTION_FILE))
        raise typer.Exit(exc.exit_code) from exc
    _print_summary(record, registry, store)
    tracked(record)


def _heartbeat_seconds() -> float:
    raw = os.environ.get(HEARTBEAT_ENV, "")
    try:
        seconds = float(raw) if raw else HEARTBEAT_SECONDS
    except ValueError:
        raise MlopsError(f"{HEARTBEAT_ENV}={raw!r}: give the seconds between heartbeats") from None
    if not 0 < seconds <= HEARTBEAT_SECONDS:
        raise MlopsError(f"{HEARTBEAT_ENV}={raw!r}: use a number of seconds in (0, 10]")
    return seconds


def _check_project(
    home: Home, registry: LocalModelRegistry, project: str, overrides: dict[str, str]
) -> None:
    """Refuse to mix before any job runs: the target (and a problem type given by name) must be
    the project's. A problem type left to auto is checked when the model registers."""
    from mlops.registry.projects import Trained, check_same_kind, of_package

    existing = [of_package(p, home.runs) for p in registry.list_model_packages(project)]
    problem = overrides.get("ProblemType", "auto")
    run = Trained(
        target=overrides.get("TargetColumn", ""),
        problem_type="" if problem == "auto" else problem,
    )
    check_same_kind(project, existing, run)


def _print_summary(
    record: ExecutionRecord, registry: LocalModelRegistry, store: LocalObjectStore
) -> None:
    """Where everything went: run directory, reports, metrics, the registered package."""
    outputs = {step.name: step.outputs for step in record.steps}
    out.print(Text.assemble(f"\nExecution {record.execution_id}: ", (record.status, "green")))
    out.print(f"Run directory:  {record.run_dir}")
    if profile := outputs.get("Preprocess", {}).get("profile"):
        out.print(f"Data profile:   {store.path_for(profile) / 'profile.json'}")
    if evaluation := outputs.get("Evaluate", {}).get("evaluation"):
        out.print(f"Evaluation:     {store.path_for(evaluation) / 'evaluation.json'}")
    arn = outputs.get("RegisterModel", {}).get("ModelPackageArn")
    if not arn:
        return
    group, version = arn.split("/")[-2], int(arn.split("/")[-1])
    package = registry.describe_model_package(group, version)
    if package.metadata.get("PipelineExecutionId") != record.execution_id:
        # The registry found this model's content already registered: nothing new.
        out.print(
            f"Model package:  unchanged: version {version} of {group} "
            f"(model data identical to execution {package.metadata.get('PipelineExecutionId')}'s)"
        )
        out.print(f"Model data:     {store.path_for(package.model_data_url)}")
        return
    gate = package.metrics.get("quality_gate", {})
    out.print(f"Metrics:        {models.metrics_line(package)}")
    out.print(f"Quality gate:   {gate.get('message', gate)}", markup=False)
    if chosen := gate.get("chosen"):  # why this metric: asked for, or the default and why
        out.print(f"Gate metric:    {gate.get('metric')}: {chosen}", markup=False)
    out.print(f"Model package:  {group} version {version} ({package.approval_status})")
    out.print(f"Model data:     {store.path_for(package.model_data_url)}")
    _print_model_docs(package)
    out.print(f"Next:           mlops models approve {version}")


def _print_model_docs(package: ModelPackage) -> None:
    """Every registered version gets its evaluation report and model card beside it."""
    from mlops.model_card import LocalVersionFiles

    files = LocalVersionFiles(current_home(), package)
    try:
        out.print(f"Report:         {files.write_report(None)}")
        files.write_card(None, "json")
        out.print(f"Model card:     {files.write_card(None, 'markdown')} (and model-card.json)")
    except (MlopsError, JobError) as exc:  # the model is registered: say so, do not fail the run
        err.print(
            flagged(
                "Warning:",
                "yellow",
                f"the report or card of version {package.version} was not written: {exc}\n"
                f"  retry with: mlops models report {package.version}; "
                f"mlops models card {package.version}",
            )
        )


@app.command("executions")
def executions(
    limit: Annotated[int, typer.Option(min=1)] = 20,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """List a project's pipeline executions, newest first, with what each trained on."""
    table = Table(*EXECUTION_COLUMNS)
    for row in target_for(target, stage, project).executions(limit):
        table.add_row(
            row.execution_id,
            row.status,
            row.started,
            row.seconds,
            row.dataset or "-",
            row.target or "-",
            row.problem_type or "-",
            row.failure_reason,
        )
    out.print(table)


def _show_steps(execution_id: str, status: str, rows: list[StepRow]) -> None:
    table = Table(*STEP_COLUMNS)
    for row in rows:
        table.add_row(row.name, row.type, row.status, row.seconds, row.cache_hit, row.detail)
    out.print(f"Execution {execution_id}: {status}")
    out.print(table)


@app.command("steps")
def steps(
    execution: Annotated[str, typer.Argument(help="Execution id, or 'latest'.")] = "latest",
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    watch: Annotated[
        bool, typer.Option(help="With --target aws: follow it until it ends.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=1, help="Seconds between polls with --watch.")
    ] = 15,
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """Show an execution's steps like ListPipelineExecutionSteps."""
    target_for(target, stage, project).steps(execution, _show_steps, watch=watch, interval=interval)


@app.command("start")
def pipeline_start(
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Name=Value (repeatable).")
    ] = None,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """Start an execution of the project's deployed pipeline in SageMaker."""
    from mlops.cloud import start_pipeline
    from mlops.target import connect_project

    arn = start_pipeline(connect_project(stage, project), _parse_params(param or []))
    out.print(f"Started {arn}")
    out.print(f"Follow it: mlops pipeline executions --target aws --stage {stage}")


# views: the DAG and the logs of a run --------------------------------------------------------
@app.command("graph")
def graph(
    execution: Annotated[str, typer.Argument(help="Execution id, or 'latest'.")] = "latest",
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """The step DAG with each step's status and duration; writes graph.mmd (Mermaid) beside
    the run's records."""
    from mlops.commands.views import dependencies, tree, write_graph
    from mlops.executor.records import find_execution

    record = find_execution(current_home().runs, execution, project or DEFAULT_PROJECT)
    needs = dependencies(record)
    out.print(tree(record, needs))
    err.print(f"Mermaid graph: {write_graph(record, needs)}")


@app.command("logs")
def logs(
    execution: Annotated[str, typer.Argument(help="Execution id, or 'latest'.")],
    step: Annotated[str | None, typer.Argument(help="Step name (default: every step).")] = None,
    watch: Annotated[
        bool, typer.Option(help="Follow the log while the step (or execution) runs.")
    ] = False,
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """A step's job log (a local run's steps/<name>/log.txt), or every step's in order."""
    import sys

    from mlops.commands.views import follow, step_log
    from mlops.executor.records import find_execution

    runs = current_home().runs
    record = find_execution(runs, execution, project or DEFAULT_PROJECT)

    def running(name: str) -> Callable[[], bool]:
        def still() -> bool:
            again = ExecutionRecord.load(record.path)
            now = next((s for s in again.steps if s.name == name), None)
            return again.status == "Executing" and (now is None or now.status == "Executing")

        return still

    names = (
        [step]
        if step
        else [s.name for s in record.steps if s.log_file and Path(s.log_file).exists()]
    )
    for name in names:
        path = step_log(record, name)
        if not step:
            out.print(Text(f"==> {name} ({path}) <==", style="bold"))
        if watch:
            follow(path, running(name), sys.stdout.write)
        else:
            sys.stdout.write(path.read_text(encoding="utf-8", errors="replace"))
        sys.stdout.flush()
