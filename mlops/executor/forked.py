"""Start a job's ``python3 -m module`` in a process forked from a warm one, not a new interpreter.

A job's own work on a small table takes a fraction of a second; a fresh interpreter spends about
1.5 s importing pandas, SciPy and scikit-learn before it starts. A fork server (the standard
library's ``multiprocessing`` forkserver) imports them once, and each job is forked from it: its
own process and process group, its own working directory, environment, argv and stdout, as a
new interpreter would have, without the import wait. Only third-party libraries are preloaded,
never this project's modules, so a job always runs the code on disk.

What a fork keeps from the server, and how a job is set right: the environment (replaced whole),
the temp directory (``tempfile`` forgets the server's), stdio (onto the executor's pipe), signal
handlers (the standard library restores them), ``atexit`` (run before the process ends, as
Python's own exit does). Thread pools: none is started by importing these libraries; the job's
thread budget is applied at run time (``sagemaker_jobs.resources``).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.util
import os
import runpy
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from sagemaker_jobs.resources import MEMORY_ENV

# What the jobs import before they start; an import that fails here is simply done by the job.
PRELOAD = [
    "matplotlib.backends.backend_agg",
    "matplotlib.figure",
    "numpy",
    "onnx",
    "onnxruntime",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.inspection",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "threadpoolctl",
]
DISABLE_ENV = "MLOPS_FORK_JOBS"  # "0": start every job in a new interpreter

_lock = threading.Lock()
_context: multiprocessing.context.ForkServerContext | None = None


def available(python: str, argv: list[str]) -> bool:
    """Whether this command can run forked: this interpreter, ``-m module`` or a script path."""
    if os.environ.get(DISABLE_ENV) == "0" or sys.platform != "linux":
        return False
    if os.path.realpath(python) != os.path.realpath(sys.executable) or len(argv) < 1:
        return False
    return (argv[0] == "-m" and len(argv) >= 2) or (
        argv[0].endswith(".py") and not argv[0].startswith("-")
    )


def _forkserver() -> multiprocessing.context.ForkServerContext:
    global _context
    with _lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _socket_folder()
            _start_server()
            _context = context
        return _context


def _start_server() -> None:
    """Start the server with the jobs' memory environment: its allocators are chosen when it
    starts, and every job forked from it keeps them."""
    previous = {name: os.environ.get(name) for name in MEMORY_ENV}
    os.environ.update(MEMORY_ENV)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _socket_folder() -> None:
    """Put the server's socket in the system's temp folder, for the life of this process.

    ``multiprocessing`` makes it under the temp folder of the moment; the CLI's is under
    ``MLOPS_HOME``, whose path can pass the 107 bytes a Unix socket's path may have, and a
    test's is removed while the server still listens."""
    system = "/tmp" if os.access("/tmp", os.W_OK) else None
    previous, tempfile.tempdir = tempfile.tempdir, system
    try:
        multiprocessing.util.get_temp_dir()  # made once, removed when this process exits
    finally:
        tempfile.tempdir = previous


def warm() -> None:
    """Start the fork server now, so its imports overlap the caller's own work."""
    if os.environ.get(DISABLE_ENV) != "0" and sys.platform == "linux":
        _forkserver()


class ForkedJob:
    """The parts of ``subprocess.Popen`` the executor uses: ``pid``, ``stdout``, ``wait``, ``poll``.

    Safe to wait on from several threads (a stop beside the thread running the job): the fork
    server sends a job's exit status once, so only one thread at a time may read it."""

    def __init__(self, process: BaseProcess, output: socket.socket, argv: list[str]) -> None:
        self._process, self._socket, self.args = process, output, argv
        self._code: int | None = None
        self._reading = threading.Lock()
        assert process.pid is not None
        self.pid: int = process.pid
        self.stdout: Iterator[str] = output.makefile("r", encoding="utf-8", errors="replace")

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._reading.acquire(timeout=-1 if timeout is None else timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        try:
            if self._code is None:
                self._process.join(None if deadline is None else deadline - time.monotonic())
                self._code = self._process.exitcode
        finally:
            self._reading.release()
        if self._code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._code

    def poll(self) -> int | None:
        if self._reading.acquire(blocking=False):
            try:
                if self._code is None:
                    self._code = self._process.exitcode
            finally:
                self._reading.release()
        return self._code

    def close(self) -> None:
        self.stdout.close()  # type: ignore[attr-defined]
        self._socket.close()
        with self._reading:
            if self._code is None:
                self._code = self._process.exitcode
            if self._code is not None:
                self._process.close()


def start(argv: list[str], cwd: str, env: dict[str, str]) -> ForkedJob:
    """Fork ``python3 *argv`` (without the interpreter) from the warm server; output on a socket."""
    ours, theirs = socket.socketpair()
    try:
        process = _forkserver().Process(
            target=_job_main, args=(argv, cwd, env, theirs), name=f"job {' '.join(argv[:2])}"
        )
        with _lock, _caller_main_hidden():
            process.start()
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()  # the child has its own copy
    ours.shutdown(socket.SHUT_WR)
    return ForkedJob(process, ours, argv)


@contextlib.contextmanager
def _caller_main_hidden() -> Iterator[None]:
    """While a job starts, hide the caller's ``__main__`` from ``multiprocessing``.

    It re-imports the parent's main module in every child (so that functions defined there can
    be unpickled). A job needs nothing from it: the import would cost every job the CLI's
    imports, and a caller's script without an ``if __name__ == "__main__"`` guard would run
    again inside each job."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {
        name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            del main.__spec__


def _job_main(argv: list[str], cwd: str, env: dict[str, str], output: socket.socket) -> None:
    """In the forked child: become the job's own process, then run its module as ``__main__``."""
    os.setsid()  # its own process group, as start_new_session gives a subprocess
    for fd in (1, 2):
        os.dup2(output.fileno(), fd)
    output.close()
    for name, fd in (("stdout", 1), ("stderr", 2)):
        raw = io.FileIO(fd, "wb", closefd=False)  # lives as long as the job: no `with`
        stream = io.TextIOWrapper(raw, encoding="utf-8", line_buffering=True)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # the server's TMPDIR is not the job's
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path.insert(0, cwd)  # what `python -m` puts first
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path.insert(0, str(Path(argv[0]).resolve().parent))  # as `python script.py`
            runpy.run_path(argv[0], run_name="__main__")
    finally:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
