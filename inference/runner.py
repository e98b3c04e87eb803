"""Inference off the event loop: one thread per server worker, one request at a time, in order.

Parsing, prediction and encoding are CPU work that never yields. Run on the event loop, they
keep it from accepting connections, answering ``/ping`` and closing slow connections for as long
as requests keep arriving (a worker with busy keep-alive clients never got back to ``accept``).
Here they run on one thread that takes requests first come, first served, while the loop stays
free: a new connection or a ``/ping`` waits for the loop to get the GIL (at most the interpreter's
switch interval, 5 ms), not for the queue. One thread, not a pool: the worker processes are the
parallelism, and a second thread would only fight the first for the GIL.

A request that runs past SAGEMAKER_MODEL_SERVER_TIMEOUT is stopped by raising ``RequestTimeout``
inside the thread (a watchdog does it, as a timer signal did when inference ran on the loop), so
the thread and the requests queued behind it live on. Like a signal, it lands at the next Python
instruction: a single native call that never returns is not interrupted.
"""

from __future__ import annotations

import asyncio
import ctypes
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from inference.errors import ModelError

T = TypeVar("T")


class RequestTimeout(ModelError):
    """Inference ran past SAGEMAKER_MODEL_SERVER_TIMEOUT (raised by type: it needs a default)."""

    def __init__(
        self, message: str = "inference ran past SAGEMAKER_MODEL_SERVER_TIMEOUT and was stopped"
    ) -> None:
        super().__init__(message)


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Make ``thread_id`` raise ``exc`` at its next Python instruction (None: cancel that)."""
    target = ctypes.py_object(exc) if exc else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)


class _Job:
    __slots__ = ("args", "fn", "future", "interrupted", "loop", "started")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.fn, self.args, self.loop = fn, args, loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.started = 0.0
        self.interrupted = False

    def settle(self, result: Any, error: BaseException | None) -> None:
        if self.future.done():  # the request went away (client gone, server stopping)
            return
        if error is None:
            self.future.set_result(result)
        else:
            self.future.set_exception(error)


class InferenceThread:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _current between the worker and the watchdog
        self._current: _Job | None = None
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="inference-timeout", daemon=True)
        self._worker.start()
        self._watchdog.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the inference thread, after the requests queued before it."""
        job = _Job(fn, args, asyncio.get_running_loop())
        self._jobs.put(job)
        return await job.future

    def close(self) -> None:
        self._closed.set()
        self._jobs.put(None)
        self._worker.join(timeout=self.timeout + 5)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            result, error = self._one(job)
            job.loop.call_soon_threadsafe(job.settle, result, error)

    def _one(self, job: _Job) -> tuple[Any, BaseException | None]:
        result, error = None, None
        try:
            with self._lock:
                self._current, job.started = job, time.monotonic()
            try:
                result = job.fn(*job.args)
            except BaseException as exc:  # noqa: BLE001 - handed to the request, which answers
                error = exc
            finally:
                with self._lock:
                    self._current = None
                    if job.interrupted:  # it may not have landed yet: it must not outlive the job
                        _raise_in(threading.get_ident(), None)
        except RequestTimeout as late:  # landed in the bookkeeping above, after the job's code
            error = late
        return result, error

    def _watch(self) -> None:
        period = min(1.0, self.timeout / 4)
        while not self._closed.wait(period):
            with self._lock:
                job = self._current
                if (
                    job
                    and not job.interrupted
                    and time.monotonic() - job.started > self.timeout
                    and self._worker.ident
                ):
                    job.interrupted = True
                    _raise_in(self._worker.ident, RequestTimeout)
