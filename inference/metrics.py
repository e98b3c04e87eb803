"""Prometheus metrics for the model server, on a port of their own (off by default).

The server runs several worker processes, so the metrics use prometheus-client's multiprocess
mode: ``serve`` gives each server a fresh ``PROMETHEUS_MULTIPROC_DIR`` *before* anything imports
prometheus-client (it picks its value store at import), every worker writes its samples there,
and the serving process answers scrapes with the sum over all workers (``MetricsExporter``).

SageMaker only ever talks to port 8080; leave ``--metrics-port`` / ``MLOPS_METRICS_PORT`` unset
there (the default) and the container answers nothing else. This module imports only
prometheus-client, so the serving image stays light.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    values,
)
from prometheus_client.core import InfoMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

PREFIX = "model_server"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MODEL_VERSION_ENV = "MLOPS_MODEL_VERSION"  # local endpoints pass the registry version
# Request latencies from a fraction of a millisecond (1-row predictions) to the 60 s timeout.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)
ROW_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 100000)
# A regressor's target scale is unknown to the server: signed powers of ten show its magnitude.
VALUE_BUCKETS = tuple(sorted({s * 10.0**e for s in (-1, 1) for e in range(-2, 7)} | {0.0}))
ROUTES = {"/ping": "ping", "/invocations": "invocations", "/execution-parameters": "parameters"}
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def route_of(path: str) -> str:
    """A bounded label for a path: unknown paths must not grow the series without end."""
    if path.startswith("/endpoints/") and path.endswith("/invocations"):
        return "invocations"
    return ROUTES.get(path, "other")


class RequestMetrics:
    """What one worker records; in multiprocess mode the samples land in the shared folder."""

    def __init__(
        self,
        content_types: Sequence[str],
        classifier: bool,
        registry: CollectorRegistry | None = None,
    ) -> None:
        # Never the global registry: apps can coexist (tests). In multiprocess mode the samples
        # go to the shared folder whatever the registry; in-process, scrape ``self.registry``.
        self.registry = registry = registry or CollectorRegistry()
        self._content_types = frozenset(content_types)
        # Label children by (route, status, content type): few, as every label is bounded.
        self._children: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        self._classes: dict[str, Any] = {}
        self.requests = Counter(
            f"{PREFIX}_requests",
            "HTTP requests by route, status code and request content type.",
            ["route", "status", "content_type"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rows = Histogram(
            f"{PREFIX}_payload_rows",
            "Rows per successful invocation.",
            buckets=ROW_BUCKETS,
            registry=registry,
        )
        self.classifier = classifier
        if classifier:
            self.classes = Counter(
                f"{PREFIX}_predicted_class",
                "Predicted labels of a classifier, one count per row.",
                ["label"],
                registry=registry,
            )
        else:
            self.values = Histogram(
                f"{PREFIX}_predicted_value",
                "Predicted values of a regressor, one observation per row.",
                buckets=VALUE_BUCKETS,
                registry=registry,
            )
        # livesum: a worker's 1 leaves the sum when it exits (marked dead), so this is the
        # number of workers alive now.
        self.workers = Gauge(
            f"{PREFIX}_workers",
            "Server worker processes alive.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.workers.set(1)

    def observe_request(
        self, path: str, status: int, content_type: str, seconds: float, rows: int
    ) -> None:
        route = route_of(path)
        kind = content_type if content_type in self._content_types else content_type and "other"
        key = (route, status, kind or "none")
        if key not in self._children:  # labels() is a locked lookup: once per combination
            self._children[key] = (
                self.requests.labels(route, str(status), key[2]),
                self.latency.labels(route),
            )
        counter, latency = self._children[key]
        counter.inc()
        latency.observe(seconds)
        if route == "invocations" and status == 200:
            self.rows.observe(rows)

    def observe_predictions(self, labels: Iterable[Any]) -> None:
        if self.classifier:
            for label, count in Tally(map(str, labels)).items():
                if label not in self._classes:
                    self._classes[label] = self.classes.labels(label)
                self._classes[label].inc(count)
            return
        for value in labels:
            if isinstance(value, int | float) and math.isfinite(value):
                self.values.observe(value)

    def close(self) -> None:
        """A worker leaving cleanly takes its live gauges with it."""
        if os.environ.get(MULTIPROC_ENV):
            mark_process_dead(os.getpid())


def model_version(model_dir: Path) -> dict[str, str]:
    """The served model's identity from its manifest (no model load) and the environment."""
    info = {"version": os.environ.get(MODEL_VERSION_ENV, ""), "sha256": "", "problem_type": ""}
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        info["sha256"] = "unverified"  # a bring-your-own model without a manifest
    else:
        info["sha256"] = str(manifest.get("sha256", ""))[:12]
        info["problem_type"] = str(manifest.get("problem_type", ""))
    info["version"] = info["version"] or info["sha256"]
    return info


class _ModelInfo(Collector):
    """``model_server_model_info``: an Info metric is per process, so the exporter owns it."""

    def __init__(self, labels: dict[str, str]) -> None:
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily(f"{PREFIX}_model", "The model being served.", value=self._labels)


class _AllWorkers(MultiProcessCollector):
    """Sums every worker's samples; first marks dead any worker that died without cleaning up
    (a crash or a kill: uvicorn replaces it), so live gauges count only the living."""

    def __init__(self, registry: CollectorRegistry, path: str) -> None:
        super().__init__(registry, path)
        self._folder = path

    def collect(self) -> Iterable[Metric]:
        for file in Path(self._folder).iterdir():
            match = _LIVE_GAUGE_FILE.match(file.name)
            if match and not _running(int(match.group(1))):
                mark_process_dead(int(match.group(1)), self._folder)
        return super().collect()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


class MetricsExporter:
    """The scrape side, in the serving process: a fresh multiprocess folder, a registry that sums
    the workers, and the HTTP endpoint on its own port. ``close`` stops it and removes the folder.

    ``for_server`` sets the folder in ``os.environ`` before the workers start (they inherit it)
    and switches this process's value store to it (with one worker, the app runs here).
    """

    def __init__(self, folder: str, model_dir: Path) -> None:
        self.folder = folder
        self.registry = CollectorRegistry()
        _AllWorkers(self.registry, folder)
        self.registry.register(_ModelInfo(model_version(model_dir)))
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_server(cls, model_dir: Path, parent: Path | None = None) -> MetricsExporter:
        """``parent``: where to make the folder (a local endpoint's own state; default: the
        temp directory)."""
        if parent:
            parent.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="model-server-metrics-", dir=parent)
        os.environ[MULTIPROC_ENV] = folder
        # prometheus-client picks its value store from the environment at import time, which
        # may be before now: pick it again (``values.ValueClass`` is read at metric creation).
        values.ValueClass = values.get_value_class()
        return cls(folder, model_dir)

    def start(self, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        shutil.rmtree(self.folder, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == self.folder:
            del os.environ[MULTIPROC_ENV]
            values.ValueClass = values.get_value_class()
