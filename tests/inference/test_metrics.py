"""Prometheus metrics: recorded in-process, summed over a real multi-worker server's workers,
parsed with prometheus-client's own parser, and every Grafana query names an exported metric."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LinearRegression

from inference.app import InferenceApp, create_app
from inference.config import ServerSettings, SettingsError, from_env
from inference.metrics import model_version
from inference.serve import main as serve_main
from mlops.cli import main as mlops_main
from mlops.endpoints import LocalEndpoints, free_port
from mlops.home import Home
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore

from .conftest import ROW, call

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboard.json"
CSV = {"content-type": "text/csv"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exposition: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(app: InferenceApp) -> Samples:
    assert app.metrics is not None
    return samples(generate_latest(app.metrics.registry).decode())


def test_metrics_are_off_unless_asked(app: InferenceApp) -> None:
    assert app.metrics is None


def test_a_classifier_counts_requests_rows_and_classes(model_dir: Path) -> None:
    app = create_app(ServerSettings(model_dir=model_dir, workers=1, metrics_port=9100))
    assert call(app, "POST", "/invocations", f"{ROW}\n{ROW}\n{ROW}".encode(), CSV).status == 200
    assert call(app, "POST", "/endpoints/x/invocations", ROW.encode(), CSV).status == 200
    assert call(app, "POST", "/invocations", b"x", {"content-type": "text/plain"}).status == 415
    assert call(app, "POST", "/invocations", b"a,b", CSV).status == 400
    assert call(app, "GET", "/ping").status == 200
    assert call(app, "GET", "/no/such/route").status == 404
    found = scrape(app)
    requests = "model_server_requests_total"
    csv = {"route": "invocations", "content_type": "text/csv"}
    assert value(found, requests, status="200", **csv) == 2
    assert value(found, requests, status="400", **csv) == 1
    assert value(found, requests, route="invocations", status="415", content_type="other") == 1
    assert value(found, requests, route="ping", status="200", content_type="none") == 1
    assert value(found, requests, route="other", status="404", content_type="none") == 1
    # Only successful invocations have rows; every request has a latency.
    assert value(found, "model_server_payload_rows_count") == 2
    assert value(found, "model_server_payload_rows_sum") == 4
    assert value(found, "model_server_request_duration_seconds_count", route="invocations") == 4
    assert sum(v for (n, _), v in found.items() if n == "model_server_predicted_class_total") == 4
    assert value(found, "model_server_predicted_class_total", label="Adelie") >= 1
    assert not any(n.startswith("model_server_predicted_value") for n, _ in found)


@pytest.fixture(scope="module")
def regressor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bring-your-own regressor: model.joblib alone, fed arrays."""
    folder = tmp_path_factory.mktemp("regressor")
    x = np.arange(20, dtype=float).reshape(10, 2)
    joblib.dump(LinearRegression().fit(x, x.sum(axis=1) * 10), folder / "model.joblib")
    return folder


@pytest.fixture(scope="module")
def regressor_exposition(regressor_dir: Path) -> Samples:
    app = create_app(ServerSettings(model_dir=regressor_dir, workers=1, metrics_port=9100))
    body = json.dumps([[0.0, 0.05], [1.0, 2.0], [-50.0, -60.0]]).encode()
    assert (
        call(app, "POST", "/invocations", body, {"content-type": "application/json"}).status == 200
    )
    return scrape(app)


def test_a_regressor_observes_predicted_values(regressor_exposition: Samples) -> None:
    found = regressor_exposition
    # Predictions 0.5, 30 and -1100 land in the signed powers-of-ten buckets.
    assert value(found, "model_server_predicted_value_count") == 3
    assert value(found, "model_server_predicted_value_bucket", le="1.0") == 2
    assert value(found, "model_server_predicted_value_bucket", le="-1000.0") == 1
    assert value(found, "model_server_predicted_value_bucket", le="-10000.0") == 0
    assert not any(n == "model_server_predicted_class_total" for n, _ in found)


def test_model_version_comes_from_the_manifest_or_the_environment(
    model_dir: Path, regressor_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = json.loads((model_dir / "manifest.json").read_text())["sha256"][:12]
    assert model_version(model_dir) == {
        "version": sha,
        "sha256": sha,
        "problem_type": "classification",
    }
    assert model_version(regressor_dir)["sha256"] == "unverified"
    monkeypatch.setenv("MLOPS_MODEL_VERSION", "7")
    assert model_version(model_dir)["version"] == "7"


def test_the_metrics_port_is_its_own(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SettingsError, match=r"MLOPS_METRICS_PORT: .*differ from the serving port"):
        from_env({"MLOPS_METRICS_PORT": "8080"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["--model-dir", str(model_dir), "--host", "127.0.0.1", "--metrics-port", str(port)]
        assert serve_main(argv) == 2
    assert f"cannot serve metrics on port {port}" in capsys.readouterr().err
    # A refused start leaves no trace: no metrics folder, no SM_* settings for later jobs.
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ and "SM_MODEL_DIR" not in os.environ
    same = ["serve", "--model-dir", str(model_dir), "--port", "9100", "--metrics-port", "9100"]
    assert mlops_main(same) == 2
    assert "MLOPS_METRICS_PORT: Value error, must differ" in capsys.readouterr().err


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=120) as response:
        return str(response.read().decode())


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, body, {"Content-Type": "text/csv"}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        return int(response.status)


def _wait_for(check: Any, what: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until ``check()`` holds, however slow the machine: fail only if the server exits
    (or after ten minutes, a hang rather than a slow start)."""
    deadline = time.monotonic() + 600
    while not _holds(check):
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no sign of {what} in ten minutes")
        time.sleep(0.1)


def _holds(check: Any) -> bool:
    try:
        return bool(check())
    except OSError:  # not listening yet, or busy starting a worker
        return False


def _worker_pids(folder: Path) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[1]) for p in folder.glob("gauge_livesum_*.db")}


@pytest.fixture(scope="module")
def metrics_server(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``python -m inference.serve`` with 2 workers and metrics, its temp folder under ``tmp``;
    ready once it answers /ping and both workers have their metrics files. Stopped (killed if it
    will not stop) even when a test fails."""
    tmp = tmp_path_factory.mktemp("server-tmp")
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inference.serve",
            *("--model-dir", str(model_dir), "--port", str(port), "--workers", "2"),
            *("--host", "127.0.0.1", "--metrics-port", str(metrics_port)),
        ],
        env={**os.environ, "TMPDIR": str(tmp), "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
    )
    info = {
        "url": f"http://127.0.0.1:{port}",
        "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
        "tmp": tmp,
        "process": process,
    }
    try:
        _wait_for(lambda: _get(info["url"] + "/ping") == "", "an answer to /ping", process)
        (folder,) = tmp.glob("model-server-metrics-*")
        info["folder"] = folder
        _wait_for(lambda: len(_worker_pids(folder)) == 2, "both workers", process)
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_each_worker_listens_on_a_socket_of_its_own(metrics_server: dict[str, Any]) -> None:
    """SO_REUSEPORT: the kernel spreads new connections over the workers' sockets, so a burst
    of keep-alive connections cannot all land on the one worker that woke first."""
    import psutil

    port = int(metrics_server["url"].rsplit(":", 1)[1])
    listening: dict[int, set[str]] = {}
    for pid in _worker_pids(metrics_server["folder"]):
        fds = [
            c.fd
            for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        listening[pid] = {str(Path(f"/proc/{pid}/fd/{fd}").readlink()) for fd in fds}
    assert len(listening) == 2 and all(len(s) == 1 for s in listening.values()), listening
    first, second = listening.values()
    assert first != second  # one socket each (uvicorn's supervisor shares one between them)


@pytest.mark.slow
def test_one_scrape_sums_every_worker_and_survives_a_dead_one(
    metrics_server: dict[str, Any],
) -> None:
    url, requests = metrics_server["url"] + "/invocations", 40
    with ThreadPoolExecutor(8) as pool:  # many connections: both workers take some
        statuses = list(pool.map(lambda _: _post(url, ROW.encode()), range(requests)))
    assert statuses == [200] * requests
    found = samples(_get(metrics_server["metrics"]))
    ok = {"route": "invocations", "status": "200", "content_type": "text/csv"}
    assert value(found, "model_server_requests_total", **ok) == requests
    assert value(found, "model_server_payload_rows_sum") == requests
    assert value(found, "model_server_workers") == 2
    (info,) = [labels for name, labels in found if name == "model_server_model_info"]
    assert dict(info)["problem_type"] == "classification"

    # A worker killed outright leaves its files; uvicorn starts a new one. The counts it made
    # stay in the totals, and the live-worker gauge counts the living only.
    folder, process = metrics_server["folder"], metrics_server["process"]
    victim = min(_worker_pids(folder))
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: len(_worker_pids(folder) - {victim}) == 2, "the replacement worker", process)
    found = samples(_get(metrics_server["metrics"]))
    assert value(found, "model_server_workers") == 2
    assert value(found, "model_server_requests_total", **ok) == requests
    assert victim not in _worker_pids(folder)


_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_PROMQL_WORDS |= {"and", "or", "unless", "inf", "nan"}


def metric_names(expression: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are not functions, keywords,
    label matchers, grouping labels, ranges or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    return {
        name
        for name, call_ in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)", text)
        if not call_ and name not in _PROMQL_WORDS
    }


def test_metric_names_are_parsed_out_of_promql() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{route="x", i=~"$instance"}'
        "[$__rate_interval]))) / ignoring (label) group_left sum(b_total) > bool 0"
    )
    assert metric_names(expression) == {"a_bucket", "b_total"}


@pytest.mark.slow
def test_every_dashboard_query_names_an_exported_metric(
    metrics_server: dict[str, Any], regressor_exposition: Samples
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(expressions) >= len(dashboard["panels"]) >= 8
    # A labelled series exists once it has a sample: predict once, whatever ran before.
    assert _post(metrics_server["url"] + "/invocations", ROW.encode()) == 200
    exported = {name for name, _ in samples(_get(metrics_server["metrics"]))} | {
        name for name, _ in regressor_exposition
    }
    used = set().union(*map(metric_names, expressions))
    assert used - exported == set(), (
        f"the dashboard queries metrics nobody exports: {used - exported}"
    )
    assert {
        "model_server_requests_total",
        "model_server_request_duration_seconds_bucket",
        "model_server_payload_rows_bucket",
        "model_server_predicted_class_total",
        "model_server_predicted_value_bucket",
        "model_server_model_info",
    } <= used


def test_metrics_keep_serving_light() -> None:
    """Serving imports no training, plotting or statistics stack, and metrics add only
    prometheus-client (the worker imports inference.metrics only when metrics are on)."""
    code = """
import sys
heavy = {"matplotlib", "scipy", "sklearn", "sagemaker", "mlops", "mlflow", "boto3", "typer"}
import inference.app, inference.serve
print(sorted(heavy & {m.split(".")[0] for m in sys.modules}))
print(sorted(m for m in sys.modules if m.startswith("sagemaker_jobs")))
plain = set(sys.modules)
import inference.metrics
added = {m.split(".")[0] for m in set(sys.modules) - plain} - set(sys.stdlib_module_names)
print(sorted(added), sorted(m for m in set(sys.modules) - plain if m.startswith("inference")))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        "[]",
        "['sagemaker_jobs', 'sagemaker_jobs.features']",
        "['inference', 'prometheus_client'] ['inference.metrics']",
    ]


@pytest.mark.slow
def test_a_local_endpoint_exposes_metrics_on_request(
    home: Home, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for item in model_dir.iterdir():
            tar.add(item, arcname=item.name)
    uri = LocalObjectStore(home.store).put(archive, "s3://mlops-local/models/model.tar.gz")
    registry = LocalModelRegistry(home.registry)
    registry.create_model_package(
        "mlops-tabular",
        model_data_url=uri,
        image_uri="img",
        approval_status="Approved",
        metrics={},
        metadata={},
        content_types=[],
        response_types=[],
    )
    deploy = ["endpoint", "deploy", "--name", "watched", "--workers", "1", "--metrics-port", "0"]
    assert mlops_main(deploy) == 0
    try:
        record = LocalEndpoints(home, registry).describe("watched")
        assert record.metrics_url and f"Metrics: {record.metrics_url}" in capsys.readouterr().out
        assert _post(record.url + "/invocations", ROW.encode()) == 200
        found = samples(_get(record.metrics_url))
        assert value(found, "model_server_payload_rows_count") == 1
        (info,) = [dict(labels) for name, labels in found if name == "model_server_model_info"]
        assert info["version"] == "1"
    finally:
        assert mlops_main(["endpoint", "delete", "watched"]) == 0


@pytest.mark.slow
def test_the_metrics_folder_goes_with_the_server(metrics_server: dict[str, Any]) -> None:
    process = metrics_server["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=300) == 0  # a hang, not a slow machine
    # Only the metrics folder is ours to check: onnxruntime leaves a session file (.ses) there.
    assert not list(metrics_server["tmp"].glob("model-server-metrics-*"))
