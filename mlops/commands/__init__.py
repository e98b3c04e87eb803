"""CLI command groups, one module each, registered in ``mlops.cli``; what they share."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console
from rich.table import Column

from mlops.home import Home
from mlops.registry.target import DEFAULT_GROUP as DEFAULT_GROUP  # one default, re-exported

# Piped output (logs, CI, README captures) is not cut to 80 columns.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)

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


def current_home() -> Home:
    return Home.from_env()


def aws_for(stage: str) -> Any:
    """The AWS clients of a deployed stage (created per command, never at import)."""
    from mlops.aws import Aws, Stage

    return Aws(Stage.load(stage))


def status_column() -> Column:  # a fresh one per table: a Column holds its table's cells
    return Column("Status", no_wrap=True, min_width=len("PendingManualApproval"))
