"""Model registry with SageMaker Model Registry semantics, behind one interface."""

from mlops.registry.base import APPROVAL_STATUSES, ModelPackage, ModelRegistry
from mlops.registry.local import LocalModelRegistry
from mlops.registry.target import DEFAULT_GROUP, RegistryTarget, open_registry

__all__ = [
    "APPROVAL_STATUSES",
    "DEFAULT_GROUP",
    "LocalModelRegistry",
    "ModelPackage",
    "ModelRegistry",
    "RegistryTarget",
    "open_registry",
]
