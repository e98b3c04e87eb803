"""Running one job the way SageMaker runs its container, as a local child process.

The job sees its own ``/opt/ml`` at ``<run>/steps/<step>/opt/ml``; its output goes to the step's
``log.txt`` line by line; a failure's reason is the job's ``/opt/ml/output/failure``. Stopping
follows SageMaker: SIGTERM to the job's process group, SIGKILL after the grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, cast

import sagemaker_jobs
from mlops.executor import forked
from mlops.executor.outcomes import StepFailed
from sagemaker_jobs.contract import ROOT_ENV, Paths
from sagemaker_jobs.resources import MEMORY_ENV

# What the project image does when started with a command (see the Dockerfile): SageMaker
# training runs `docker run IMAGE train`; here the same module runs in a child process.
IMAGE_COMMANDS = {"train": ["-m", "sagemaker_jobs.train", "train"]}
PYTHON_NAMES = {"python", "python3"}
STOP_GRACE_SECONDS = 30  # SageMaker's SIGTERM-to-SIGKILL grace


class Job(Protocol):
    """A running job: a ``subprocess.Popen`` or a ``forked.ForkedJob``."""

    pid: int
    stdout: Iterator[str]

    def wait(self, timeout: float | None = None) -> int: ...

    def poll(self) -> int | None: ...


Started = Callable[[Job], None]


def opt_ml(step_dir: Path) -> Paths:
    """Each job step's container sees its own /opt/ml at <run>/steps/<step>/opt/ml."""
    return Paths(step_dir / "opt" / "ml")


def command(name: str, argv: list[Any], python: str) -> list[str]:
    """A container's ``python3 ...`` entry point as a command for this interpreter."""
    if not argv or argv[0] not in PYTHON_NAMES:
        raise StepFailed(
            name, f"entry point {argv[:3]} is not a python3 command; cannot run locally"
        )
    return [python, *(str(a) for a in argv[1:])]


def run_container(
    name: str,
    argv: list[str],
    step_dir: Path,
    env: dict[str, str],
    log_line: Callable[[str, str], None],
    started: Started | None = None,
) -> None:
    """Run one job as SageMaker would run the container, and turn its failure into a reason.

    ``started`` sees the child process: a caller running jobs in threads stops them itself."""
    paths = opt_ml(step_dir)
    paths.failure_file.unlink(missing_ok=True)
    project = str(Path(sagemaker_jobs.__file__).resolve().parent.parent)
    # The caller's own SM_* variables would redirect the job's channels and model dir.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k != ROOT_ENV}
    child_env = {
        **inherited,
        **MEMORY_ENV,  # as the project image's ENV sets it
        **env,
        ROOT_ENV: str(paths.root),
        "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = step_dir / "log.txt"
    with log_path.open("w", encoding="utf-8") as log, _start(argv, step_dir, child_env) as child:
        if started:
            started(child)
        try:
            for line in child.stdout:
                log.write(line)
                log_line(name, line.rstrip("\n"))
            code = child.wait()
        except KeyboardInterrupt:
            stop(child)
            raise
    if code != 0:
        reason = (
            paths.failure_file.read_text(encoding="utf-8").strip()
            if paths.failure_file.exists()
            else ""
        )
        raise StepFailed(name, reason or f"exited with code {code}; see {log_path}")


@contextlib.contextmanager
def _start(argv: list[str], cwd: Path, env: dict[str, str]) -> Iterator[Job]:
    """The job's process: forked from the warm server where it can be, else a new interpreter."""
    if forked.available(argv[0], argv[1:]):
        job = forked.start(argv[1:], str(cwd), env)
        try:
            yield job
        finally:
            job.close()
        return
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C reaches us; we stop the job the SageMaker way
    ) as child:
        assert child.stdout is not None
        yield cast(Job, child)


def _signal_group(child: Job, signum: int) -> None:
    """Signal the job's process group; a forked job may not have made it yet, so then the job."""
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)


def terminate(child: Job) -> None:
    """SIGTERM the job's process group, without waiting."""
    _signal_group(child, signal.SIGTERM)


def stop(child: Job) -> None:
    """SIGTERM the job's process group, then SIGKILL after the grace period."""
    _signal_group(child, signal.SIGTERM)
    try:
        child.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        _signal_group(child, signal.SIGKILL)
        child.wait()


def stop_all(children: list[Job]) -> None:
    """SIGTERM every job at once, then give each the grace SageMaker gives before SIGKILL."""
    for child in children:
        terminate(child)
    for child in children:
        stop(child)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI cancel, `kill`, `timeout`) raises KeyboardInterrupt, as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
