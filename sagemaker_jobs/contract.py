"""SageMaker container contract: where a job finds its inputs and leaves its outputs.

Inside a SageMaker container every path is under ``/opt/ml``. Outside one (the local
executor, a test, a notebook) the whole tree moves by setting ``MLOPS_OPT_ML`` to another
directory, and the SageMaker toolkit variables (``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``,
``SM_OUTPUT_DATA_DIR``) still win where they are set, as in AWS's framework images.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

OPT_ML = "/opt/ml"
ROOT_ENV = "MLOPS_OPT_ML"
FAILURE_LIMIT = 1024  # SageMaker keeps the first 1024 characters as FailureReason


class JobError(Exception):
    """A job cannot go on; the message is what the user reads as FailureReason."""


@dataclass(frozen=True)
class Paths:
    """The ``/opt/ml`` tree of one job, rooted wherever the environment says."""

    root: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if env is None else env
        return cls(Path(env.get(ROOT_ENV, OPT_ML)))

    def map(self, container_path: str) -> Path:
        """Translate an absolute ``/opt/ml/...`` path into this tree."""
        if container_path != OPT_ML and not container_path.startswith(OPT_ML + "/"):
            raise JobError(f"path {container_path!r} is outside {OPT_ML}; pass a path under it")
        return self.root / container_path[len(OPT_ML) :].lstrip("/")

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    # Training-job layout
    @property
    def hyperparameters_file(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    def channel(self, name: str, env: Mapping[str, str] | None = None) -> Path:
        env = os.environ if env is None else env
        override = env.get(f"SM_CHANNEL_{name.upper()}")
        return Path(override) if override else self.root / "input" / "data" / name

    def model_dir(self, env: Mapping[str, str] | None = None) -> Path:
        env = os.environ if env is None else env
        return Path(env.get("SM_MODEL_DIR") or self.root / "model")

    def output_data_dir(self, env: Mapping[str, str] | None = None) -> Path:
        env = os.environ if env is None else env
        return Path(env.get("SM_OUTPUT_DATA_DIR") or self.root / "output" / "data")


def write_failure(paths: Paths, reason: str) -> None:
    paths.failure_file.parent.mkdir(parents=True, exist_ok=True)
    paths.failure_file.write_text(reason[:FAILURE_LIMIT], encoding="utf-8")


def temporary_name(target: Path) -> Path:
    """A hidden, unique sibling: writers racing on one target never share a temporary."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}")


def write_atomically(target: Path, data: bytes) -> None:
    """Write through a temporary and rename, so no reader sees a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    tmp.write_bytes(data)
    tmp.replace(target)


def write_json(path: Path, payload: object) -> None:
    """Write JSON atomically, so a crash never leaves a half-written file that looks done."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    write_atomically(path, text.encode("utf-8"))


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )


def run_job(name: str, body: Callable[[Paths], None], paths: Paths | None = None) -> int:
    """Run a job body under the container contract and return its exit code.

    A ``JobError`` (bad input, bad configuration) and any unexpected crash both end the same
    way SageMaker expects: the reason in ``output/failure`` and a non-zero exit code.
    """
    from sagemaker_jobs import resources

    configure_logging()
    paths = paths or Paths.from_env()
    paths.failure_file.unlink(missing_ok=True)  # a reason from an earlier run is not this run's
    started, imported = time.perf_counter(), resources.resident_mb()
    try:
        with resources.thread_budget():
            body(paths)
    except JobError as exc:
        log.error("%s failed: %s", name, exc)
        write_failure(paths, str(exc))
        return 1
    except Exception as exc:  # the contract: every crash leaves its reason behind
        log.exception("%s crashed", name)
        write_failure(paths, f"{type(exc).__name__}: {exc}")
        return 2
    log.info(
        "%s finished in %.1f s; peak memory %d MB (%d MB after imports)",
        name,
        time.perf_counter() - started,
        resources.peak_mb(),
        imported,
    )
    return 0
