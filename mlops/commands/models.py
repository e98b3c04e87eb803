"""`mlops models`: the model registry, local or SageMaker's, and each version's report and card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlops.commands import (
    PROJECT_OPTION,
    STAGE_OPTION,
    TARGET_OPTION,
    err,
    flagged,
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


def _registry(target: TargetKind, stage: str, project: str | None) -> tuple[ModelRegistry, str]:
    """The registry the target names, and the project's group in it."""
    chosen = target_for(target, stage, project)
    return chosen.registry, chosen.default_group


@app.command("list")
def models_list(
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """List a project's versions, with the data set, target and problem type of each."""
    from mlops.registry.projects import of_package

    chosen = target_for(target, stage, project)
    runs = chosen.home.runs if chosen.kind is TargetKind.local else None
    table = Table("Version", status_column(), "Created", "Data set", "Target", "Problem", "Metrics")
    for package in chosen.registry.list_model_packages(chosen.default_group):
        trained = of_package(package, runs)
        table.add_row(
            str(package.version),
            package.approval_status,
            package.created[:16],
            trained.dataset,
            trained.target or "-",
            trained.problem_type or "-",
            metrics_line(package),
        )
    out.print(f"Project {chosen.project} (model package group {chosen.default_group})")
    out.print(table)


@app.command("latest-approved")
def models_latest_approved(
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Print the ARN of the newest approved version (what a deploy should serve)."""
    registry, group = _registry(target, stage, project)
    approved = [p for p in registry.list_model_packages(group) if p.approval_status == "Approved"]
    if not approved:
        raise NotFound(f"model package group {group!r} has no approved version; approve one first")
    print(max(approved, key=lambda p: p.version).arn)


@app.command("release-plan")
def models_release_plan(
    stage: Annotated[str, typer.Option(help="The release's last stage (its endpoint decides).")],
    output: Annotated[
        Path | None, typer.Option(help="Also write MLOPS_RELEASE and MODEL_PACKAGE_ARN here.")
    ] = None,
    project: Annotated[str | None, PROJECT_OPTION] = None,
) -> None:
    """AWS only: should this release run deploy? Yes unless STAGE's endpoint already serves the
    newest approved version (the release's Plan action; `make ci-plan`)."""
    from mlops.cloud import release_plan
    from mlops.target import connect_project

    aws = connect_project(stage, project)
    plan = release_plan(aws, aws.stage.model_package_group, aws.stage.names.endpoint)
    verdict = "release" if plan.release else "skip"
    err.print(f"{verdict} {plan.model_package_arn}: {plan.reason}")
    if output:
        output.write_text(plan.env(), encoding="utf-8")
    out.print(plan.env(), end="")


@app.command("describe")
def models_describe(
    version: int,
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Print one model package as JSON, with the input schema its endpoint expects (feature
    names, kinds and order, from the model's manifest)."""
    from mlops.registry.projects import input_schema

    chosen = target_for(target, stage, project)
    package = chosen.registry.describe_model_package(chosen.default_group, version)
    schema: dict[str, object] | None = None
    try:
        if chosen.kind is TargetKind.local:
            from mlops.store import LocalObjectStore

            store = LocalObjectStore(chosen.home.store)
            schema = input_schema(store.path_for(package.model_data_url))
        else:
            from mlops.aws import read_object

            aws = chosen.aws  # type: ignore[attr-defined]
            schema = input_schema(read_object(aws, package.model_data_url))
    except MlopsError as exc:  # the package stands; only its model archive is unreadable
        err.print(flagged("Warning:", "yellow", f"no input schema: {exc}"))
    print(json.dumps({**package.to_dict(), "input_schema": schema}, indent=2))


DOCS_OUTPUT_OPTION = typer.Option(
    "--output", help="Folder to write into (default: models/<target>/<group>/<version> in home)."
)


@app.command("card")
def models_card(
    version: int,
    format: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    output: Annotated[Path | None, DOCS_OUTPUT_OPTION] = None,
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Write a version's model card (SageMaker Model Card JSON, or Markdown); print its path."""
    if format not in ("markdown", "json"):
        raise MlopsError(f"--format {format!r}: use markdown or json")
    files = _version_files(target, stage, project, version)
    print(files.write_card(output, "json" if format == "json" else "markdown"))


@app.command("report")
def models_report(
    version: int,
    output: Annotated[Path | None, DOCS_OUTPUT_OPTION] = None,
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Write a version's HTML evaluation report (the Evaluate step's); print its path."""
    print(_version_files(target, stage, project, version).write_report(output))


def _version_files(
    target: TargetKind, stage: str, project: str | None, version: int
) -> VersionFiles:
    """The files of one registered version in the registry the target names."""
    chosen = target_for(target, stage, project)
    package = chosen.registry.describe_model_package(chosen.default_group, version)
    return chosen.version_files(package)


def _set_status(
    version: int,
    status: str,
    description: str,
    project: str | None,
    target: TargetKind,
    stage: str,
) -> None:
    registry, group = _registry(target, stage, project)
    package = registry.update_approval_status(group, version, status, description)
    out.print(f"{package.group} version {package.version}: {package.approval_status}")


@app.command("approve")
def models_approve(
    version: int,
    description: Annotated[str, typer.Option(help="Who approves and why.")] = "",
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Approve a model package version for deployment."""
    _set_status(version, "Approved", description, project, target, stage)


@app.command("reject")
def models_reject(
    version: int,
    description: Annotated[str, typer.Option(help="Who rejects and why.")] = "",
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Reject a model package version (an approved one too)."""
    _set_status(version, "Rejected", description, project, target, stage)
