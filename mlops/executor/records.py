"""Execution and step records, kept as ``execution.json`` in each run directory.

Their fields follow ``DescribePipelineExecution`` and ``ListPipelineExecutionSteps``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError, NotFound
from sagemaker_jobs.contract import write_atomically

EXECUTION_FILE = "execution.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "Executing"
    start_time: str = field(default_factory=now)
    end_time: str | None = None
    failure_reason: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    log_file: str | None = None
    # The execution whose results this step reused (SageMaker's CacheHitResult), if any.
    cache_hit: str | None = None
    # Why that reuse may differ from what the data says (the bytes behind a URI changed).
    cache_note: str | None = None
    # Lineage of job steps: the image and job code that ran, and what they read and wrote
    # ({"name", "uri", "sha256"} each).
    image: str | None = None
    code_sha256: str | None = None
    inputs: list[dict[str, str]] = field(default_factory=list)
    output_artifacts: list[dict[str, str]] = field(default_factory=list)
    # A Tuning step's training jobs: name, status, hyperparameters, objective, failure reason.
    trials: list[dict[str, Any]] = field(default_factory=list)

    def finish(self, status: str, failure_reason: str | None = None) -> None:
        self.status, self.failure_reason, self.end_time = status, failure_reason, now()

    @property
    def seconds(self) -> float | None:
        if not self.end_time:
            return None
        delta = datetime.fromisoformat(self.end_time) - datetime.fromisoformat(self.start_time)
        return delta.total_seconds()


@dataclass
class ExecutionRecord:
    execution_id: str
    pipeline_name: str
    run_dir: str
    parameters: dict[str, Any]
    status: str = "Executing"
    start_time: str = field(default_factory=now)
    end_time: str | None = None
    failure_reason: str | None = None
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / EXECUTION_FILE

    def save(self) -> None:
        write_atomically(self.path, json.dumps(asdict(self), indent=2).encode("utf-8"))

    def finish(self, status: str, failure_reason: str | None = None) -> None:
        self.status, self.failure_reason, self.end_time = status, failure_reason, now()
        self.save()

    @classmethod
    def load(cls, path: Path) -> ExecutionRecord:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            raw["steps"] = [StepRecord(**s) for s in raw["steps"]]
            return cls(**raw)
        except (ValueError, TypeError, KeyError) as exc:  # truncated, emptied or hand-edited
            problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise MlopsError(
                f"run record {path} is not a valid execution record ({problem}); "
                f"restore the file or delete its run folder {path.parent}"
            ) from exc


def list_executions(runs: Path, project: str | None = None) -> list[ExecutionRecord]:
    """Newest first, as ``ListPipelineExecutions`` returns them; with ``project``, only the
    runs of its pipeline (a project's pipeline carries the project's name)."""
    records = [ExecutionRecord.load(p) for p in runs.glob(f"*/{EXECUTION_FILE}")]
    if project is not None:
        records = [r for r in records if r.pipeline_name == project]
    return sorted(records, key=lambda r: r.start_time, reverse=True)


def find_execution(runs: Path, execution_id: str, project: str | None = None) -> ExecutionRecord:
    """An execution by id (any project's: ids are unique), or a project's ``latest``."""
    if execution_id == "latest":
        records = list_executions(runs, project)
        if not records:
            scope = f" in project {project!r}" if project else ""
            raise NotFound(
                f"no pipeline execution yet{scope}; start one with `mlops pipeline run`"
                + (f" --project {project}" if project else "")
            )
        return records[0]
    path = runs / execution_id / EXECUTION_FILE
    if not path.exists():
        raise NotFound(
            f"no execution {execution_id!r} under {runs}; `mlops pipeline executions` lists them"
        )
    return ExecutionRecord.load(path)
