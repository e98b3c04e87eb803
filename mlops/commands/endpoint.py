"""`mlops endpoint`, `mlops serve`, `mlops transform`: the model server, locally."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlops.commands import (
    DEFAULT_PROJECT,
    PROJECT_OPTION,
    STAGE_OPTION,
    TARGET_OPTION,
    current_home,
    err,
    out,
    target_for,
)
from mlops.endpoints import LocalEndpoints
from mlops.errors import MlopsError, NotFound
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore
from mlops.target import TargetKind

app = typer.Typer(no_args_is_help=True, help="Local endpoints running the model server.")


# endpoints, serving, batch transform ------------------------------------------------------
def _endpoints() -> LocalEndpoints:
    home = current_home()
    return LocalEndpoints(home, LocalModelRegistry(home.registry))


@app.command("deploy")
def endpoint_deploy(
    name: Annotated[str, typer.Option("--name", "-n", help="Endpoint name.")],
    version: Annotated[
        int | None, typer.Option(help="Model version (default: the latest approved).")
    ] = None,
    project: Annotated[str, PROJECT_OPTION] = DEFAULT_PROJECT,
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
        project,  # the project's model package group
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


@app.command("list")
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


@app.command("delete")
def endpoint_delete(name: str) -> None:
    """Stop an endpoint's server (in-flight requests finish) and remove it."""
    record = _endpoints().delete(name)
    out.print(f"Deleted endpoint {record.name} (pid {record.pid})")


@app.command("invoke")
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
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Send a file to an endpoint through SageMaker Runtime (local or AWS); print the answer."""
    if not file.is_file():
        raise NotFound(f"--file {file} does not exist")
    kind = content_type or _CONTENT_TYPES.get(file.suffix.lower(), "text/csv")
    body = target_for(target, stage).invoke(
        name, file.read_bytes(), kind, accept, "probabilities=true" if probabilities else None
    )
    sys.stdout.write(
        body.decode("utf-8", errors="replace") + ("" if body.endswith(b"\n") else "\n")
    )


@app.command("status")
def endpoint_status(
    name: str,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Show an endpoint, the model package it serves, and its last change."""
    view = target_for(target, stage).endpoint(name)
    out.print(f"Endpoint {view.name}: {view.status}")
    for label, value in view.details:
        out.print(f"{label + ':':<16}{value}")


@app.command("wait")
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
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """After a deploy: wait, then fail (exit 1) unless the requested version is in service."""
    from mlops.cloud import latest_approved, wait_for_endpoint
    from mlops.registry.sagemaker import SageMakerModelRegistry
    from mlops.target import connect_project

    aws = connect_project(stage, project)
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


def transform(
    model: Annotated[int, typer.Option(help="Model package version.")],
    input: Annotated[Path, typer.Option("--input", help="A file or a folder of files.")],
    output: Annotated[Path, typer.Option(help="Folder for <input>.out files.")],
    project: Annotated[str, PROJECT_OPTION] = DEFAULT_PROJECT,
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
    home = current_home()
    package = LocalModelRegistry(home.registry).describe_model_package(project, model)
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
