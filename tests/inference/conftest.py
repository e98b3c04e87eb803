"""The app over the session's trained model, an in-process ASGI caller, and a live server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from inference.app import InferenceApp, create_app
from inference.config import ServerSettings
from inference.protocol import ServerConfig

FEATURES = [
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
    "year",
]
ROW = "Torgersen,39.1,18.7,181,3750,male,2007"


@pytest.fixture(scope="session")
def app(model_dir: Path) -> InferenceApp:
    return create_app(ServerSettings(model_dir=model_dir, workers=1, max_payload_mb=1))


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def call(
    app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Response:
    """Drive the ASGI app directly, as uvicorn would."""
    return asyncio.run(call_async(app, method, path, body, headers))


async def call_async(
    app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Response:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return Response(
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


@contextlib.contextmanager
def serving(app: InferenceApp) -> Iterator[str]:
    """An app behind a real uvicorn server on a free port; yields its URL."""
    config = ServerConfig(
        app,
        host="127.0.0.1",
        port=0,
        loop="uvloop",
        log_level="warning",
        lifespan="on",
        header_timeout=app.settings.header_timeout,
        body_timeout=app.settings.body_timeout,
        timeout_keep_alive=app.settings.idle_timeout,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:  # however long a busy machine takes, unless it died
            assert thread.is_alive(), "the server stopped before it started listening"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=600)  # a hang, not a slow machine
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture(scope="session")
def live_server(app: InferenceApp) -> Iterator[str]:
    """The session's app behind a real server, for boto3, fuzz and load tests."""
    with serving(app) as url:
        yield url
