"""The local registry: one JSON file per model package under ``<home>/registry/<group>/``."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import re
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import MlopsError, NotFound
from mlops.registry.base import APPROVAL_STATUSES, ModelPackage
from mlops.registry.projects import Trained, check_same_kind, model_data_digest
from sagemaker_jobs.contract import write_atomically

if TYPE_CHECKING:
    from mlops.store import LocalObjectStore

_GROUP = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # matched in full: no trailing newline
LOCAL_ACCOUNT = "000000000000"


def check_status(status: str) -> str:
    if status not in APPROVAL_STATUSES:
        raise MlopsError(f"approval status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    return status


class LocalModelRegistry:
    """``store`` given (a pipeline run's registry): a version whose model data has the content
    of an existing version's is not registered again, and that version is returned."""

    def __init__(self, root: Path, store: LocalObjectStore | None = None) -> None:
        self.root, self.store = root, store

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
            existing = self.list_model_packages(group)
            # One kind of model per project (the target is checked before the run).
            check_same_kind(
                group,
                [Trained(problem_type=str(p.metrics.get("problem_type", ""))) for p in existing],
                Trained(problem_type=str(metrics.get("problem_type", ""))),
            )
            if same := self._same_model(existing, model_data_url):
                return same
            version = 1 + max((p.version for p in existing), default=0)
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

    def _same_model(self, existing: list[ModelPackage], model_data_url: str) -> ModelPackage | None:
        """The newest version whose model data has the same content, when deduplicating."""
        if self.store is None:
            return None
        try:
            digest = model_data_digest(self.store.path_for(model_data_url))
        except (OSError, tarfile.TarError, MlopsError):
            return None  # not a readable archive: the runner's checks say why
        for package in reversed(existing):
            try:
                if model_data_digest(self.store.path_for(package.model_data_url)) == digest:
                    return package
            except (OSError, tarfile.TarError, MlopsError):
                continue  # an older version whose model data is gone cannot match
        return None

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
