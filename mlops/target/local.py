"""The local target: runs, store, registry and endpoints under MLOPS_HOME."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.errors import NotFound
from mlops.home import Home
from mlops.registry.base import ModelPackage, ModelRegistry
from mlops.registry.local import LocalModelRegistry
from mlops.store import LocalObjectStore
from mlops.target.base import (
    DEFAULT_PROJECT,
    EndpointView,
    ExecutionRow,
    ShowSteps,
    StepRow,
    TargetKind,
)

if TYPE_CHECKING:
    from mlops.endpoints import LocalEndpoints
    from mlops.executor.records import StepRecord
    from mlops.lineage import Lineage
    from mlops.model_card import VersionFiles
    from mlops.monitoring_sources import CaptureFiles
    from mlops.tracking import ExecutionSummary


class LocalTarget:
    """Scoped to one project: its model package group, and the runs of its pipeline name."""

    kind = TargetKind.local
    stage_name: str | None = None

    def __init__(self, home: Home, project: str = DEFAULT_PROJECT) -> None:
        self.home, self.project = home, project
        self.default_group = project
        self.registry: ModelRegistry = LocalModelRegistry(home.registry)
        self.store = LocalObjectStore(home.store)

    def _endpoints(self) -> LocalEndpoints:
        from mlops.endpoints import LocalEndpoints

        return LocalEndpoints(self.home, self.registry)

    # pipeline -----------------------------------------------------------------------------
    def executions(self, limit: int) -> list[ExecutionRow]:
        from mlops.executor.records import list_executions
        from mlops.registry.projects import of_execution

        rows = []
        for record in list_executions(self.home.runs, self.project)[:limit]:
            trained = of_execution(record, self.store)
            rows.append(
                ExecutionRow(
                    record.execution_id,
                    record.status,
                    record.start_time,
                    f"{sum(s.seconds or 0 for s in record.steps):.1f}",
                    record.failure_reason or "",
                    trained.dataset,
                    trained.target,
                    trained.problem_type,
                )
            )
        return rows

    def steps(self, execution: str, show: ShowSteps, *, watch: bool, interval: float) -> None:
        """A local run's record as it stands (a local run is followed where it runs)."""
        from mlops.executor.records import find_execution

        record = find_execution(self.home.runs, execution, self.project)
        show(record.execution_id, record.status, [row for s in record.steps for row in _rows(s)])

    def upload(self, source: Path) -> str:
        from mlops.local import upload_dataset

        return upload_dataset(self.store, source)

    # endpoints ----------------------------------------------------------------------------
    def endpoint(self, name: str) -> EndpointView:
        record = self._endpoints().describe(name)
        details = [("URL", f"{record.url} (pid {record.pid}, started {record.started})")]
        if record.metrics_url:
            details.append(("Metrics", record.metrics_url))
        details.append(("Model package", record.model_package_arn))
        return EndpointView(record.name, record.status, details)

    def invoke(
        self, name: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None
    ) -> bytes:
        return self._endpoints().invoke(name, body, content_type, accept, custom_attributes).body

    # tracking, model documents, lineage ---------------------------------------------------
    def tracking_summary(
        self, execution: str, scratch: Path, experiment: str | None
    ) -> ExecutionSummary:
        from mlops.executor.records import find_execution
        from mlops.local import local_settings
        from mlops.tracking import summarize_local

        return summarize_local(
            find_execution(self.home.runs, execution, self.project),
            self.store,
            experiment=experiment or local_settings("unknown", project=self.project).pipeline_name,
            registry=self.registry,
        )

    def version_files(self, package: ModelPackage) -> VersionFiles:
        from mlops.model_card import LocalVersionFiles

        return LocalVersionFiles(self.home, package)

    def lineage(self, group: str, version: int) -> Lineage:
        from mlops.lineage import local_lineage

        return local_lineage(self.home, group, version)

    # monitoring ---------------------------------------------------------------------------
    def baseline_dir(self, package: ModelPackage, into: Path | None) -> tuple[Path, str]:
        from mlops import monitoring_sources as sources

        if package.drift_baseline:
            found = sources.local_baseline(self.store, package)
            return (sources.copy_baseline(found, into) if into else found), "registered"
        scratch = self.home.root / "monitoring" / "baselines" / package.group / str(package.version)
        return sources.recompute_baseline(self.store, package, into or scratch), "recomputed"

    def served_package(self, endpoint: str) -> ModelPackage:
        path = self.home.root / "endpoints" / endpoint / "endpoint.json"
        if not path.exists():
            raise NotFound(
                f"no local endpoint {endpoint!r} to take the model version from (a deleted "
                "endpoint keeps its captures): pass --baseline VERSION or --baseline DIR"
            )
        record = json.loads(path.read_text(encoding="utf-8"))
        return self.registry.describe_model_package(record["group"], int(record["version"]))

    def captures(self, endpoint: str, max_files: int) -> CaptureFiles:
        from mlops.monitoring_sources import local_captures

        return local_captures(self.home, endpoint, max_files)


def _rows(step: StepRecord) -> list[StepRow]:
    """A step, and under a Tuning step its training jobs."""
    rows = [
        StepRow(
            step.name,
            step.type,
            step.status,
            f"{step.seconds or 0:.2f}",
            step.cache_hit or "",
            step.failure_reason or ", ".join(f"{k}={v}" for k, v in step.outputs.items()),
        )
    ]
    for trial in step.trials:
        values = ", ".join(f"{k}={v}" for k, v in trial["hyperparameters"].items())
        result = (
            f"objective={trial['objective']}"
            if trial["status"] == "Completed"
            else trial["failure_reason"]
        )
        rows.append(
            StepRow(
                f"  {trial['name'].rsplit('-', 1)[-1]}",
                "Trial",
                trial["status"],
                f"{trial['seconds'] or 0:.2f}",
                "",
                f"{values}: {result}",
            )
        )
    return rows
