"""What every registry implementation offers: groups of numbered, approvable model packages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")


@dataclass(frozen=True)
class ModelPackage:
    """The fields of ``DescribeModelPackage`` that the platform uses."""

    group: str
    version: int
    arn: str
    approval_status: str
    created: str
    model_data_url: str
    image_uri: str
    metrics: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    approval_description: str = ""
    content_types: list[str] = field(default_factory=list)
    response_types: list[str] = field(default_factory=list)
    # DriftCheckBaselines.ModelDataQuality: {"statistics": URI, "constraints": URI}, or empty
    drift_baseline: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelRegistry(Protocol):
    def create_model_package(
        self,
        group: str,
        *,
        model_data_url: str,
        image_uri: str,
        approval_status: str,
        metrics: dict[str, Any],
        metadata: dict[str, str],
        content_types: list[str],
        response_types: list[str],
        drift_baseline: dict[str, str] | None = None,
    ) -> ModelPackage: ...

    def list_groups(self) -> list[str]: ...

    def list_model_packages(self, group: str) -> list[ModelPackage]: ...

    def describe_model_package(self, group: str, version: int) -> ModelPackage: ...

    def update_approval_status(
        self, group: str, version: int, status: str, description: str = ""
    ) -> ModelPackage: ...
