"""Local endpoints end to end: deploy from the registry, invoke, list, stale detection, delete;
and batch transform through the CLI."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.endpoints import LocalEndpoints
from mlops.errors import MlopsError, NotFound
from mlops.home import Home
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore

ROW = "Torgersen,39.1,18.7,181,3750,male,2007"
GROUP = "mlops-tabular"


@pytest.fixture
def registered(home: Home, model_archive: Path) -> LocalModelRegistry:
    """Two versions of the session's model in the registry; version 2 approved."""
    uri = LocalObjectStore(home.store).put(model_archive, "s3://mlops-local/models/model.tar.gz")
    registry = LocalModelRegistry(home.registry)
    for _ in range(2):
        registry.create_model_package(
            GROUP,
            model_data_url=uri,
            image_uri="img",
            approval_status="PendingManualApproval",
            metrics={},
            metadata={},
            content_types=[],
            response_types=[],
        )
    registry.update_approval_status(GROUP, 2, "Approved", "test")
    return registry


def test_deploy_needs_an_approved_version(home: Home, registered: LocalModelRegistry) -> None:
    endpoints = LocalEndpoints(home, registered)
    with pytest.raises(MlopsError, match="version 1 is PendingManualApproval; approve it first"):
        endpoints.deploy("demo", GROUP, version=1)
    with pytest.raises(MlopsError, match="must match"):
        endpoints.deploy("bad name!", GROUP)
    with pytest.raises(NotFound, match="no local endpoint 'ghost'"):
        endpoints.delete("ghost")


@pytest.mark.slow
def test_endpoint_lifecycle(
    home: Home, registered: LocalModelRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(f"{ROW}\nBiscoe,50,15,220,5000,female,2008\n")
    assert (
        main(["endpoint", "deploy", "--name", "demo", "--workers", "1", "--capture-percent", "100"])
        == 0
    )
    deployed = capsys.readouterr().out
    assert "mlops-tabular version 2" in deployed and "URL: http://127.0.0.1:" in deployed
    try:
        assert main(["endpoint", "invoke", "demo", "--file", str(rows)]) == 0
        assert json.loads(capsys.readouterr().out) == {"predictions": ["Adelie", "Gentoo"]}
        assert (
            main(
                [
                    "endpoint",
                    "invoke",
                    "demo",
                    "--file",
                    str(rows),
                    "--accept",
                    "text/csv",
                    "--probabilities",
                ]
            )
            == 0
        )
        assert capsys.readouterr().out.splitlines()[1].startswith("Gentoo,")
        rows.write_text("1,2\n")
        assert main(["endpoint", "invoke", "demo", "--file", str(rows)]) == 2
        assert "ValidationError: row 1 has 2 values" in capsys.readouterr().err
        assert main(["endpoint", "deploy", "--name", "demo"]) == 2
        assert "already serving version 2" in capsys.readouterr().err
        captured = list((home.root / "endpoints/demo/capture/demo/AllTraffic").rglob("*.jsonl"))
        records = [json.loads(line) for path in captured for line in path.read_text().splitlines()]
        assert len(records) == 2  # the two successful invocations
        assert records[0]["captureData"]["endpointInput"]["encoding"] == "CSV"
    finally:
        assert main(["endpoint", "delete", "demo"]) == 0
    assert "Deleted endpoint demo" in capsys.readouterr().out
    assert main(["endpoint", "list"]) == 0
    assert "demo" not in capsys.readouterr().out


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_a_killed_server_is_stale_and_delete_stops_its_orphaned_workers(
    home: Home, registered: LocalModelRegistry
) -> None:
    endpoints = LocalEndpoints(home, registered)
    record = endpoints.deploy("stale", GROUP, workers=2, metrics_port=0)
    metrics_port = int(str(record.metrics_url).rsplit(":", 1)[1].split("/")[0])
    state = home.root / "endpoints/stale/metrics"
    try:
        # The workers' metric files live in the endpoint's folder, not the temp directory.
        assert list(state.glob("model-server-metrics-*/*.db"))
        os.kill(record.pid, signal.SIGKILL)  # the server process only: its workers live on
        deadline = time.monotonic() + 300  # however busy the machine
        while endpoints.describe("stale").status != "Stale" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert endpoints.describe("stale").status == "Stale"
        with pytest.raises(MlopsError, match="is Stale"):
            endpoints.invoke("stale", ROW.encode(), "text/csv", "application/json")
        assert _listening(record.port)  # orphaned workers still serve
    finally:
        endpoints.delete("stale")
    assert not _listening(record.port) and not _listening(metrics_port)
    assert not state.exists()


def test_transform_scores_files_like_batch_transform(
    home: Home, registered: LocalModelRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    (source / "part").mkdir(parents=True)
    (source / "a.csv").write_text((ROW + "\n") * 500)
    (source / "part" / "b.csv").write_text("Biscoe,50,15,220,5000,female,2008\n" * 3)
    output = tmp_path / "out"
    args = [
        "transform",
        "--model",
        "2",
        "--input",
        str(source),
        "--output",
        str(output),
        "--max-payload-mb",
        "0.002",
    ]
    assert main(args) == 0
    assert "503 records in 2 file(s)" in capsys.readouterr().out
    assert (output / "a.csv.out").read_text().splitlines() == ["Adelie"] * 500
    assert (output / "part" / "b.csv.out").read_text() == "Gentoo\n" * 3
    (source / "a.csv").write_text(ROW + "\n1,2\n")
    failed_output = tmp_path / "failed"
    assert main([*args, "--output", str(failed_output)]) == 2  # the last --output wins
    assert "a.csv, batch 1" in capsys.readouterr().err
    assert not list(failed_output.rglob("a.csv.out*"))  # nothing half-written is left behind
    assert main([*args, "--output", str(source / "out")]) == 2
    assert "is inside the input" in capsys.readouterr().err


@pytest.mark.slow
def test_a_port_in_use_is_refused_and_a_reused_pid_is_not_ours(
    home: Home, registered: LocalModelRegistry
) -> None:
    import socket

    endpoints = LocalEndpoints(home, registered)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(MlopsError, match=f"port {busy.getsockname()[1]} is already in use"):
            endpoints.deploy("busy", GROUP, port=busy.getsockname()[1])
    assert not (home.root / "endpoints/busy/endpoint.json").exists()
    record = endpoints.deploy("reused", GROUP, workers=1)
    path = home.root / "endpoints/reused/endpoint.json"
    saved = json.loads(path.read_text())
    path.write_text(
        json.dumps({**saved, "pid": os.getpid(), "pid_started": "1"})
    )  # as after a reboot
    assert endpoints.describe("reused").status == "Stale"
    endpoints.delete("reused")  # must not signal this test process, whose pid the record now holds
    os.killpg(record.pid, signal.SIGTERM)


def test_a_freed_port_taken_by_another_program_is_not_an_orphan(
    home: Home, registered: LocalModelRegistry
) -> None:
    """Stopping checks that nothing of the server still listens; a port that another program
    took at once (a parallel suite's next server) is not the stopped server's."""
    import socket
    import subprocess
    import sys

    from mlops.endpoints import _still_ours

    with socket.socket() as other:  # another program's server, on the freed port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        # The leader of a stopped server whose session this test's process is not in.
        gone = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
        gone.wait()
        assert not _still_ours(port, gone.pid)
        assert _still_ours(port, os.getpgid(0))  # a listener in the group is the server's
