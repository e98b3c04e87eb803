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
from mlops.target import DEFAULT_PROJECT as DEFAULT_PROJECT
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
PROJECT_OPTION = typer.Option(
    "--project",
    envvar="MLOPS_PROJECT",
    help="Project: its own model package group, pipeline and MLflow experiment "
    "(default: cdk.json's project with --target aws, else mlops-tabular).",
    show_default=False,
)
GROUP_OPTION = PROJECT_OPTION  # --group was the option's name before projects


def option_aliases(name: str) -> str:
    """Old option names, accepted but not shown (click's token_normalize_func, which gets an
    option's name without its dashes): --group is now --project (a project names its model
    package group). No command or choice is called "group", so nothing else is renamed."""
    return "project" if name == "group" else name


def current_home() -> Home:
    return Home.from_env()


def target_for(target: TargetKind, stage: str, project: str | None = None) -> Target:
    """The target the shared --target, --stage and --project options name, under the home."""
    return open_target(current_home(), target, stage, project)


def flagged(label: str, style: str, message: str) -> Text:
    """``label`` in colour, then ``message`` as plain text (never read as markup)."""
    return Text.assemble((label, style), " ", message)


def status_column() -> Column:  # a fresh one per table: a Column holds its table's cells
    return Column("Status", no_wrap=True, min_width=len("PendingManualApproval"))
