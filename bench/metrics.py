"""What Prometheus metrics cost per request: the same app with metrics off and on, in-process.

A whole-server run (bench/serving.py --only ours,ours-metrics) needs a quiet machine; this one
drives the ASGI app directly (parse, predict, format, and for the metrics app the multiprocess
writes) in alternating rounds, so both sides see the same load, and prints the ratio. On a busy
machine that ratio is noisy, so it also times the metrics calls alone (what the app adds per
request) and prints them as a share of a request with metrics off.

    .venv/bin/python bench/metrics.py [--rounds 7] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def requests_per_second(app: Any, body: bytes, count: int) -> float:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "query_string": b"",
        "headers": [(b"content-type", b"text/csv"), (b"content-length", str(len(body)).encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"request failed with {message['status']}")

    async def run() -> float:
        started = time.perf_counter()
        for _ in range(count):
            await app(dict(scope), receive, send)
        return count / (time.perf_counter() - started)

    return asyncio.run(run())


def metric_calls_us(metrics: Any, size: int, rounds: int) -> float:
    """The calls the app makes per request with metrics on, in microseconds (best of rounds)."""
    labels = ["0"] * size

    def calls() -> None:
        metrics.observe_request("/invocations", 200, "text/csv", 0.001, size)
        metrics.observe_predictions(labels)

    return min(timeit.repeat(calls, number=2000, repeat=rounds)) / 2000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        # Multiprocess mode, as `serve --metrics-port` runs it: samples go to mmap'd files.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = scratch
        import logging

        from bench.serving import make_model, payload
        from inference.app import create_app
        from inference.config import ServerSettings

        model_dir = Path(scratch) / "model"
        rows = make_model(model_dir)
        logging.disable(logging.WARNING)  # no access log lines in the measurement
        off = create_app(ServerSettings(model_dir=model_dir, workers=1))
        on = create_app(ServerSettings(model_dir=model_dir, workers=1, metrics_port=9100))
        logging.disable(logging.INFO)
        for size in (1, 100):
            body = payload(rows, size)
            requests_per_second(off, body, 200)  # warm up both
            requests_per_second(on, body, 200)
            rates: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.rounds):
                rates["off"].append(requests_per_second(off, body, args.requests // size or 1))
                rates["on"].append(requests_per_second(on, body, args.requests // size or 1))
            off_rate, on_rate = (statistics.median(rates[k]) for k in ("off", "on"))
            assert on.metrics is not None
            calls_us = metric_calls_us(on.metrics, size, args.rounds)
            print(
                f"{size:>3}-row requests: metrics off {off_rate:>7.0f}/s, on {on_rate:>7.0f}/s, "
                f"ratio on/off {on_rate / off_rate:.3f}x; the metrics calls take {calls_us:.1f} us, "
                f"{calls_us * off_rate / 1e4:.1f}% of a request with metrics off"
            )


if __name__ == "__main__":
    main()
