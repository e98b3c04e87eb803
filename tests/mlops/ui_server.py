"""The console served for a test: uvicorn in a thread on a free port of 127.0.0.1, stopped (and
its port closed) when the block ends, even when the test fails."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import uvicorn

from mlops.endpoints import free_port
from mlops.home import Home
from mlops.target.base import Target
from mlops.ui.app import Console, create_app
from mlops.ui.aws import AwsConsole


@contextlib.contextmanager
def console(home: Home, target: Target | None = None) -> Iterator[str]:
    port = free_port()
    app = create_app(AwsConsole(home, target) if target else Console(home))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    try:
        for _ in range(600):  # up to a minute on a busy machine; started is set once it listens
            if server.started or not thread.is_alive():
                break
            time.sleep(0.1)
        assert server.started, "the console did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode("utf-8")


def post(url: str, form: dict[str, str]) -> tuple[int, str]:
    from urllib.parse import urlencode

    request = urllib.request.Request(url, data=urlencode(form).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode("utf-8")
