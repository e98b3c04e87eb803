"""The ``mlops`` command. Thin: parse, call the core, print; errors become exit codes in ``main``."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Column, Table

from mlops.commands import DEFAULT_GROUP, GROUP_OPTION, STAGE_OPTION, TARGET_OPTION, experiments
from mlops.commands import lineage as lineage_commands
from mlops.commands import monitor as monitor_commands
from mlops.endpoints import LocalEndpoints
from mlops.errors import ExecutionFailed, MlopsError, NotFound
from mlops.executor.records import (
    EXECUTION_FILE,
    ExecutionRecord,
    StepRecord,
    find_execution,
    list_executions,
)
from mlops.home import Home
from mlops.registry import LocalModelRegistry, ModelPackage, ModelRegistry
from mlops.store import LocalObjectStore
from sagemaker_jobs.contract import JobError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
pipeline_app = typer.Typer(no_args_is_help=True, help="Build, run and inspect the pipeline.")
models_app = typer.Typer(no_args_is_help=True, help="The model registry.")
app.add_typer(pipeline_app, name="pipeline")
data_app = typer.Typer(no_args_is_help=True, help="Data sets: upload for a pipeline run.")
app.add_typer(data_app, name="data")
endpoint_app = typer.Typer(no_args_is_help=True, help="Local endpoints running the model server.")
app.add_typer(models_app, name="models")
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(experiments.app, name="experiments", no_args_is_help=True)
app.add_typer(monitor_commands.app, name="monitor", no_args_is_help=True)
app.command("lineage")(lineage_commands.lineage)

# Piped output (logs, CI, README captures) is not cut to 80 columns.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)
# Local and AWS listings share their columns, so scripts read both alike.
STEP_COLUMNS = ("Step", "Type", "Status", "Seconds", "Cache hit", "Outputs / failure reason")
EXECUTION_COLUMNS = ("Execution", "Status", "Started", "Seconds", "Failure reason")
TUNING_OPTION = typer.Option(
    "--tuning",
    help="Tuning settings (JSON/YAML): the Train step becomes a hyperparameter tuning job.",
)


def _status_column() -> Column:  # a fresh one per table: a Column holds its table's cells
    return Column("Status", no_wrap=True, min_width=len("PendingManualApproval"))


def _home() -> Home:
    return Home.from_env()


# pipeline ------------------------------------------------------------------------------
@pipeline_app.command("definition")
def definition(
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of stdout.")
    ] = None,
    deployed: Annotated[
        bool, typer.Option(help="The stage's deployed definition, and its diff from the local one.")
    ] = False,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    tuning: Annotated[Path | None, TUNING_OPTION] = None,
) -> None:
    """Print the pipeline definition JSON that CDK deploys and `pipeline run` executes."""
    from mlops.local import load_tuning, local_settings
    from sagemaker_jobs.pipeline import definition_json

    if deployed and tuning is None:  # compare like with like: the stage's own tuning
        from infra.settings import load_context, stage_settings

        tuning_settings = stage_settings({**load_context(), "stage": stage})[1].tuning
    else:
        tuning_settings = load_tuning(tuning) if tuning else None
    body = definition_json(local_settings(tuning=tuning_settings))
    if deployed:
        import difflib

        from mlops.cloud import deployed_definition

        remote = json.dumps(deployed_definition(_aws(stage)), indent=2, sort_keys=True)
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


class ConsoleReporter:
    """Live step progress on the terminal; job logs too with --verbose."""

    def __init__(self, console: Console, verbose: bool) -> None:
        self.console, self.verbose = console, verbose
        self._status: Status | None = None

    def step_started(self, record: StepRecord) -> None:
        self._status = self.console.status(f"{record.name} ({record.type}) running...")
        self._status.start()

    def step_finished(self, record: StepRecord) -> None:
        if self._status:
            self._status.stop()
        mark = {"Succeeded": "[green]✓[/]", "Failed": "[red]✗[/]"}.get(
            record.status, "[yellow]■[/]"
        )
        self.console.print(
            f"{mark} {record.name:<18} {record.type:<14} {record.status:<10} {record.seconds or 0:6.2f}s"
            + (f"  cache hit: reused {record.cache_hit}" if record.cache_hit else "")
        )

    def log_line(self, step: str, line: str) -> None:
        if self.verbose:
            self.console.print(f"[dim]  {step} | {line}[/]", markup=True, highlight=False)


@pipeline_app.command("run")
def run(
    data: Annotated[
        Path | None, typer.Option(help="CSV/Parquet file or directory (default: the demo set).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Column to predict (required with --data).")
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
) -> None:
    """Run the pipeline definition locally: preprocess, train, evaluate, gate, register."""
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
    if data is not None and not target and "TargetColumn" not in overrides:
        raise MlopsError("--data needs --target COLUMN: the name of the column to predict")
    home = _home()
    store = LocalObjectStore(home.store)
    source = data or DEMO_DATA
    overrides.setdefault("InputDataUri", upload_dataset(store, source))
    for name, value in (
        ("TargetColumn", target),
        ("ProblemType", problem_type),
        ("ColumnTypes", column_types),
    ):
        if value is not None:
            overrides[name] = value
    if data is None:
        overrides.setdefault("TargetColumn", DEMO_TARGET)  # the demo's target, unless -p names one
    err.print(f"Building the pipeline definition and running it on {source} ...")
    settings = local_settings(tuning=load_tuning(tuning) if tuning else None)
    definition = json.loads(definition_json(settings))
    registry = LocalModelRegistry(home.registry)
    executor = LocalPipelineExecutor(
        home,
        registry,
        image_uri=LOCAL_IMAGE,
        reporter=ConsoleReporter(err, verbose),
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
        err.print(f"[red]Execution failed:[/] {exc}")
        err.print(f"Run directory: {exc.run_dir}  (step logs under steps/<name>/log.txt)")
        if track and exc.exit_code == 1 and exc.run_dir:  # failed, not stopped: metrics count
            tracked(ExecutionRecord.load(Path(exc.run_dir) / EXECUTION_FILE))
        raise typer.Exit(exc.exit_code) from exc
    _print_summary(record, registry, store)
    tracked(record)


def _print_summary(
    record: ExecutionRecord, registry: LocalModelRegistry, store: LocalObjectStore
) -> None:
    """Where everything went: run directory, reports, metrics, the registered package."""
    outputs = {step.name: step.outputs for step in record.steps}
    out.print(f"\nExecution {record.execution_id}: [green]{record.status}[/]")
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
    gate = package.metrics.get("quality_gate", {})
    out.print(f"Metrics:        {_metrics_line(package)}")
    out.print(
        f"Quality gate:   {gate.get('metric')} = {gate.get('value')} "
        f">= {record.parameters.get('QualityThreshold')}"
    )
    out.print(f"Model package:  {group} version {version} ({package.approval_status})")
    out.print(f"Model data:     {store.path_for(package.model_data_url)}")
    _print_model_docs(package)
    out.print(f"Next:           mlops models approve {version}")


def _print_model_docs(package: ModelPackage) -> None:
    """Every registered version gets its evaluation report and model card beside it."""
    from mlops.model_card import LocalVersionFiles

    files = LocalVersionFiles(_home(), package)
    try:
        out.print(f"Report:         {files.write_report(None)}")
        files.write_card(None, "json")
        out.print(f"Model card:     {files.write_card(None, 'markdown')} (and model-card.json)")
    except (MlopsError, JobError) as exc:  # the model is registered: say so, do not fail the run
        err.print(
            f"[yellow]Warning:[/] the report or card of version {package.version} was not "
            f"written: {exc}\n  retry with: mlops models report {package.version}; "
            f"mlops models card {package.version}"
        )


def _metrics_line(package: ModelPackage) -> str:
    metrics = package.metrics.get("metrics", {})
    return ", ".join(f"{k}={v.get('value')}" for k, v in metrics.items()) or "-"


@pipeline_app.command("executions")
def executions(
    limit: Annotated[int, typer.Option(min=1)] = 20,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """List pipeline executions, newest first."""
    if target == "aws":
        from mlops.cloud import list_executions as cloud_executions

        table = Table(*EXECUTION_COLUMNS)
        for execution in cloud_executions(_aws(stage), limit):
            table.add_row(
                execution.execution_id,
                execution.status,
                execution.started,
                "",
                execution.failure_reason,
            )
        out.print(table)
        return
    if target != "local":
        raise MlopsError(f"--target {target!r}: use local or aws")
    table = Table(*EXECUTION_COLUMNS)
    for record in list_executions(_home().runs)[:limit]:
        seconds = sum(s.seconds or 0 for s in record.steps)
        table.add_row(
            record.execution_id,
            record.status,
            record.start_time,
            f"{seconds:.1f}",
            record.failure_reason or "",
        )
    out.print(table)


def _cloud_steps(execution: str, stage: str, watch: bool, interval: float) -> None:
    import time

    from mlops.cloud import execution_arn, execution_steps

    aws = _aws(stage)
    arn = execution_arn(aws, execution)
    while True:
        status, found = execution_steps(aws, arn)
        table = Table(*STEP_COLUMNS)
        for step in found:
            seconds = "" if step.seconds is None else f"{step.seconds:.2f}"
            table.add_row(step.name, step.type, step.status, seconds, step.cache_hit, step.detail)
        out.print(f"Execution {arn.rsplit('/', 1)[-1]}: {status}")
        out.print(table)
        if not watch or status not in ("Executing", "Stopping"):
            break
        time.sleep(interval)
    if status in ("Failed", "Stopped"):
        reasons = "; ".join(f"{s.name}: {s.detail}" for s in found if s.status == "Failed")
        raise ExecutionFailed(f"execution {status}" + (f": {reasons}" if reasons else ""))


@pipeline_app.command("steps")
def steps(
    execution: Annotated[str, typer.Argument(help="Execution id, or 'latest'.")] = "latest",
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
    watch: Annotated[
        bool, typer.Option(help="With --target aws: follow it until it ends.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=1, help="Seconds between polls with --watch.")
    ] = 15,
) -> None:
    """Show an execution's steps like ListPipelineExecutionSteps."""
    if target == "aws":
        _cloud_steps(execution, stage, watch, interval)
        return
    if target != "local":
        raise MlopsError(f"--target {target!r}: use local or aws")
    record = find_execution(_home().runs, execution)
    out.print(f"Execution {record.execution_id}: {record.status}")
    table = Table(*STEP_COLUMNS)
    for step in record.steps:
        detail = step.failure_reason or ", ".join(f"{k}={v}" for k, v in step.outputs.items())
        table.add_row(
            step.name,
            step.type,
            step.status,
            f"{step.seconds or 0:.2f}",
            step.cache_hit or "",
            detail,
        )
        for trial in step.trials:  # a Tuning step's training jobs, under it
            values = ", ".join(f"{k}={v}" for k, v in trial["hyperparameters"].items())
            result = (
                f"objective={trial['objective']}"
                if trial["status"] == "Completed"
                else trial["failure_reason"]
            )
            table.add_row(
                f"  {trial['name'].rsplit('-', 1)[-1]}",
                "Trial",
                trial["status"],
                f"{trial['seconds'] or 0:.2f}",
                "",
                f"{values}: {result}",
            )
    out.print(table)


# models --------------------------------------------------------------------------------


def _registry(target: str, stage: str, group: str | None) -> tuple[ModelRegistry, str]:
    """The registry the target names, and the group to use in it."""
    if target == "local":
        return LocalModelRegistry(_home().registry), group or DEFAULT_GROUP
    if target == "aws":
        from mlops.aws import Aws, Stage
        from mlops.registry.sagemaker import SageMakerModelRegistry

        deployed = Stage.load(stage)
        return SageMakerModelRegistry(Aws(deployed)), group or deployed.model_package_group
    raise MlopsError(f"--target {target!r}: use local or aws")


@models_app.command("list")
def models_list(
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """List the versions of a model package group."""
    registry, group = _registry(target, stage, group)
    table = Table("Version", _status_column(), "Created", "Metrics", "Dataset sha256")
    for package in registry.list_model_packages(group):
        table.add_row(
            str(package.version),
            package.approval_status,
            package.created[:16],
            _metrics_line(package),
            package.metadata.get("DatasetSha256", "")[:12],
        )
    out.print(table)


@models_app.command("latest-approved")
def models_latest_approved(
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Print the ARN of the newest approved version (what a deploy should serve)."""
    registry, group = _registry(target, stage, group)
    approved = [p for p in registry.list_model_packages(group) if p.approval_status == "Approved"]
    if not approved:
        raise NotFound(f"model package group {group!r} has no approved version; approve one first")
    print(max(approved, key=lambda p: p.version).arn)


@models_app.command("describe")
def models_describe(
    version: int,
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Print one model package as JSON."""
    registry, group = _registry(target, stage, group)
    print(json.dumps(registry.describe_model_package(group, version).to_dict(), indent=2))


DOCS_OUTPUT_OPTION = typer.Option(
    "--output", help="Folder to write into (default: models/<target>/<group>/<version> in home)."
)


@models_app.command("card")
def models_card(
    version: int,
    format: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    output: Annotated[Path | None, DOCS_OUTPUT_OPTION] = None,
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Write a version's model card (SageMaker Model Card JSON, or Markdown); print its path."""
    from mlops.model_card import version_files

    if format not in ("markdown", "json"):
        raise MlopsError(f"--format {format!r}: use markdown or json")
    files = version_files(_home(), target, stage, group, version)
    print(files.write_card(output, "json" if format == "json" else "markdown"))


@models_app.command("report")
def models_report(
    version: int,
    output: Annotated[Path | None, DOCS_OUTPUT_OPTION] = None,
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Write a version's HTML evaluation report (the Evaluate step's); print its path."""
    from mlops.model_card import version_files

    print(version_files(_home(), target, stage, group, version).write_report(output))


def _set_status(
    version: int, status: str, description: str, group: str | None, target: str, stage: str
) -> None:
    registry, group = _registry(target, stage, group)
    package = registry.update_approval_status(group, version, status, description)
    out.print(f"{package.group} version {package.version}: {package.approval_status}")


@models_app.command("approve")
def models_approve(
    version: int,
    description: Annotated[str, typer.Option(help="Who approves and why.")] = "",
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Approve a model package version for deployment."""
    _set_status(version, "Approved", description, group, target, stage)


@models_app.command("reject")
def models_reject(
    version: int,
    description: Annotated[str, typer.Option(help="Who rejects and why.")] = "",
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Reject a model package version (an approved one too)."""
    _set_status(version, "Rejected", description, group, target, stage)


# data, and the pipeline in AWS ------------------------------------------------------------
def _aws(stage: str) -> Any:
    from mlops.aws import Aws, Stage

    return Aws(Stage.load(stage))


@data_app.command("upload")
def data_upload(
    path: Path,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Upload a CSV/Parquet file or folder; print the URI to pass as InputDataUri."""
    if target == "aws":
        from mlops.cloud import upload_data

        uri = upload_data(_aws(stage), path)
    elif target == "local":
        from mlops.local import upload_dataset

        uri = upload_dataset(LocalObjectStore(_home().store), path)
    else:
        raise MlopsError(f"--target {target!r}: use local or aws")
    out.print(uri)
    err.print(
        f"Run it: mlops pipeline start --param InputDataUri={uri} --param TargetColumn=COLUMN ..."
    )


@pipeline_app.command("start")
def pipeline_start(
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Name=Value (repeatable).")
    ] = None,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Start an execution of the stage's deployed pipeline in SageMaker."""
    from mlops.cloud import start_pipeline

    arn = start_pipeline(_aws(stage), _parse_params(param or []))
    out.print(f"Started {arn}")
    out.print(f"Follow it: mlops pipeline executions --target aws --stage {stage}")


# endpoints, serving, batch transform ------------------------------------------------------
def _endpoints() -> LocalEndpoints:
    home = _home()
    return LocalEndpoints(home, LocalModelRegistry(home.registry))


@endpoint_app.command("deploy")
def endpoint_deploy(
    name: Annotated[str, typer.Option("--name", "-n", help="Endpoint name.")],
    version: Annotated[
        int | None, typer.Option(help="Model version (default: the latest approved).")
    ] = None,
    group: Annotated[str, GROUP_OPTION] = DEFAULT_GROUP,
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Server worker processes.")] = 2,
    capture_percent: Annotated[float, typer.Option(help="Data capture sampling, 0 to 100.")] = 0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Prometheus metrics port (0: a free one; default: off)."
        ),
    ] = None,
) -> None:
    """Serve an approved model version on a local port with the endpoint's own server."""
    record = _endpoints().deploy(
        name,
        group,
        version=version,
        port=port,
        workers=workers,
        capture_percent=capture_percent,
        metrics_port=metrics_port,
    )
    out.print(
        f"Endpoint {record.name}: InService, {record.group} version {record.version}, pid {record.pid}"
    )
    out.print(f"URL: {record.url}")
    if record.metrics_url:
        out.print(f"Metrics: {record.metrics_url}")
    out.print(f"Invoke: mlops endpoint invoke {record.name} --file rows.csv")


@endpoint_app.command("list")
def endpoint_list() -> None:
    """List local endpoints; a Stale one has lost its server process."""
    table = Table("Name", "Status", "URL", "Version", "PID", "Started", "Capture")
    for record in _endpoints().list():
        table.add_row(
            record.name,
            record.status,
            record.url,
            str(record.version),
            str(record.pid),
            record.started,
            record.capture_dir or "off",
        )
    out.print(table)


@endpoint_app.command("delete")
def endpoint_delete(name: str) -> None:
    """Stop an endpoint's server (in-flight requests finish) and remove it."""
    record = _endpoints().delete(name)
    out.print(f"Deleted endpoint {record.name} (pid {record.pid})")


@endpoint_app.command("invoke")
def endpoint_invoke(
    name: str,
    file: Annotated[Path, typer.Option(help="Request body file (e.g. CSV rows without header).")],
    content_type: Annotated[str | None, typer.Option(help="Default: from the file suffix.")] = None,
    accept: Annotated[
        str, typer.Option(help="application/json, text/csv or application/jsonlines.")
    ] = "application/json",
    probabilities: Annotated[
        bool, typer.Option(help="Ask a classifier for class probabilities.")
    ] = False,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Send a file to an endpoint through SageMaker Runtime (local or AWS); print the answer."""
    if not file.is_file():
        raise NotFound(f"--file {file} does not exist")
    kind = content_type or _CONTENT_TYPES.get(file.suffix.lower(), "text/csv")
    if target == "aws":
        from mlops.aws import explained

        extra = {"CustomAttributes": "probabilities=true"} if probabilities else {}
        with explained("sagemaker:InvokeEndpoint", f"endpoint {name}"):
            answer = (
                _aws(stage)
                .client("sagemaker-runtime")
                .invoke_endpoint(
                    EndpointName=name,
                    ContentType=kind,
                    Accept=accept,
                    Body=file.read_bytes(),
                    **extra,
                )
            )
        body = answer["Body"].read()
        sys.stdout.write(
            body.decode("utf-8", errors="replace") + ("" if body.endswith(b"\n") else "\n")
        )
        return
    result = _endpoints().invoke(
        name, file.read_bytes(), kind, accept, "probabilities=true" if probabilities else None
    )
    sys.stdout.write(result.body.decode("utf-8", errors="replace"))
    if not result.body.endswith(b"\n"):
        sys.stdout.write("\n")


@endpoint_app.command("status")
def endpoint_status(
    name: str,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Show an endpoint, the model package it serves, and its last change."""
    if target == "aws":
        from mlops.cloud import endpoint_status as cloud_status

        status = cloud_status(_aws(stage), name)
        out.print(f"Endpoint {status.name}: {status.status}")
        out.print(f"Config:         {status.config} (last modified {status.last_modified})")
        out.print(f"Model package:  {status.model_package_arn}")
        if status.failure_reason:
            out.print(f"Failure:        {status.failure_reason}")
        return
    if target != "local":
        raise MlopsError(f"--target {target!r}: use local or aws")
    record = _endpoints().describe(name)
    out.print(f"Endpoint {record.name}: {record.status}")
    out.print(f"URL:            {record.url} (pid {record.pid}, started {record.started})")
    if record.metrics_url:
        out.print(f"Metrics:        {record.metrics_url}")
    out.print(f"Model package:  {record.model_package_arn}")


@endpoint_app.command("wait")
def endpoint_wait(
    name: str,
    version: Annotated[
        int | None,
        typer.Option(help="Version that should be in service (default: latest approved)."),
    ] = None,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the deployment to settle.")
    ] = 3600,
) -> None:
    """After a deploy: wait, then fail (exit 1) unless the requested version is in service."""
    from mlops.cloud import latest_approved, wait_for_endpoint
    from mlops.registry.sagemaker import SageMakerModelRegistry

    aws = _aws(stage)
    group = aws.stage.model_package_group
    if version is not None:
        expected = SageMakerModelRegistry(aws).describe_model_package(group, version).arn
    else:
        expected = latest_approved(aws, group)
    status = wait_for_endpoint(
        aws,
        name,
        expected,
        timeout=timeout,
        progress=lambda s: err.print(f"{s.name}: {s.status} ..."),
    )
    out.print(f"Endpoint {status.name}: InService on {status.model_package_arn}")


_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".jsonl": "application/jsonlines",
    ".npy": "application/x-npy",
}


@app.command("serve")
def serve(
    model_dir: Annotated[Path, typer.Option(help="Folder with model.joblib (and manifest.json).")],
    port: Annotated[int, typer.Option()] = 8080,
    workers: Annotated[int, typer.Option()] = 2,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Prometheus metrics port (default: off).")
    ] = None,
) -> None:
    """Run the model server in the foreground on any model directory (bring your own model)."""
    from inference.serve import main as serve_main
    from inference.serve import serve_args

    raise typer.Exit(serve_main(serve_args(model_dir, port, workers, host, metrics_port)))


@app.command("transform")
def transform(
    model: Annotated[int, typer.Option(help="Model package version.")],
    input: Annotated[Path, typer.Option("--input", help="A file or a folder of files.")],
    output: Annotated[Path, typer.Option(help="Folder for <input>.out files.")],
    group: Annotated[str, GROUP_OPTION] = DEFAULT_GROUP,
    content_type: Annotated[str, typer.Option()] = "text/csv",
    accept: Annotated[str, typer.Option()] = "text/csv",
    max_payload_mb: Annotated[float, typer.Option(min=0.001, max=100)] = 6,
) -> None:
    """Score files like a SageMaker Batch Transform job (line split, multi-record batches)."""
    import tempfile
    import time

    from inference.errors import InferenceError
    from inference.handler import ACCEPTS, CSV, JSONLINES, media_type, model_fn
    from inference.transform import transform as run_transform
    from mlops.local import unpack_package

    if not input.exists():
        raise NotFound(f"--input {input} does not exist")
    if media_type(content_type)[0] not in (CSV, JSONLINES):
        raise MlopsError(
            f"--content-type {content_type!r}: line-split transform takes {CSV} or {JSONLINES}"
        )
    if media_type(accept)[0] not in ACCEPTS:
        raise MlopsError(f"--accept {accept!r}: use one of {', '.join(ACCEPTS)}")
    home = _home()
    package = LocalModelRegistry(home.registry).describe_model_package(group, model)
    home.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.root) as scratch:
        try:
            handler = model_fn(unpack_package(LocalObjectStore(home.store), package, Path(scratch)))
        except RuntimeError as exc:  # a model that fails its sha256 check, or nothing to serve
            raise MlopsError(str(exc)) from exc
        started = time.perf_counter()
        try:
            stats = run_transform(
                handler,
                input,
                output,
                content_type=media_type(content_type)[0],
                accept=media_type(accept)[0],
                max_payload_mb=max_payload_mb,
            )
        except InferenceError as exc:
            raise MlopsError(f"transform failed: {exc}") from exc
    seconds = time.perf_counter() - started
    out.print(
        f"Transformed {stats.records} records in {stats.files} file(s), {stats.batches} batches, "
        f"{seconds:.2f}s ({stats.records / max(seconds, 1e-9):,.0f} records/s) -> {output}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the one place where errors become messages and exit codes."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result: Any = app(
            args=list(argv) if argv is not None else None, prog_name="mlops", standalone_mode=False
        )
    except MlopsError as exc:
        err.print(f"[red]error:[/] {exc}")
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: typer knows how to show them
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            err.print(f"[red]error:[/] {exc}")
        return int(getattr(exc, "exit_code", 2))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
