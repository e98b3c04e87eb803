"""Load and fairness benchmark for the model server, comparing source trees side by side.

Every case runs against each tree in turn, interleaved (`--repeats` rounds), on the same model,
port setup and machine, so a busy shared machine hits both alike:

- fairness: 64 keep-alive clients for 20 s with one CPU core kept busy beside them; p50, p99,
  max, requests not answered within 5 s, and `/ping` on a new connection every 0.25 s meanwhile;
- big-payloads: two maximum-size (6 MB) CSV requests at once, with the same `/ping` probe;
- slowloris: connections that send half a header, or nothing, and how many the server still
  holds after the header timeout;
- throughput: bench/serving.py's cases for our server (wrk, 1 and 100 rows, 1/16/64 clients);
- handoff (this tree only): the CPU time a request's trip to the inference thread costs.

The fairness, big-payload and slowloris cases serve the pipeline's own model trained on the
demo data (the model `mlops` deploys); throughput uses bench/serving.py's bring-your-own model.

    .venv/bin/python bench/load.py --baseline main          # main's server against this tree
    .venv/bin/python bench/load.py --cases fairness --seconds 20 --repeats 2

`load()` is the reusable part: N keep-alive clients posting one body for some seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UNANSWERED_AFTER = 5.0  # seconds: a request slower than this counts as not answered
PING_EVERY = 0.25
PING_GIVE_UP = 10.0


# The load generator ---------------------------------------------------------------------------
@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    errors: int = 0  # answers other than 200, and dropped connections
    outstanding: list[float] = field(default_factory=list)  # ages of requests cut off at the end
    seconds: float = 0.0

    @property
    def unanswered(self) -> int:
        """Requests that took longer than UNANSWERED_AFTER, or never came back at all."""
        late = sum(1 for t in self.latencies if t > UNANSWERED_AFTER)
        return late + sum(1 for age in self.outstanding if age > UNANSWERED_AFTER)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        nan = float("nan")
        return {
            "requests": len(self.latencies),
            "rps": len(self.latencies) / self.seconds if self.seconds else 0.0,
            "p50_ms": ordered[len(ordered) // 2] * 1000 if ordered else nan,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
            if ordered
            else nan,
            "max_ms": max([*ordered[-1:], *self.outstanding, 0]) * 1000,
            "unanswered_5s": self.unanswered,
            "errors": self.errors,
        }


def _request(path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _client(
    port: int, request: bytes, deadline: float, result: LoadResult, cut: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:  # at least one request, however short the run
            started = time.monotonic()
            writer.write(request)
            try:
                status = await asyncio.wait_for(_read_response(reader), cut - started)
            except TimeoutError:
                result.outstanding.append(time.monotonic() - started)
                return
            except (OSError, asyncio.IncompleteReadError):
                result.errors += 1
                return
            result.latencies.append(time.monotonic() - started)
            if status != 200:
                result.errors += 1
            if time.monotonic() >= deadline:
                return
    finally:
        writer.close()


async def _load(
    port: int,
    path: str,
    body: bytes,
    content_type: str,
    clients: int,
    seconds: float,
    give_up: float,
) -> LoadResult:
    result = LoadResult()
    started = time.monotonic()
    deadline = started + seconds
    cut = deadline + give_up  # a request still waiting then is written off as never answered
    request = _request(path, body, content_type)
    await asyncio.gather(
        *(_client(port, request, deadline, result, cut) for _ in range(clients)),
        return_exceptions=False,
    )
    result.seconds = time.monotonic() - started
    return result


def load(
    port: int,
    body: bytes,
    *,
    clients: int = 64,
    seconds: float = 20,
    path: str = "/invocations",
    content_type: str = "text/csv",
    give_up: float = UNANSWERED_AFTER + 1,
) -> LoadResult:
    """N keep-alive clients, each posting ``body`` again as soon as its answer arrives; a
    request still unanswered ``give_up`` seconds after the run is cut off."""
    return asyncio.run(_load(port, path, body, content_type, clients, seconds, give_up))


# Probes beside the load (own processes: the load generator's loop must not delay them) -------
def _ping_once(port: int) -> float:
    started = time.monotonic()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PING_GIVE_UP)
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        connection.close()
        ok = response.status == 200
    except OSError:
        ok = False
    return time.monotonic() - started if ok else float("inf")


def _probe(port: int, seconds: float, out: multiprocessing.Queue[list[float]]) -> None:
    times, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(_ping_once(port))
        time.sleep(PING_EVERY)
    out.put(times)


def _spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


@contextlib.contextmanager
def beside(port: int, seconds: float, busy_core: bool) -> Iterator[list[float]]:
    """A /ping prober on new connections (and a process spinning one core) during the block;
    the list it yields holds the ping latencies once the block ends."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[float]] = context.Queue()
    prober = context.Process(target=_probe, args=(port, seconds, queue))
    hog = context.Process(target=_spin, args=(seconds + 1,)) if busy_core else None
    pings: list[float] = []
    for process in filter(None, (hog, prober)):
        process.start()
    try:
        yield pings
        pings.extend(queue.get(timeout=seconds + PING_GIVE_UP + 30))
    finally:
        for process in filter(None, (hog, prober)):
            process.join(timeout=seconds + PING_GIVE_UP + 5)
            if process.is_alive():
                process.kill()


def ping_summary(pings: list[float]) -> dict[str, float]:
    answered = [p for p in pings if p != float("inf")]
    return {
        "pings": len(pings),
        "ping_p50_ms": statistics.median(answered) * 1000 if answered else float("nan"),
        "ping_max_ms": max(pings) * 1000 if pings else float("nan"),
        "pings_over_2s": sum(1 for p in pings if p > 2),
    }


# Servers ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(tree: Path, model_dir: Path, workers: int = 2, env: dict[str, str] | None = None):
    """``python -m inference.serve`` from ``tree``'s sources; yields its port."""
    from bench.serving import wait_ready

    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "inference.serve", "--model-dir", str(model_dir)),
            *("--port", str(port), "--workers", str(workers), "--host", "127.0.0.1"),
        ],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), "LOG_LEVEL": "WARNING", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready(port, process)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def pipeline_model(directory: Path) -> None:
    """The pipeline's own model on the demo data (20 boosting iterations, as the suite's), saved
    as the Train job saves it: its parsing (categories, pandas) is what big payloads cost."""
    import pandas as pd

    from mlops.local import DEMO_DATA
    from sagemaker_jobs import artifacts, data
    from sagemaker_jobs.hyperparameters import Hyperparameters
    from sagemaker_jobs.model import build_model

    table, schema = data.prepare(pd.read_csv(DEMO_DATA), data.DataSpec(target="species"))
    model = build_model(schema, Hyperparameters(n_estimators=20))
    model.fit(table[list(schema.features)], table[schema.target])
    artifacts.save(model, schema, directory, {})


ROW = b"Torgersen,39.1,18.7,181,3750,male,2007\n"


# Cases --------------------------------------------------------------------------------------
def fairness(port: int, body: bytes, seconds: float, clients: int = 64) -> dict[str, float]:
    with beside(port, seconds, busy_core=True) as pings:
        result = load(port, body, clients=clients, seconds=seconds)
    return {**result.summary(), **ping_summary(pings)}


def big_payloads(port: int, max_mb: float = 6) -> dict[str, float]:
    """Two maximum-size CSV requests at once, /ping probed on new connections meanwhile."""
    body = ROW * int(max_mb * 1024 * 1024 // len(ROW) - 1)
    seconds = 15.0
    with beside(port, seconds, busy_core=False) as pings:
        result = load(port, body, clients=2, seconds=0.01, give_up=60)  # one request each
    summary = result.summary()
    pinged = {f"big_{k}": v for k, v in ping_summary(pings).items()}
    return {"big_max_ms": summary["max_ms"], "big_errors": summary["errors"]} | pinged


def slowloris(port: int, connections: int = 300, wait: float = 25.0) -> dict[str, float]:
    """Half-sent headers and silent connections: how many does the server still hold later?"""
    sockets = []
    try:
        for i in range(connections):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:
                sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
            sockets.append(sock)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # a byte now and then, as slowloris does
            for sock in sockets[1::2]:
                with contextlib.suppress(OSError):
                    sock.send(b"X")
            time.sleep(1)
        held = 0
        for sock in sockets:
            sock.setblocking(False)
            try:
                sock.recv(1024)  # EOF (b"") or a 408 answer: the server let go
            except BlockingIOError:
                held += 1  # nothing to read, no EOF: the server still holds it open
            except OSError:
                pass  # reset: the server let go
        return {"slow_connections": connections, "still_held": held, "after_s": wait}
    finally:
        for sock in sockets:
            sock.close()


def _cpu_ticks_by_listener(port: int) -> dict[int, int]:
    """CPU ticks used so far by each process that holds a socket on ``port`` (the workers)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            links = {str(fd.readlink()) for fd in (entry / "fd").iterdir()}
            if any(f"socket:[{inode}]" in links for inode in inodes):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                ticks[int(entry.name)] = int(stat[11]) + int(stat[12])  # utime + stime
    return ticks


def throughput(port: int, X: Any, seconds: float, work: Path) -> dict[str, float]:
    """bench/serving.py's cases for our server (wrk), on its bring-your-own model; and how the
    1-row, 16-client case's CPU split over the workers (1.0: one worker did all the work)."""
    from bench.serving import CLIENTS, ROWS, payload, wrk

    out = {}
    for rows in ROWS:
        for clients in CLIENTS:
            before = _cpu_ticks_by_listener(port)
            m = wrk(port, "/invocations", payload(X, rows), "text/csv", clients, seconds, work)
            used = [t - before.get(pid, 0) for pid, t in _cpu_ticks_by_listener(port).items()]
            out[f"rps_{rows}row_{clients}c"] = m["rps"]
            out[f"p99_ms_{rows}row_{clients}c"] = m["p99"]
            if (rows, clients) == (1, 16):
                out["busiest_worker_share_1row_16c"] = max(used) / max(1, sum(used))
    return out


def _nothing() -> None:
    pass


def handoff(jobs: int = 20_000) -> dict[str, float]:
    """What moving a request to the inference thread costs: CPU time (all threads) per request
    for a trivial job through ``InferenceThread.run`` against the same call made inline."""
    import uvloop

    from inference.runner import InferenceThread

    runner = InferenceThread(timeout=60)

    async def through_thread() -> None:
        for _ in range(jobs):
            await runner.run(_nothing)

    async def inline() -> None:
        for _ in range(jobs):
            _nothing()
            await asyncio.sleep(0)  # a request's own trip through the loop, in both

    out = {}
    try:
        for name, scenario in (("inline", inline), ("thread", through_thread)):
            cpu, wall = time.process_time(), time.perf_counter()
            uvloop.run(scenario())  # the server's loop
            out[f"handoff_{name}_cpu_us"] = (time.process_time() - cpu) / jobs * 1e6
            out[f"handoff_{name}_wall_us"] = (time.perf_counter() - wall) / jobs * 1e6
    finally:
        runner.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", help="a git revision whose server to measure beside ours")
    parser.add_argument("--cases", default="handoff,fairness,slowloris,big-payloads,throughput")
    parser.add_argument("--seconds", type=float, default=20, help="fairness run length")
    parser.add_argument("--wrk-seconds", type=float, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    from bench.serving import make_model, payload

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        trees = {}
        if args.baseline:
            base = work / "baseline"
            base.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline, "inference", "sagemaker_jobs"],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            trees[args.baseline] = base
        trees["this tree"] = ROOT
        byo = work / "byo-model"
        X = make_model(byo)  # bench/serving.py's: 100 trees over 30 numbers, ~0.5 ms a call
        pipeline = work / "pipeline-model"
        if "big-payloads" in cases:
            pipeline_model(pipeline)
        if "handoff" in cases:
            print(f"this tree: {json.dumps(handoff())}", flush=True)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for round_ in range(args.repeats):
            for name, tree in trees.items():
                row: dict[str, float] = {}
                with server(tree, byo) as port:
                    if "fairness" in cases:
                        row |= fairness(port, payload(X, 1), args.seconds)
                    if "slowloris" in cases:
                        row |= slowloris(port)
                    if "throughput" in cases:
                        row |= throughput(port, X, args.wrk_seconds, work)
                if "big-payloads" in cases:
                    with server(tree, pipeline) as port:
                        row |= big_payloads(port)
                results[name].append(row)
                print(f"round {round_ + 1}, {name}: {json.dumps(row)}", flush=True)
        report(results)


def report(results: dict[str, list[dict[str, float]]]) -> None:
    names = list(results)
    keys = list(results[names[-1]][0])
    print(f"\n{'metric (median over rounds)':<28}" + "".join(f"{n:>16}" for n in names))
    for key in keys:
        cells = []
        for name in names:
            values = [r[key] for r in results[name] if key in r]
            cells.append(f"{statistics.median(values):>16.1f}" if values else f"{'-':>16}")
        print(f"{key:<28}" + "".join(cells))


if __name__ == "__main__":
    main()
