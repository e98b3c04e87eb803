"""Projects: one model package group, one pipeline and one experiment each (SageMaker
Projects' unit). What a run or a version was trained on (data set, target, problem type), and
the rule that keeps a project to one kind of model."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.errors import MlopsError

if TYPE_CHECKING:
    from mlops.executor.records import ExecutionRecord
    from mlops.registry.base import ModelPackage
    from mlops.store import LocalObjectStore


@dataclass(frozen=True)
class Trained:
    """What a run or version learnt from: shown by `pipeline executions` and `models list`."""

    dataset_sha256: str = ""
    dataset_name: str = ""
    target: str = ""
    problem_type: str = ""  # classification, regression, or "" while unknown (auto)

    @property
    def dataset(self) -> str:
        return " ".join(p for p in (self.dataset_sha256[:12], self.dataset_name) if p) or "-"


def dataset_name(uri: str) -> str:
    """The file (or folder) name of an uploaded data set: the last part of its URI."""
    return uri.rstrip("/").rsplit("/", 1)[-1] if uri else ""


def _dataset_hash(uri: str) -> str:
    """Uploads go under datasets/<content hash>/<name>: the hash, when the URI has one."""
    parts = uri.rstrip("/").split("/")
    if "datasets" in parts[:-1]:
        found = parts[parts.index("datasets") + 1]
        if all(c in "0123456789abcdef" for c in found):
            return found
    return ""


def of_execution(record: ExecutionRecord, store: LocalObjectStore | None = None) -> Trained:
    """A local run's data set, target and problem type (the data profile's, once written)."""
    params = record.parameters
    uri = str(params.get("InputDataUri", ""))
    problem = str(params.get("ProblemType", ""))
    sha = ""
    profile_uri = next(
        (s.outputs.get("profile") for s in record.steps if s.name == "Preprocess"), None
    )
    if store is not None and profile_uri:
        path = store.path_for(str(profile_uri)) / "profile.json"
        try:
            profile = json.loads(path.read_text(encoding="utf-8"))
            problem = str(profile.get("problem_type", problem))
            sha = str(profile.get("dataset", {}).get("sha256", ""))
        except (OSError, ValueError):
            pass  # a run stopped before its profile: the parameters are all there is
    return Trained(
        dataset_sha256=sha or _dataset_hash(uri),
        dataset_name=dataset_name(uri),
        target=str(params.get("TargetColumn", "")),
        problem_type="" if problem == "auto" else problem,
    )


def of_package(package: ModelPackage, runs: Path | None = None) -> Trained:
    """A registered version's: its metadata and metrics, and locally its run's parameters."""
    from mlops.executor.records import EXECUTION_FILE, ExecutionRecord

    target = ""
    execution = package.metadata.get("PipelineExecutionId", "")
    if runs is not None and execution and (runs / execution / EXECUTION_FILE).exists():
        target = str(
            ExecutionRecord.load(runs / execution / EXECUTION_FILE).parameters.get(
                "TargetColumn", ""
            )
        )
    return Trained(
        dataset_sha256=package.metadata.get("DatasetSha256", ""),
        dataset_name=dataset_name(package.metadata.get("DatasetUri", "")),
        target=target,
        problem_type=str(package.metrics.get("problem_type", "")),
    )


def check_same_kind(project: str, existing: list[Trained], run: Trained) -> None:
    """Refuse to mix: a project's versions share one target and one problem type, so
    `models latest-approved`, `endpoint deploy` and `experiments compare` mean one model."""
    for field, label in (("target", "target column"), ("problem_type", "problem type")):
        new = getattr(run, field)
        held = sorted({getattr(t, field) for t in existing} - {""})
        if new and held and new not in held:
            raise MlopsError(
                f"project {project!r} holds models of {label} {held[0]!r}, and this run's "
                f"{label} is {new!r}: give it a project of its own with --project NAME "
                f"(or MLOPS_PROJECT), e.g. --project {_suffixed(project, new)}"
            )


def _suffixed(project: str, word: str) -> str:
    suffix = re.sub(r"[^a-zA-Z0-9]+", "-", word).strip("-").lower()
    return f"{project}-{suffix}"[:63].rstrip("-") if suffix else f"{project}-2"


def model_data_digest(archive: Path) -> str:
    """The content of a model.tar.gz (each member's name and bytes), not the archive's own
    bytes: tar and gzip record times, so two packings of the same model differ there."""
    digest = hashlib.sha256()
    with tarfile.open(archive, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            body = handle.read() if handle else b""
            digest.update(f"{member.name}\0{len(body)}\0".encode())
            digest.update(body)
    return digest.hexdigest()


def input_schema(archive: Path | bytes) -> dict[str, object]:
    """What the endpoint expects, from the model's manifest.json in its model.tar.gz: the
    feature columns in order with their kinds (numeric, categorical, datetime), and the target."""
    import io

    source = {"fileobj": io.BytesIO(archive)} if isinstance(archive, bytes) else {"name": archive}
    try:
        with tarfile.open(mode="r:gz", **source) as tar:
            handle = tar.extractfile("manifest.json")
            manifest = json.loads(handle.read() if handle else b"{}")
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        raise MlopsError(f"the model archive has no readable manifest.json: {exc}") from exc
    features = manifest.get("features", [])
    return {
        "target": manifest.get("target"),
        "problem_type": manifest.get("problem_type"),
        "classes": manifest.get("classes"),
        "features": [
            {"position": i, "name": f["name"], "kind": f["kind"]} for i, f in enumerate(features, 1)
        ],
    }
