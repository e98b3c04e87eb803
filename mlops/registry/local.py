"""The local registry: one JSON file per model package under ``<home>/registry/<group>/``."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError, NotFound
from mlops.registry.base import APPROVAL_STATUSES, ModelPackage
from sagemaker_jobs.contract import write_atomically

_GROUP = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # matched in full: no trailing newline
LOCAL_ACCOUNT = "000000000000"


def check_status(status: str) -> str:
    if status not in APPROVAL_STATUSES:
        raise MlopsError(f"approval status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    return status


class LocalModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _group_dir(self, group: str) -> Path:
        if not _GROUP.fullmatch(group):
            raise MlopsError(f"model package group name {group!r} must match {_GROUP.pattern}")
        return self.root / group

    @contextmanager
    def _locked(self, group: str) -> Iterator[Path]:
        """Serialize writers of a group, so two runs never take the same version number."""
        directory = self._group_dir(group)
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield directory
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _write(path: Path, package: ModelPackage) -> None:
        write_atomically(path, json.dumps(package.to_dict(), indent=2, sort_keys=True).encode())

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
    ) -> ModelPackage:
        check_status(approval_status)
        with self._locked(group) as directory:
            version = 1 + max((int(p.stem) for p in directory.glob("*.json")), default=0)
            package = ModelPackage(
                group=group,
                version=version,
                arn=f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:model-package/{group}/{version}",
                approval_status=approval_status,
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                model_data_url=model_data_url,
                image_uri=image_uri,
                metrics=metrics,
                metadata=metadata,
                content_types=content_types,
                response_types=response_types,
                drift_baseline=drift_baseline or {},
            )
            self._write(directory / f"{version}.json", package)
        return package

    def list_groups(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def list_model_packages(self, group: str) -> list[ModelPackage]:
        directory = self._group_dir(group)
        files = sorted(directory.glob("*.json"), key=lambda p: int(p.stem))
        return [ModelPackage(**json.loads(p.read_text(encoding="utf-8"))) for p in files]

    def describe_model_package(self, group: str, version: int) -> ModelPackage:
        path = self._group_dir(group) / f"{version}.json"
        if not path.exists():
            known = [p.version for p in self.list_model_packages(group)]
            raise NotFound(
                f"model package group {group!r} has no version {version}"
                + (f"; it has versions {known}" if known else "; run `mlops pipeline run` first")
            )
        return ModelPackage(**json.loads(path.read_text(encoding="utf-8")))

    def update_approval_status(
        self, group: str, version: int, status: str, description: str = ""
    ) -> ModelPackage:
        check_status(status)
        with self._locked(group) as directory:
            package = self.describe_model_package(group, version)
            updated = dataclasses.replace(
                package,
                approval_status=status,
                approval_description=description or package.approval_description,
            )
            self._write(directory / f"{version}.json", updated)
        return updated
