"""CLI command groups, one module each, registered in ``mlops.cli``; what they share: the
consoles, the options every group spells the same way, and the target they name."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Column
from rich.text import Text

from mlops.home import Home
from mlops.target import DEFAULT_GROUP as DEFAULT_GROUP  # one default, re-exported
from mlops.target import Target, TargetKind, open_target

# Piped output (logs, CI, README captures) is not cut to 80 columns. Neither console parses
# rich markup: what users type (names, paths, parameter values, job logs) is printed as is,
# and colour comes from `flagged` and Text styles only.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH, markup=False)

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


def target_for(target: TargetKind, stage: str) -> Target:
    """The target the shared --target and --stage options name, under the current home."""
    return open_target(current_home(), target, stage)


def flagged(label: str, style: str, message: str) -> Text:
    """``label`` in colour, then ``message`` as plain text (never read as markup)."""
    return Text.assemble((label, style), " ", message)


def status_column() -> Column:  # a fresh one per table: a Column holds its table's cells
    return Column("Status", no_wrap=True, min_width=len("PendingManualApproval"))
