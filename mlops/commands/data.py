"""`mlops data`: data sets, uploaded where a pipeline run reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops.commands import STAGE_OPTION, TARGET_OPTION, err, out, target_for
from mlops.target import TargetKind

app = typer.Typer(no_args_is_help=True, help="Data sets: upload for a pipeline run.")


@app.command("upload")
def data_upload(
    path: Path,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Upload a CSV/Parquet file or folder; print the URI to pass as InputDataUri."""
    uri = target_for(target, stage).upload(path)
    out.print(uri)
    err.print(
        f"Run it: mlops pipeline start --param InputDataUri={uri} --param TargetColumn=COLUMN ..."
    )
