"""Local endpoints: the model server from ``inference/`` in a background process per endpoint.

Each endpoint has a folder under ``<home>/endpoints/<name>/`` with ``endpoint.json`` (pid, port,
model version), the unpacked model, the server log and, if enabled, data capture files.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from mlops.errors import MlopsError, NotFound
from mlops.home import Home
from mlops.local import unpack_package
from mlops.registry import ModelPackage, ModelRegistry
from mlops.store import LocalObjectStore

_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # matched in full: no trailing newline
START_TIMEOUT_SECONDS = 60
STOP_GRACE_SECONDS = 30


@dataclass
class EndpointRecord:
    name: str
    pid: int
    port: int
    url: str
    group: str
    version: int
    model_package_arn: str
    model_dir: str
    log_file: str
    started: str
    workers: int
    capture_dir: str | None = None
    pid_started: str = ""  # the process's start time: a reused pid is not our server
    status: str = "InService"
    metrics_url: str | None = None  # Prometheus metrics, when deployed with a metrics port


@dataclass(frozen=True)
class InvokeResult:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str:
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else ""  # field 22 of stat: start time


def _alive(pid: int, started: str = "") -> bool:
    """Our process, still running: not gone, not a zombie, and not a reused pid."""
    fields = _proc_stat(pid)
    if fields is None or fields[0] == "Z":
        return False
    return not started or (len(fields) > 19 and fields[19] == started)


def _group(leader: int, started: str) -> list[int]:
    """The live processes of the server's process group (and session: it was started with
    setsid), including workers left behind by a leader killed with SIGKILL."""
    fields = _proc_stat(leader)
    if fields is not None and started and len(fields) > 19 and fields[19] != started:
        # The leader's pid belongs to another process now. Linux reuses no pid while a group or
        # session still holds it, so our group is gone: never signal the newcomer's.
        return []
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))  # state, ppid, pgrp, session, ...
            if stat and stat[0] != "Z" and stat[2] == stat[3] == str(leader):
                members.append(int(entry.name))
    return members


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _listening_pids(port: int) -> set[int] | None:
    """The processes with a TCP socket listening on ``port`` (Linux /proc), None where unknown."""
    inodes: set[str] = set()
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    for table in tables:
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()  # sl, local address, remote address, state, ..., inode
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    pids: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError), os.scandir(f"/proc/{entry.name}/fd") as fds:
            for fd in fds:
                with contextlib.suppress(OSError):
                    target = str(Path(fd.path).readlink())
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        pids.add(int(entry.name))
                        break
    return pids


def _ours(pid: int, leader: int) -> bool:
    """In the server's session or process group: one of its processes, even an orphan."""
    stat = _proc_stat(pid)  # state, ppid, pgrp, session, ...
    return stat is not None and str(leader) in (stat[2], stat[3])


def _still_ours(port: int, leader: int) -> bool:
    """Whether a process of the stopped server still listens on ``port``. Another program may
    have taken the freed port at once (a parallel test suite does): that one is not ours."""
    if not _port_taken(port):
        return False
    listeners = _listening_pids(port)
    if listeners is None:
        return True  # no /proc to tell whose it is: say so rather than guess
    return any(_ours(pid, leader) for pid in listeners)


def _spawn_detached(argv: list[str], env: dict[str, str], log_file: Path) -> int:
    """Start a server that outlives this command (its own session), logging to ``log_file``.
    posix_spawn rather than Popen: there is no child object to wait for, by design."""
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)


def _exited(pid: int) -> bool:
    """Reap our own child if it died during start-up."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _alive(pid)
    return done == pid


def _ping(port: int, timeout: float = 2.0) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/ping")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


class LocalEndpoints:
    def __init__(self, home: Home, registry: ModelRegistry) -> None:
        self.root = home.root / "endpoints"
        self.store = LocalObjectStore(home.store)
        self.registry = registry

    def _dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise MlopsError(
                f"endpoint name {name!r} must match {_NAME.pattern} (letters, digits, hyphens)"
            )
        return self.root / name

    def _record(self, name: str) -> EndpointRecord:
        path = self._dir(name) / "endpoint.json"
        if not path.exists():
            known = [r.name for r in self.list()]
            raise NotFound(
                f"no local endpoint {name!r}"
                + (
                    f"; there are {known}"
                    if known
                    else "; create one with `mlops endpoint deploy --name NAME`"
                )
            )
        record = EndpointRecord(**json.loads(path.read_text(encoding="utf-8")))
        serving = _alive(record.pid, record.pid_started) and _ping(record.port)
        record.status = "InService" if serving else "Stale"
        return record

    def list(self) -> list[EndpointRecord]:
        if not self.root.exists():
            return []
        return [self._record(p.parent.name) for p in sorted(self.root.glob("*/endpoint.json"))]

    def describe(self, name: str) -> EndpointRecord:
        return self._record(name)

    def choose_package(self, group: str, version: int | None) -> ModelPackage:
        if version is not None:
            package = self.registry.describe_model_package(group, version)
            if package.approval_status != "Approved":
                raise MlopsError(
                    f"{group} version {version} is {package.approval_status}; approve it first: "
                    f"mlops models approve {version}"
                )
            return package
        approved = [
            p for p in self.registry.list_model_packages(group) if p.approval_status == "Approved"
        ]
        if not approved:
            raise MlopsError(
                f"model package group {group!r} has no approved version; "
                "run `mlops models approve VERSION` first"
            )
        return approved[-1]

    def deploy(
        self,
        name: str,
        group: str,
        *,
        version: int | None = None,
        port: int | None = None,
        workers: int = 2,
        capture_percent: float = 0,
        metrics_port: int | None = None,
    ) -> EndpointRecord:
        """``metrics_port``: serve Prometheus metrics there (0: a free port; None: off)."""
        folder = self._dir(name)
        if (folder / "endpoint.json").exists():
            current = self._record(name)
            if current.status == "InService":
                raise MlopsError(
                    f"endpoint {name!r} is already serving version {current.version} at "
                    f"{current.url}; delete it first: mlops endpoint delete {name}"
                )
            self._stop(current)
        if not 0 <= capture_percent <= 100:
            raise MlopsError("--capture-percent must be between 0 and 100")
        if not 1 <= workers <= 64:
            raise MlopsError("--workers must be between 1 and 64")
        package = self.choose_package(group, version)
        model_dir = folder / "model"
        shutil.rmtree(model_dir, ignore_errors=True)
        unpack_package(self.store, package, model_dir)
        if port and _port_taken(port):
            raise MlopsError(f"port {port} is already in use; pick another --port or leave it out")
        port = port or free_port()
        if metrics_port and (metrics_port == port or _port_taken(metrics_port)):
            raise MlopsError(
                f"metrics port {metrics_port} is already in use; pick another --metrics-port "
                "or pass 0 for a free one"
            )
        while metrics_port == 0 or (metrics_port is not None and metrics_port == port):
            metrics_port = free_port()  # the serving port is chosen but not bound yet
        capture_dir = folder / "capture" if capture_percent > 0 else None
        env = {
            **os.environ,
            "MLOPS_ENDPOINT_NAME": name,
            "MLOPS_MODEL_VERSION": str(package.version),  # the metrics' model info
            "LOG_LEVEL": "INFO",
        }
        # The workers' metric files live in the endpoint's folder, not the temp directory: a
        # server killed outright leaves them here, where the next deploy or delete removes them.
        shutil.rmtree(folder / "metrics", ignore_errors=True)
        if metrics_port is not None:
            env["MLOPS_METRICS_DIR"] = str(folder / "metrics")
        if capture_dir:
            env.update(
                MLOPS_CAPTURE_DIR=str(capture_dir), MLOPS_CAPTURE_PERCENT=str(capture_percent)
            )
        log_file = folder / "server.log"
        from inference.serve import serve_args  # here: the server's modules load numpy and pandas

        pid = _spawn_detached(
            [
                sys.executable,
                "-m",
                "inference.serve",
                *serve_args(model_dir, port, workers, host="127.0.0.1", metrics_port=metrics_port),
            ],
            env,
            log_file,
        )
        record = EndpointRecord(
            name=name,
            pid=pid,
            port=port,
            url=f"http://127.0.0.1:{port}",
            group=group,
            version=package.version,
            model_package_arn=package.arn,
            model_dir=str(model_dir),
            log_file=str(log_file),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            workers=workers,
            capture_dir=str(capture_dir) if capture_dir else None,
            pid_started=_start_time(pid),
            metrics_url=f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            # Our process must be the one answering: check it is alive before each ping.
            while not _exited(pid) and not _ping(port, timeout=0.5) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _exited(pid) or not _ping(port, timeout=0.5):
                tail = (
                    log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
                )
                raise MlopsError(
                    f"endpoint {name!r} did not start; last log lines:\n" + "\n".join(tail)
                )
        except BaseException:
            self._stop(record)  # Ctrl-C or a failed start leaves no server behind
            raise
        (folder / "endpoint.json").write_text(
            json.dumps(asdict(record), indent=2), encoding="utf-8"
        )
        return record

    def _stop(self, record: EndpointRecord) -> None:
        """SIGTERM to the server's whole process group (in-flight requests finish), SIGKILL
        after the grace period; then nothing of it may listen on its ports any more."""
        if not _group(record.pid, record.pid_started):
            _exited(record.pid)
            return  # nothing of ours runs: whatever holds the port now is not our server
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _group(record.pid, record.pid_started):
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, sig)
            deadline = time.monotonic() + (STOP_GRACE_SECONDS if sig == signal.SIGTERM else 5)
            while _group(record.pid, record.pid_started) and time.monotonic() < deadline:
                _exited(record.pid)  # reap it if it is our own child
                time.sleep(0.1)
        _exited(record.pid)
        ports = [record.port] + (
            [urlsplit(record.metrics_url).port or 0] if record.metrics_url else []
        )
        still = [port for port in ports if _still_ours(port, record.pid)]
        if still:
            raise MlopsError(
                f"endpoint {record.name!r}: port {still[0]} still accepts connections after its "
                f"server (process group {record.pid}) was stopped; find the process with "
                f"`ss -ltnp 'sport = :{still[0]}'` and stop it"
            )

    def delete(self, name: str) -> EndpointRecord:
        record = self._record(name)
        self._stop(record)
        folder = self._dir(name)
        (folder / "endpoint.json").unlink()
        for state in ("model", "metrics"):  # captures stay, as in S3
            shutil.rmtree(folder / state, ignore_errors=True)
        return record

    def invoke(
        self,
        name: str,
        body: bytes,
        content_type: str,
        accept: str,
        custom_attributes: str | None = None,
    ) -> InvokeResult:
        """POST to the SageMaker Runtime path, as ``invoke_endpoint`` does."""
        record = self._record(name)
        if record.status != "InService":
            raise MlopsError(
                f"endpoint {name!r} is {record.status} (its server is gone); "
                f"redeploy it: mlops endpoint deploy --name {name}"
            )
        headers = {"Content-Type": content_type, "Accept": accept}
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        connection = http.client.HTTPConnection("127.0.0.1", record.port, timeout=60)
        try:
            connection.request(
                "POST", f"/endpoints/{quote(name)}/invocations", body=body, headers=headers
            )
            response = connection.getresponse()
            payload = response.read()
        except OSError as exc:
            raise MlopsError(f"endpoint {name!r} did not answer: {exc}") from exc
        finally:
            connection.close()
        result = InvokeResult(
            response.status,
            response.getheader("content-type", ""),
            payload,
            {k.lower(): v for k, v in response.getheaders()},
        )
        if response.status >= 400:
            message = _error_message(payload)
            error_type = result.headers.get("x-amzn-errortype", "")
            raise MlopsError(f"{error_type or response.status}: {message}")
        return result


def _error_message(payload: bytes) -> Any:
    try:
        return json.loads(payload).get("message", payload.decode(errors="replace"))
    except (ValueError, AttributeError):
        return payload.decode(errors="replace")
