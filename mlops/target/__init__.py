"""What ``--target`` names, chosen once: the local platform under MLOPS_HOME, or a deployed
stage in SageMaker. Commands ask the target; neither they nor the target's users branch on it.

``connect`` is the one place where a stage's AWS clients are made (tests swap it for moto's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlops.errors import MlopsError
from mlops.home import Home
from mlops.registry.base import ModelPackage, ModelRegistry

if TYPE_CHECKING:
    from mlops.aws import Aws, Stage
    from mlops.lineage import Lineage
    from mlops.model_card import VersionFiles
    from mlops.monitoring_sources import CaptureFiles
    from mlops.tracking import ExecutionSummary

DEFAULT_PROJECT = "mlops-tabular"  # mlops.stages.DEFAULT_PROJECT (a test keeps them equal)
DEFAULT_GROUP = DEFAULT_PROJECT  # a project's model package group carries its name


class TargetKind(StrEnum):
    local = "local"
    aws = "aws"


@dataclass(frozen=True)
class ExecutionRow:
    """One execution as both targets list it (ListPipelineExecutions' columns)."""

    execution_id: str
    status: str
    started: str
    seconds: str
    failure_reason: str
    dataset: str = ""  # hash prefix and file name
    target: str = ""
    problem_type: str = ""


@dataclass(frozen=True)
class StepRow:
    """One step as both targets list it (ListPipelineExecutionSteps' columns)."""

    name: str
    type: str
    status: str
    seconds: str
    cache_hit: str
    detail: str  # the failure reason, or what the step produced


@dataclass(frozen=True)
class EndpointView:
    name: str
    status: str
    details: list[tuple[str, str]]  # (label, value), in the order to show them


# Called with (execution id, its status, its steps) each time the steps are read.
ShowSteps = Callable[[str, str, list[StepRow]], None]


class Target(Protocol):
    """The operations the commands need, each with a local and a SageMaker meaning."""

    kind: TargetKind
    home: Home
    registry: ModelRegistry
    default_group: str  # the project's model package group
    project: str
    stage_name: str | None  # the deployed stage, for the AWS target

    def executions(self, limit: int) -> list[ExecutionRow]: ...

    def steps(self, execution: str, show: ShowSteps, *, watch: bool, interval: float) -> None:
        """Show an execution's steps (again until it ends with ``watch``, where it can run)."""

    def upload(self, source: Path) -> str:
        """Put a data file or folder where a pipeline run reads it; return its URI."""

    def endpoint(self, name: str) -> EndpointView: ...

    def invoke(
        self, name: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None
    ) -> bytes: ...

    def tracking_summary(
        self, execution: str, scratch: Path, experiment: str | None
    ) -> ExecutionSummary: ...

    def version_files(self, package: ModelPackage) -> VersionFiles: ...

    def lineage(self, group: str, version: int) -> Lineage: ...

    def baseline_dir(self, package: ModelPackage, into: Path | None) -> tuple[Path, str]:
        """The version's Model Monitor baseline as a folder, and how it was found."""

    def served_package(self, endpoint: str) -> ModelPackage:
        """The package an endpoint serves (its captures are that model's inputs)."""

    def captures(self, endpoint: str, max_files: int) -> CaptureFiles: ...


def connect(stage: str) -> Aws:
    """The AWS clients of a deployed stage (made per command, never at import)."""
    from mlops.aws import Aws, Stage

    return Aws(Stage.load(stage))


def open_target(
    home: Home, target: TargetKind | str, stage: str, project: str | None = None
) -> Target:
    """The target, scoped to ``project`` (default: cdk.json's ``project`` on AWS, else
    mlops-tabular): its model package group, pipeline and experiment."""
    try:
        kind = TargetKind(target)
    except ValueError:
        raise MlopsError(f"--target {target!r}: use local or aws") from None
    if kind is TargetKind.aws:
        from mlops.target.aws import AwsTarget

        return AwsTarget(home, connect_project(stage, project))
    from mlops.target.local import LocalTarget

    return LocalTarget(home, project or DEFAULT_PROJECT)


def connect_project(stage: str, project: str | None) -> Aws:
    """A stage's clients, naming ``project``'s pipeline and group (default: cdk.json's)."""
    aws = connect(stage)
    if project and project != aws.stage.project:
        aws.stage = for_project(aws.stage, project)
    return aws


def for_project(stage: Stage, project: str) -> Stage:
    """The same deployed stage, naming another project's pipeline and model package group."""
    from dataclasses import replace

    from mlops.stages import names

    built = names(project, stage.build_stage)
    return replace(
        stage,
        project=project,
        model_package_group=built.model_package_group,
        pipeline_name=built.pipeline,
    )
