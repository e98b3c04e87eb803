"""`mlops ui`: the local web console."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.commands import current_home, err
from mlops.errors import MlopsError

HOST = "127.0.0.1"  # local only: the console can approve models


def ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = 0,
    mlflow_url: Annotated[
        str | None, typer.Option(help="Where an MLflow UI runs, to link from Experiments.")
    ] = None,
) -> None:
    """Start the local console: projects, executions, model versions, endpoints, experiments."""
    import uvicorn

    from mlops.endpoints import free_port
    from mlops.ui.app import create_app

    if not 0 <= port <= 65535:
        raise MlopsError(f"--port {port} is not a port number (1 to 65535, or 0 for a free one)")
    chosen = port or free_port()
    app = create_app(current_home(), mlflow_url)
    err.print(f"Console: http://{HOST}:{chosen}/  (Ctrl-C stops it)")
    uvicorn.run(app, host=HOST, port=chosen, log_level="warning")
