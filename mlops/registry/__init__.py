"""Model registry with SageMaker Model Registry semantics, behind one interface."""

from mlops.registry.base import APPROVAL_STATUSES, ModelPackage, ModelRegistry
from mlops.registry.local import LocalModelRegistry

__all__ = ["APPROVAL_STATUSES", "LocalModelRegistry", "ModelPackage", "ModelRegistry"]
