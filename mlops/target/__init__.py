"""What ``--target`` names, chosen once: the local platform under MLOPS_HOME, or a deployed
stage in SageMaker. Commands ask the target; neither they nor the target's users branch on it.

``connect`` is the one place where a stage's AWS clients are made (tests swap it for moto's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.errors import MlopsError
from mlops.home import Home
from mlops.target.base import (
    DEFAULT_GROUP,
    DEFAULT_PROJECT,
    EndpointView,
    ExecutionRow,
    ShowSteps,
    StepRow,
    Target,
    TargetKind,
)

if TYPE_CHECKING:
    from mlops.aws import Aws, Stage

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_PROJECT",
    "EndpointView",
    "ExecutionRow",
    "ShowSteps",
    "StepRow",
    "Target",
    "TargetKind",
    "connect",
    "connect_project",
    "for_project",
    "open_target",
]


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
