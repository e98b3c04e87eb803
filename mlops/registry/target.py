"""What ``--target`` names: the local registry, or a deployed stage's SageMaker registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.errors import MlopsError
from mlops.home import Home
from mlops.registry.base import ModelRegistry
from mlops.registry.local import LocalModelRegistry

DEFAULT_GROUP = "mlops-tabular"


@dataclass(frozen=True)
class RegistryTarget:
    registry: ModelRegistry
    group: str  # the group asked for, or the target's default
    aws: Any = None  # the stage's clients, for --target aws only


def open_registry(home: Home, target: str, stage: str, group: str | None) -> RegistryTarget:
    if target == "local":
        return RegistryTarget(LocalModelRegistry(home.registry), group or DEFAULT_GROUP)
    if target == "aws":
        from mlops.aws import Aws, Stage
        from mlops.registry.sagemaker import SageMakerModelRegistry

        aws = Aws(Stage.load(stage))
        return RegistryTarget(
            SageMakerModelRegistry(aws), group or aws.stage.model_package_group, aws
        )
    raise MlopsError(f"--target {target!r}: use local or aws")
