"""The local model registry: numbered versions, approval transitions, concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mlops.errors import MlopsError, NotFound
from mlops.registry.base import ModelPackage
from mlops.registry.local import LocalModelRegistry

GROUP = "churn-model"


def _create(registry: LocalModelRegistry, group: str = GROUP, **overrides: Any) -> ModelPackage:
    arguments: dict[str, Any] = {
        "model_data_url": "s3://bucket/run/model.tar.gz",
        "image_uri": "123.dkr.ecr.eu-west-1.amazonaws.com/sklearn:1.2",
        "approval_status": "PendingManualApproval",
        "metrics": {"accuracy": {"value": 0.91}},
        "metadata": {"run": "run-1"},
        "content_types": ["text/csv"],
        "response_types": ["application/json"],
    }
    arguments.update(overrides)
    return registry.create_model_package(group, **arguments)


def test_versions_are_numbered_from_one_in_order(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)

    versions = [_create(registry, metadata={"run": f"run-{i}"}).version for i in range(3)]

    assert versions == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / GROUP).glob("*.json")) == [
        "1.json",
        "2.json",
        "3.json",
    ]


def test_groups_are_numbered_independently(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)
    _create(registry, "model-a")
    _create(registry, "model-a")

    assert _create(registry, "model-b").version == 1
    assert registry.list_groups() == ["model-a", "model-b"]


def test_create_returns_every_field_and_describe_round_trips_it(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)

    created = _create(registry)
    described = registry.describe_model_package(GROUP, 1)

    assert described == created
    assert described.group == GROUP
    assert described.version == 1
    assert described.arn == f"arn:aws:sagemaker:local:000000000000:model-package/{GROUP}/1"
    assert described.approval_status == "PendingManualApproval"
    assert described.created.endswith("+00:00")
    assert described.model_data_url == "s3://bucket/run/model.tar.gz"
    assert described.image_uri == "123.dkr.ecr.eu-west-1.amazonaws.com/sklearn:1.2"
    assert described.metrics == {"accuracy": {"value": 0.91}}
    assert described.metadata == {"run": "run-1"}
    assert described.approval_description == ""
    assert described.content_types == ["text/csv"]
    assert described.response_types == ["application/json"]


def test_list_returns_the_packages_in_version_order(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)
    created = [_create(registry, metadata={"run": f"run-{i}"}) for i in range(11)]

    listed = registry.list_model_packages(GROUP)

    # Ordered as numbers, not as text: 10 and 11 come after 2.
    assert [p.version for p in listed] == list(range(1, 12))
    assert listed == created


def test_list_of_an_unknown_group_is_empty(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path / "registry")

    assert registry.list_model_packages("nothing-here") == []
    assert registry.list_groups() == []


def test_create_can_start_approved(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)

    assert _create(registry, approval_status="Approved").approval_status == "Approved"


def test_approval_moves_pending_to_approved_to_rejected(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)
    _create(registry)
    _create(registry)

    approved = registry.update_approval_status(GROUP, 1, "Approved", "good enough")
    assert approved.approval_status == "Approved"
    assert approved.approval_description == "good enough"
    assert registry.describe_model_package(GROUP, 1) == approved

    rejected = registry.update_approval_status(GROUP, 1, "Rejected", "drifted in production")
    assert rejected.approval_status == "Rejected"
    assert rejected.approval_description == "drifted in production"
    described = registry.describe_model_package(GROUP, 1)
    assert described == rejected
    # Everything else about the package is unchanged.
    original = registry.list_model_packages(GROUP)[0]
    assert (described.arn, described.created, described.metrics) == (
        original.arn,
        original.created,
        original.metrics,
    )
    # The other version is untouched.
    assert registry.describe_model_package(GROUP, 2).approval_status == "PendingManualApproval"


@pytest.mark.parametrize("status", ["approved", "Deleted", ""])
def test_invalid_status_is_rejected(tmp_path: Path, status: str) -> None:
    registry = LocalModelRegistry(tmp_path)
    _create(registry)

    with pytest.raises(MlopsError, match="PendingManualApproval, Approved, Rejected"):
        registry.update_approval_status(GROUP, 1, status)
    with pytest.raises(MlopsError, match="approval status"):
        _create(registry, approval_status=status)
    assert registry.describe_model_package(GROUP, 1).approval_status == "PendingManualApproval"
    assert len(registry.list_model_packages(GROUP)) == 1


def test_describe_of_a_missing_version_lists_the_existing_ones(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)
    _create(registry)
    _create(registry)

    with pytest.raises(NotFound) as caught:
        registry.describe_model_package(GROUP, 7)

    message = str(caught.value)
    assert f"{GROUP!r} has no version 7" in message
    assert "[1, 2]" in message
    assert caught.value.exit_code == 3


def test_describe_in_an_empty_group_says_to_run_the_pipeline(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)

    with pytest.raises(NotFound, match="mlops pipeline run"):
        registry.describe_model_package(GROUP, 1)


def test_updating_a_missing_version_is_not_found(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)
    _create(registry)

    with pytest.raises(NotFound, match="no version 2"):
        registry.update_approval_status(GROUP, 2, "Approved")


@pytest.mark.parametrize("group", ["", "-model", "model-", "my_model", "a/b", "../x", "x" * 64])
def test_bad_group_names_are_rejected(tmp_path: Path, group: str) -> None:
    registry = LocalModelRegistry(tmp_path / "registry")

    with pytest.raises(MlopsError, match="must match"):
        _create(registry, group)
    with pytest.raises(MlopsError, match="must match"):
        registry.list_model_packages(group)
    assert not (tmp_path / "registry").exists()


@pytest.mark.parametrize("group", ["a", "model-1", "A--b", "x" * 63])
def test_good_group_names_are_accepted(tmp_path: Path, group: str) -> None:
    registry = LocalModelRegistry(tmp_path)

    assert _create(registry, group).group == group


def test_concurrent_creation_gives_distinct_versions(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)
    start = threading.Barrier(8)

    def create(i: int) -> int:
        start.wait()
        return _create(registry, metadata={"run": f"run-{i}"}).version

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(create, range(8)))

    assert sorted(versions) == list(range(1, 9))
    packages = registry.list_model_packages(GROUP)
    assert [p.version for p in packages] == list(range(1, 9))
    assert sorted(p.metadata["run"] for p in packages) == [f"run-{i}" for i in range(8)]


def test_list_groups_ignores_files(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path)
    _create(registry, "beta")
    _create(registry, "alpha")
    (tmp_path / "stray.txt").write_text("x", encoding="utf-8")

    assert registry.list_groups() == ["alpha", "beta"]


def test_a_status_change_without_description_keeps_the_last_one(tmp_path: Path) -> None:
    """As UpdateModelPackage: ApprovalDescription changes only when one is given."""
    registry = LocalModelRegistry(tmp_path)
    _create(registry)
    registry.update_approval_status(GROUP, 1, "Approved", "alice: beats v0")
    kept = registry.update_approval_status(GROUP, 1, "Rejected")
    assert (kept.approval_status, kept.approval_description) == ("Rejected", "alice: beats v0")
    replaced = registry.update_approval_status(GROUP, 1, "Approved", "bob: drift was a false alarm")
    assert replaced.approval_description == "bob: drift was a false alarm"
