"""`mlops ui`: the web console, on the local home or (read-only) a deployed AWS stage."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.commands import (
    PROJECT_OPTION,
    STAGE_OPTION,
    TARGET_OPTION,
    current_home,
    err,
    target_for,
)
from mlops.errors import MlopsError
from mlops.target import TargetKind

HOST = "127.0.0.1"  # local only: the console can approve models


def ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = 0,
    mlflow_url: Annotated[
        str | None, typer.Option(help="Where an MLflow UI runs, to link from Experiments.")
    ] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """Start the console: projects, executions, model versions, endpoints, experiments. With
    --target aws it reads STAGE's SageMaker resources, read-only but for a confirmed
    approve/reject."""
    import uvicorn

    from mlops.endpoints import free_port
    from mlops.ui.app import Console, create_app

    if not 0 <= port <= 65535:
        raise MlopsError(f"--port {port} is not a port number (1 to 65535, or 0 for a free one)")
    chosen = port or free_port()
    console: Console
    if target is TargetKind.aws:
        from mlops.ui.aws import AwsConsole

        console = AwsConsole(current_home(), target_for(target, stage, project))
        where = f"AWS stage {stage}"
    else:
        console = Console(current_home(), mlflow_url)
        where = "the local home"
    app = create_app(console)
    err.print(f"Console on {where}: http://{HOST}:{chosen}/  (Ctrl-C stops it)")
    uvicorn.run(app, host=HOST, port=chosen, log_level="warning")
