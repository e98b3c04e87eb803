"""`mlops models`: the model registry, local or SageMaker's, and each version's report and card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlops.commands import (
    GROUP_OPTION,
    STAGE_OPTION,
    TARGET_OPTION,
    out,
    status_column,
    target_for,
)
from mlops.errors import MlopsError, NotFound
from mlops.registry import ModelPackage, ModelRegistry
from mlops.target import TargetKind

if TYPE_CHECKING:
    from mlops.model_card import VersionFiles

app = typer.Typer(no_args_is_help=True, help="The model registry.")


def metrics_line(package: ModelPackage) -> str:
    metrics = package.metrics.get("metrics", {})
    return ", ".join(f"{k}={v.get('value')}" for k, v in metrics.items()) or "-"


def _registry(target: TargetKind, stage: str, group: str | None) -> tuple[ModelRegistry, str]:
    """The registry the target names, and the group to use in it."""
    chosen = target_for(target, stage)
    return chosen.registry, group or chosen.default_group


@app.command("list")
def models_list(
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """List the versions of a model package group."""
    registry, group = _registry(target, stage, group)
    table = Table("Version", status_column(), "Created", "Metrics", "Dataset sha256")
    for package in registry.list_model_packages(group):
        table.add_row(
            str(package.version),
            package.approval_status,
            package.created[:16],
            metrics_line(package),
            package.metadata.get("DatasetSha256", "")[:12],
        )
    out.print(table)


@app.command("latest-approved")
def models_latest_approved(
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Print the ARN of the newest approved version (what a deploy should serve)."""
    registry, group = _registry(target, stage, group)
    approved = [p for p in registry.list_model_packages(group) if p.approval_status == "Approved"]
    if not approved:
        raise NotFound(f"model package group {group!r} has no approved version; approve one first")
    print(max(approved, key=lambda p: p.version).arn)


@app.command("describe")
def models_describe(
    version: int,
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Print one model package as JSON."""
    registry, group = _registry(target, stage, group)
    print(json.dumps(registry.describe_model_package(group, version).to_dict(), indent=2))


DOCS_OUTPUT_OPTION = typer.Option(
    "--output", help="Folder to write into (default: models/<target>/<group>/<version> in home)."
)


@app.command("card")
def models_card(
    version: int,
    format: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    output: Annotated[Path | None, DOCS_OUTPUT_OPTION] = None,
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Write a version's model card (SageMaker Model Card JSON, or Markdown); print its path."""
    if format not in ("markdown", "json"):
        raise MlopsError(f"--format {format!r}: use markdown or json")
    files = _version_files(target, stage, group, version)
    print(files.write_card(output, "json" if format == "json" else "markdown"))


@app.command("report")
def models_report(
    version: int,
    output: Annotated[Path | None, DOCS_OUTPUT_OPTION] = None,
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Write a version's HTML evaluation report (the Evaluate step's); print its path."""
    print(_version_files(target, stage, group, version).write_report(output))


def _version_files(target: TargetKind, stage: str, group: str | None, version: int) -> VersionFiles:
    """The files of one registered version in the registry the target names."""
    chosen = target_for(target, stage)
    package = chosen.registry.describe_model_package(group or chosen.default_group, version)
    return chosen.version_files(package)


def _set_status(
    version: int,
    status: str,
    description: str,
    group: str | None,
    target: TargetKind,
    stage: str,
) -> None:
    registry, group = _registry(target, stage, group)
    package = registry.update_approval_status(group, version, status, description)
    out.print(f"{package.group} version {package.version}: {package.approval_status}")


@app.command("approve")
def models_approve(
    version: int,
    description: Annotated[str, typer.Option(help="Who approves and why.")] = "",
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Approve a model package version for deployment."""
    _set_status(version, "Approved", description, group, target, stage)


@app.command("reject")
def models_reject(
    version: int,
    description: Annotated[str, typer.Option(help="Who rejects and why.")] = "",
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Reject a model package version (an approved one too)."""
    _set_status(version, "Rejected", description, group, target, stage)
