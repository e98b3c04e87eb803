"""CLI command groups, one module each, registered in ``mlops.cli``; the options they share."""

from __future__ import annotations

import typer

DEFAULT_GROUP = "mlops-tabular"
TARGET_OPTION = typer.Option(
    "--target",
    envvar="MLOPS_TARGET",
    help="local (.mlops here) or aws (the deployed stage in SageMaker).",
)
STAGE_OPTION = typer.Option(
    "--stage", envvar="MLOPS_STAGE", help="Stage in cdk.json, with --target aws."
)
GROUP_OPTION = typer.Option(
    "--group", "-g", help="Model Package Group (default: the stage's, or mlops-tabular)."
)
