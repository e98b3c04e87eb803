"""`mlops data`: data sets, uploaded where a pipeline run reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops.commands import STAGE_OPTION, TARGET_OPTION, aws_for, current_home, err, out
from mlops.errors import MlopsError
from mlops.store import LocalObjectStore

app = typer.Typer(no_args_is_help=True, help="Data sets: upload for a pipeline run.")


@app.command("upload")
def data_upload(
    path: Path,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Upload a CSV/Parquet file or folder; print the URI to pass as InputDataUri."""
    if target == "aws":
        from mlops.cloud import upload_data

        uri = upload_data(aws_for(stage), path)
    elif target == "local":
        from mlops.local import upload_dataset

        uri = upload_dataset(LocalObjectStore(current_home().store), path)
    else:
        raise MlopsError(f"--target {target!r}: use local or aws")
    out.print(uri)
    err.print(
        f"Run it: mlops pipeline start --param InputDataUri={uri} --param TargetColumn=COLUMN ..."
    )
