"""What both targets share: the kinds, the rows they list and the ``Target`` Protocol.

Its own module so ``mlops.target.local`` and ``.aws`` need not import the package that picks
between them (no import cycle)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlops.home import Home
from mlops.registry.base import ModelPackage, ModelRegistry

if TYPE_CHECKING:
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
