"""The server stays reachable under load and lets go of slow or silent connections.

Load and latency numbers live in bench/load.py; these tests only check that answers come (with a
generous timeout) and that connections close, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from inference.app import InferenceApp
from inference.config import ServerSettings
from inference.handler import ModelHandler

from .conftest import ROW, serving

GENEROUS = 30.0  # seconds: only a hung server takes this long


def _address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return str(parsed.hostname), int(parsed.port or 80)


@pytest.fixture
def busy_clients(live_server: str) -> Iterator[list[int]]:
    """16 keep-alive clients posting rows back to back until the test ends; yields their
    request counts, each already above zero (every client's connection was accepted)."""
    host, port = _address(live_server)
    stop, counts = threading.Event(), [0] * 16
    connections = [http.client.HTTPConnection(host, port, timeout=GENEROUS) for _ in counts]
    started = threading.Barrier(len(counts) + 1, timeout=GENEROUS)

    def client(index: int) -> None:
        connection = connections[index]
        while not stop.is_set():
            connection.request(
                "POST", "/invocations", body=ROW, headers={"Content-Type": "text/csv"}
            )
            response = connection.getresponse()
            response.read()
            counts[index] += 1
            if counts[index] == 1:
                started.wait()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(16)]
    try:
        for thread in threads:
            thread.start()
        started.wait()
        yield counts
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=GENEROUS)
        for connection in connections:
            connection.close()


def test_new_connections_are_answered_while_keep_alive_clients_are_busy(
    live_server: str, busy_clients: list[int]
) -> None:
    host, port = _address(live_server)
    before = sum(busy_clients)
    for _ in range(3):
        ping = http.client.HTTPConnection(host, port, timeout=GENEROUS)
        try:
            ping.request("GET", "/ping")
            assert ping.getresponse().status == 200
        finally:
            ping.close()
        newcomer = http.client.HTTPConnection(host, port, timeout=GENEROUS)
        try:
            newcomer.request("POST", "/invocations", body=ROW, headers={"Content-Type": "text/csv"})
            answer = newcomer.getresponse()
            assert (answer.status, answer.read()) == (200, b'{"predictions": ["Adelie"]}')
        finally:
            newcomer.close()
    assert sum(busy_clients) > before  # the keep-alive clients were served all along


class _Gate:
    """A model whose predict waits until the test opens the gate."""

    classes_ = ("a",)

    def __init__(self) -> None:
        self.entered, self.open = threading.Event(), threading.Event()

    def predict(self, data: Any) -> Any:
        self.entered.set()
        assert self.open.wait(GENEROUS)
        return ["a"] * len(data)


def test_ping_is_answered_while_a_prediction_runs() -> None:
    """Inference runs off the event loop: the loop answers /ping while a request is in predict."""
    from .conftest import call_async

    gate = _Gate()
    app = InferenceApp(ModelHandler(gate, None, None), ServerSettings(workers=1))

    async def scenario() -> tuple[int, int, bool]:
        invocation = asyncio.ensure_future(
            call_async(app, "POST", "/invocations", b"1", {"content-type": "text/csv"})
        )
        await asyncio.to_thread(gate.entered.wait, GENEROUS)
        ping = await call_async(app, "GET", "/ping")
        still_predicting = not invocation.done()
        gate.open.set()
        return ping.status, (await invocation).status, still_predicting

    try:
        assert asyncio.run(scenario()) == (200, 200, True)
    finally:
        gate.open.set()
        app.inference.close()


@pytest.fixture(scope="module")
def strict_server(app: InferenceApp) -> Iterator[tuple[str, int]]:
    """The session's model behind a server with one-second header, body and idle deadlines."""
    settings = ServerSettings(workers=1, header_timeout=1, body_timeout=1, idle_timeout=1)
    strict = InferenceApp(app.handler, settings)
    try:
        with serving(strict) as url:
            yield _address(url)
    finally:
        strict.inference.close()


def _closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    sock.settimeout(GENEROUS)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (b"", b"HTTP/1.1 408"),  # a silent new connection
        (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Ty", b"HTTP/1.1 408"),  # slowloris
        (  # headers done, body never finished: nobody to answer
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 100\r\n\r\nTorgersen,",
            b"",
        ),
        (  # answered, then idle on keep-alive
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {len(ROW)}\r\n\r\n{ROW}".encode(),
            b"HTTP/1.1 200",
        ),
    ],
    ids=["silent", "slow-headers", "slow-body", "idle"],
)
def test_slow_or_silent_connections_are_closed(
    strict_server: tuple[str, int], sent: bytes, answer: bytes
) -> None:
    with socket.create_connection(strict_server, timeout=GENEROUS) as sock:
        sock.sendall(sent)
        received = _closed_by_server(sock)
    assert received.startswith(answer) and (answer or received == b"")
    with socket.create_connection(strict_server, timeout=GENEROUS) as sock:  # still serving
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
