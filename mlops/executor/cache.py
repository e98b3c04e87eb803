"""Step caching for the local executor, with SageMaker Pipelines' semantics.

A step whose definition has ``CacheConfig.Enabled`` reuses the outcome (properties, outputs) of the
most recent *succeeded* run of the same step (same pipeline, name and type) whose cache key is
unchanged, unless that run is older than ``ExpireAfter`` (an ISO 8601 duration).

The key is what SageMaker documents ("Default cache key attributes by pipeline step type",
https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-default-keys.html): for a processing
job ``AppSpecification``, ``Environment`` and ``ProcessingInputs``, and so on, as values. Like
SageMaker, it does not look at the bytes behind an S3 URI ("Caching pipeline steps": a previous
run "with the same values for certain attributes"): the same URI with new content is a hit in
AWS, so it is a hit here too, and the step's record says that the bytes differ
(``StepIdentity.changed_inputs``), so a local run shows what AWS would silently do. The pipeline
itself avoids that case with its uncached Fingerprint step (sagemaker_jobs/fingerprint.py).
Output locations are not in the key: they hold the execution id, and a hit hands the earlier
execution's output URIs to the steps downstream, whose keys then match too. One thing goes
beyond SageMaker: the hash of the job code (``sagemaker_jobs``) and its libraries stands in for
the image, whose tag in AWS is the image asset's content hash while the local tag stays put.

Entries are ``<home>/cache/<key>.json``; the property files a hit must serve (a processing
step's ``evaluation.json``, ...) are copied beside them, as the outputs live on in the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mlops.errors import MlopsError
from mlops.store import LocalObjectStore
from sagemaker_jobs.contract import write_atomically

# The step types SageMaker can cache (RegisterModel, Condition, Fail, Lambda, ... never are).
CACHEABLE_TYPES = frozenset(
    {
        "Processing",
        "Training",
        "Tuning",
        "Transform",
        "AutoML",
        "QualityCheck",
        "ClarifyCheck",
        "EMR",
    }
)
# SageMaker's documented key attributes; a cacheable type not listed keys on all its arguments.
KEY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
    "Tuning": (
        "HyperParameterTuningJobConfig",
        "TrainingJobDefinition.AlgorithmSpecification",
        "TrainingJobDefinition.HyperParameterRanges",
        "TrainingJobDefinition.InputDataConfig",
        "TrainingJobDefinition.StaticHyperParameters",
        "TrainingJobDefinition.TuningObjective",
        "TrainingJobDefinitions",
    ),
    "Transform": ("DataProcessing", "Environment", "ModelName", "TransformInput"),
}
IMAGE_FIELDS = ("ImageUri", "TrainingImage", "Image")
_DURATION = TypeAdapter(timedelta)


@dataclass(frozen=True)
class Artifact:
    """One S3 object or prefix a step read or wrote, with the sha256 of its content."""

    name: str
    uri: str
    sha256: str


@dataclass
class StepIdentity:
    """What makes one run of a job step the same as another."""

    key: str | None  # None: an input is missing, so the step cannot be matched (it will fail)
    inputs: list[Artifact]
    image: str | None
    enabled: bool
    expire_after: timedelta | None


@dataclass
class CacheHit:
    execution_id: str
    created: str
    outcome: dict[str, Any]  # the handler's Outcome fields (properties, outputs, ...)
    property_files: dict[tuple[str, str], Path] = field(default_factory=dict)
    # Inputs whose bytes differ from the reused run's, under the same URI: SageMaker reuses too.
    changed_inputs: list[str] = field(default_factory=list)

    @property
    def note(self) -> str | None:
        if not self.changed_inputs:
            return None
        return (
            f"reused although {', '.join(self.changed_inputs)} now holds other bytes than when "
            f"{self.execution_id} ran: SageMaker's cache compares argument values, not the data "
            "behind a URI, so AWS would reuse it too; give new data a new URI"
        )


class CacheConfigError(MlopsError):
    pass


def identify(
    spec: dict[str, Any],
    arguments: dict[str, Any],
    *,
    pipeline: str,
    store: LocalObjectStore,
    code_sha256: str,
) -> StepIdentity:
    """The cache identity of a job step (one of CACHEABLE_TYPES) from its resolved arguments."""
    attributes = KEY_ATTRIBUTES.get(spec["Type"])
    keyed = {a: _pick(arguments, a) for a in attributes} if attributes else arguments
    inputs: list[Artifact] = []
    complete = True
    for name, uri in _s3_uris(keyed, label="input"):
        if not store.exists(uri):
            complete = False
            continue
        inputs.append(Artifact(name, uri, store.digest(uri)))
    material = {  # input bytes are recorded (lineage) but, as in SageMaker, not in the key
        "pipeline": pipeline,
        "step": spec["Name"],
        "type": spec["Type"],
        "attributes": keyed,
        "code": code_sha256,
    }
    config = spec.get("CacheConfig") or {}
    return StepIdentity(
        key=_sha256_json(material) if complete else None,
        inputs=inputs,
        image=next(iter(_values(arguments, IMAGE_FIELDS)), None),
        enabled=bool(config.get("Enabled")),
        expire_after=parse_duration(config.get("ExpireAfter")),
    )


def parse_duration(value: str | None) -> timedelta | None:
    """``P30D``, ``PT1H``, ``P1Y2M`` (a year is 365 days, a month 30); None never expires."""
    if value is None:
        return None
    try:
        return _DURATION.validate_python(value)
    except ValidationError as exc:
        raise CacheConfigError(
            f"CacheConfig.ExpireAfter {value!r} is not an ISO 8601 duration such as P30D or PT12H"
        ) from exc


def output_artifacts(store: LocalObjectStore, outputs: dict[str, Any]) -> list[Artifact]:
    """The step's outputs that are objects in the store, with their content hashes."""
    return [
        Artifact(name, uri, store.digest(uri))
        for name, uri in outputs.items()
        if isinstance(uri, str) and uri.startswith("s3://") and store.exists(uri)
    ]


# What the jobs import besides their own code: an upgrade changes the model, so the image.
_JOB_LIBRARIES = ("scikit-learn", "pandas", "numpy", "scipy", "pyarrow", "matplotlib")


def code_digest(package: Path) -> str:
    """sha256 over a source tree's Python files and the jobs' library versions: the local
    stand-in for an image digest."""
    digest = hashlib.sha256()
    for library in _JOB_LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}\0".encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(f"{path.relative_to(package).as_posix()}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class StepCache:
    def __init__(
        self,
        root: Path,
        store: LocalObjectStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.root, self.store, self.clock = root, store, clock

    def lookup(self, identity: StepIdentity) -> CacheHit | None:
        """The earlier run to reuse, if one is recorded, unexpired, and its outputs still exist."""
        if not identity.enabled or identity.key is None:
            return None
        path = self.root / f"{identity.key}.json"
        if not path.exists():
            return None
        entry = json.loads(path.read_text(encoding="utf-8"))
        age = self.clock() - datetime.fromisoformat(entry["created"])
        if identity.expire_after is not None and age > identity.expire_after:
            return None
        outputs = entry["outcome"].get("outputs", {})
        if any(not self.store.exists(uri) for _, uri in _s3_uris(outputs, "output")):
            return None  # someone cleaned the store: run the step again
        files = {
            (step, name): self.root / identity.key / copy
            for step, name, copy in entry["property_files"]
        }
        if not all(p.exists() for p in files.values()):
            return None
        before = {a["uri"]: a["sha256"] for a in entry.get("inputs", [])}
        return CacheHit(
            execution_id=entry["execution_id"],
            created=entry["created"],
            outcome=entry["outcome"],
            property_files=files,
            changed_inputs=[
                a.uri for a in identity.inputs if before.get(a.uri, a.sha256) != a.sha256
            ],
        )

    def save(
        self,
        identity: StepIdentity,
        execution_id: str,
        outcome: dict[str, Any],
        property_files: dict[tuple[str, str], Path],
    ) -> None:
        """Record a succeeded run of a step with caching on (the newest run of a key is reused)."""
        if identity.key is None or not identity.enabled:
            return
        folder = self.root / identity.key
        folder.mkdir(parents=True, exist_ok=True)
        copies = []
        for index, ((step, name), source) in enumerate(sorted(property_files.items())):
            copy = f"{index}-{source.name}"
            write_atomically(folder / copy, source.read_bytes())  # a lookup may be reading
            copies.append([step, name, copy])
        entry = {
            "key": identity.key,
            "execution_id": execution_id,
            "created": self.clock().isoformat(),
            "outcome": outcome,
            "property_files": copies,
            "inputs": [asdict(a) for a in identity.inputs],
        }
        path = self.root / f"{identity.key}.json"
        # Two runs in one home may save the same step at once: each writes its own temporary.
        write_atomically(path, json.dumps(entry, indent=2, default=str).encode("utf-8"))


def _pick(arguments: dict[str, Any], dotted: str) -> Any:
    value: Any = arguments
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _s3_uris(value: Any, label: str) -> Iterator[tuple[str, str]]:
    """Every s3:// string, named by the nearest InputName, ChannelName or OutputName."""
    if isinstance(value, dict):
        label = next(
            (str(value[k]) for k in ("InputName", "ChannelName", "OutputName") if k in value),
            label,
        )
        for inner in value.values():
            yield from _s3_uris(inner, label)
    elif isinstance(value, list):
        for inner in value:
            yield from _s3_uris(inner, label)
    elif isinstance(value, str) and value.startswith("s3://"):
        yield label, value


def _values(value: Any, keys: tuple[str, ...]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in keys and isinstance(inner, str):
                yield inner
            yield from _values(inner, keys)
    elif isinstance(value, list):
        for inner in value:
            yield from _values(inner, keys)


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
