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


@app.command("report")
def data_report(
    path: Annotated[Path, typer.Argument(help="A CSV/Parquet file, or a folder of them.")],
    target_column: Annotated[
        str, typer.Option("--target-column", "--target", help="The column to predict.")
    ],
    problem_type: Annotated[
        str, typer.Option(help="auto, classification or regression (as pipeline run).")
    ] = "auto",
    column_types: Annotated[
        str, typer.Option(help="NAME=numeric|categorical|datetime,... (as pipeline run).")
    ] = "",
    output: Annotated[
        Path | None, typer.Option(help="Where to write the page (default: <file stem>-eda.html).")
    ] = None,
) -> None:
    """Write the EDA report (eda.html) of a data set before any run: what Preprocess writes."""
    from mlops.errors import MlopsError
    from sagemaker_jobs import data, eda
    from sagemaker_jobs.contract import JobError

    if problem_type not in ("auto", "classification", "regression"):
        raise MlopsError(
            f"--problem-type {problem_type!r} is not auto, classification or regression"
        )
    if not path.exists():
        raise MlopsError(f"{path} does not exist: pass a CSV/Parquet file or a folder of them")
    try:
        spec = data.DataSpec(
            target=target_column.strip(),
            problem_type=problem_type,  # type: ignore[arg-type]
            column_types=data.parse_column_types(column_types),
        )
        files = data.table_files(path)
        table, schema = data.prepare(data.read_table(path), spec)
    except JobError as exc:
        raise MlopsError(f"{path}: {exc}") from exc
    page = output or Path(f"{path.stem}-eda.html")
    name = files[0].name if len(files) == 1 else f"{path.name} ({len(files)} files)"
    analysis = eda.write_report(page, table, schema, source=name)
    out.print(str(page))
    err.print(
        f"{analysis.rows} rows, {len(analysis.kinds)} features, {len(analysis.flags)} flag(s)"
        + "".join(f"\n  {f.column}: {f.rule} ({f.detail})" for f in analysis.flags)
    )
