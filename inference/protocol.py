"""uvicorn's httptools protocol with the deadlines it lacks, and how the server runs it.

uvicorn closes a connection only when it sits idle between requests (``timeout_keep_alive``):
a new connection that never sends a byte, or a request whose headers or body trickle in a byte
at a time (slowloris), is held forever. Here a request's headers must arrive within
``header_timeout`` of its first byte (or of the connection's start) and its body within
``body_timeout`` of its headers; otherwise the connection is closed, with a 408 when no request
is under way. Timers are armed only for requests that span several reads, so a request that
arrives whole (nearly all) costs no timer at all.

``ServerConfig`` carries the two deadlines through uvicorn's config (worker processes receive it
pickled), and ``run`` starts the server as ``uvicorn.run`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from uvicorn import Config, Server
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 20.0
BODY_TIMEOUT = 60.0


class ServerConfig(Config):
    def __init__(
        self,
        *args: Any,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        kwargs["http"] = DeadlineProtocol
        super().__init__(*args, **kwargs)
        self.header_timeout, self.body_timeout = header_timeout, body_timeout


class DeadlineProtocol(HttpToolsProtocol):
    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._header_timeout = getattr(config, "header_timeout", HEADER_TIMEOUT)
        self._body_timeout = getattr(config, "body_timeout", BODY_TIMEOUT)
        self._phase = "headers"  # a new connection owes a request: headers, body, idle
        self._timer: asyncio.TimerHandle | None = None
        self._timed_phase = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Answers go out at once (uvloop does this too; uvicorn's asyncio path may not,
            # and a response split in two segments then waits ~40 ms for a delayed ACK).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # A request cut across reads: give its current part a deadline, once per part.
        if self._phase != "idle" and self._timed_phase != self._phase:
            self._arm(self._phase)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "headers"

    def on_headers_complete(self) -> None:
        self._disarm()
        self._phase = "body"
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = "idle"  # uvicorn's keep-alive timer takes over once the answer is out
        super().on_message_complete()

    def _arm(self, phase: str) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        seconds = self._header_timeout if phase == "headers" else self._body_timeout
        self._timer = self.loop.call_later(seconds, self._expired, phase)
        self._timed_phase = phase

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timed_phase = None, ""

    def _expired(self, phase: str) -> None:
        self._timer, self._timed_phase = None, ""
        if self.transport.is_closing():
            return
        if phase == "body" and self.flow.read_paused:
            self._arm(phase)  # we stopped reading (a pipelined request waits), not the client
            return
        log.info(
            "closing the connection from %s: the request %s did not arrive within %s s",
            f"{self.client[0]}:{self.client[1]}" if self.client else "a client",
            phase,
            self._header_timeout if phase == "headers" else self._body_timeout,
        )
        if phase == "headers":  # no request under way: say why before closing
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                b"content-length: 40\r\nconnection: close\r\n\r\n"
                b"the request headers came in too slowly\r\n"
            )
        self.transport.close()  # a body under way: the app sees the client go (http.disconnect)


class ReusePortSupervisor(Multiprocess):
    """uvicorn's supervisor, but each worker listens on a socket of its own (``SO_REUSEPORT``),
    so the kernel spreads new connections over the workers.

    With one shared socket, the first worker to wake accepts every pending connection (the event
    loop drains the listen queue) and keep-alive keeps them there: wrk's 16 connections opened at
    once landed on one worker in one run of three, and one core served everything. uvicorn hands
    every worker the supervisor's socket list, so each worker's restart is run with its own.
    """

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets=[])
        self.worker_sockets = sockets
        self.processes_num = len(sockets)

    @contextlib.contextmanager
    def _as_worker(self, index: int) -> Any:
        """Run a supervisor step that (re)starts processes as if worker ``index`` were the only one."""
        processes = self.processes
        self.sockets, self.processes = [self.worker_sockets[index]], [processes[index]]
        try:
            yield
        finally:
            processes[index] = self.processes[0]
            self.sockets, self.processes = [], processes

    def init_processes(self) -> None:
        for sock in self.worker_sockets:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        for index in range(len(self.processes)):
            with self._as_worker(index):
                super().keep_subprocess_alive()

    def restart_all(self) -> None:
        for index in range(len(self.processes)):
            with self._as_worker(index):
                super().restart_all()

    def handle_ttin(self) -> None:  # one socket per worker: the count is fixed at start
        log.warning(
            "SIGTTIN ignored: the number of workers is set by SAGEMAKER_MODEL_SERVER_WORKERS"
        )

    def handle_ttou(self) -> None:
        log.warning(
            "SIGTTOU ignored: the number of workers is set by SAGEMAKER_MODEL_SERVER_WORKERS"
        )


def reuse_port_sockets(config: Config, count: int) -> list[socket.socket]:
    """``count`` listening sockets on the config's address, in one SO_REUSEPORT group."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sockets: list[socket.socket] = []
    port = config.port
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((config.host, port))
            port = sock.getsockname()[1]  # port 0: the others join the one the kernel chose
            sock.listen(config.backlog)
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        raise SystemExit(1) from exc
    return sockets


def run(config: ServerConfig) -> None:
    """``uvicorn.run`` for a prepared config: one worker in this process, or a supervisor."""
    if config.workers > 1:
        ReusePortSupervisor(config, reuse_port_sockets(config, config.workers)).run()
    else:
        Server(config).run()
