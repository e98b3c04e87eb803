"""Serving benchmark: the pipeline's own model, compiled and not, against scikit-learn in-process
and a stand-in of the SageMaker scikit-learn container stack, all measured in one run.

Models (trained here, in a temp folder):
- demo: the pipeline's model on the demo data (penguins; 200 boosting iterations, 3 classes);
- wide: the pipeline's model on a synthetic table of 32 numeric and 5 categorical columns
  (250 boosting iterations, 3 classes);
- byo: a bring-your-own 100-tree GradientBoostingClassifier over 30 numbers (model.joblib only).

Servers (2 workers each, 127.0.0.1, the same wrk load for all):
- compiled: ``python -m inference.serve`` on the package with its compiled form;
- sklearn: the same server on the same package trained with compiled_inference=false;
- sagemaker-stack: nginx in front of gunicorn with 2 gevent workers running Flask over a unix
  socket, as AWS's sagemaker-scikit-learn-container / sagemaker-containers start it, with a
  user inference script that reads the CSV into a DataFrame and calls ``predict``.
Baselines in this process, one thread: ``in-process sklearn`` (the same user script: read CSV,
``predict``, encode JSON) and ``in-process compiled`` (our handler's compiled path).

A correctness gate first checks that every server returns the in-process scikit-learn labels.
The byo case repeats ours against the stack (``--repeats``), with the CPU time the servers and
wrk used (the load generator shares the cores).

    apt-get install wrk nginx                          # once
    pip install --target ~/.cache/mlops-bench gevent   # the stack's worker class, bench only
    .venv/bin/python bench/serving.py [--seconds 5] [--repeats 5] [--models demo,wide,byo]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# One OpenMP thread, set before scikit-learn loads its runtime: the in-process baselines are
# single-threaded, and the servers' workers are the parallelism (inference.serve does the same).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import joblib  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402

from inference.handler import model_fn  # noqa: E402
from inference.serve import serve_args  # noqa: E402

N_FEATURES = 30
CLIENTS = (1, 16, 64)  # bench/load.py's throughput case uses these
ROWS = (1, 100)
CASES = ((1, 1), (1, 16), (100, 16))  # (rows, clients) measured per model and server
GEVENT_DIR = Path.home() / ".cache" / "mlops-bench"

# The user inference script a SageMaker scikit-learn user writes for a pipeline model.
STACK_APP = """
import io, json, joblib, numpy as np, pandas as pd
from flask import Flask, Response, request

model = joblib.load({model!r})
FEATURES = {features!r}
TEXT = {text!r}
app = Flask(__name__)


@app.route("/ping")
def ping():
    return Response(status=200)


@app.route("/invocations", methods=["POST"])
def invocations():
    body = request.get_data().decode()
    if FEATURES:
        data = pd.read_csv(io.StringIO(body), header=None, names=FEATURES,
                           dtype={{name: str for name in TEXT}})
    else:  # the container's default decoder for a bare array model
        data = np.genfromtxt(io.StringIO(body), delimiter=",").reshape(-1, model.n_features_in_)
    return Response(json.dumps(model.predict(data).tolist()), mimetype="application/json")
"""

# sagemaker-containers' etc/nginx.conf.template, with the port and the socket filled in.
NGINX_CONF = """
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
worker_rlimit_nofile 4096;
events {{ worker_connections 2048; }}
http {{
  access_log {work}/nginx-access.log combined;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  upstream gunicorn {{ server unix:{work}/gunicorn.sock; }}
  server {{
    listen {port} deferred;
    client_max_body_size 0;
    keepalive_timeout 3;
    location ~ ^/(ping|invocations|execution-parameters) {{
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header Host $http_host;
      proxy_redirect off;
      proxy_read_timeout 60s;
      proxy_pass http://gunicorn;
    }}
    location / {{ return 404 "{{}}"; }}
  }}
}}
"""


# models ----------------------------------------------------------------------------------------
def make_model(directory: Path) -> pd.DataFrame:
    """A model trained elsewhere: a 100-tree GradientBoostingClassifier on a 30-column array,
    saved as model.joblib alone (the bring-your-own-model path every server can load)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(5000, N_FEATURES))
    y = (X[:, 0] + X[:, 1] * X[:, 2] - X[:, 3] + rng.normal(scale=0.5, size=len(X)) > 0).astype(int)
    directory.mkdir(parents=True)
    joblib.dump(
        GradientBoostingClassifier(n_estimators=100, random_state=0).fit(X, y),
        directory / "model.joblib",
    )
    return pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(N_FEATURES)])


def wide_table(rows: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    numbers = rng.normal(size=(rows, 32))
    numbers[rng.random(numbers.shape) < 0.03] = np.nan
    table = pd.DataFrame(numbers, columns=[f"x{i:02d}" for i in range(32)]).round(4)
    for j in range(5):
        table[f"c{j}"] = rng.choice([f"v{k}" for k in range(8 + 4 * j)], rows)
    signal_ = np.nan_to_num(numbers[:, 0]) + np.nan_to_num(numbers[:, 1] * numbers[:, 2])
    signal_ += (table["c0"] == "v1").astype(int) - (table["c3"] == "v5").astype(int)
    table["y"] = np.where(signal_ > 0.8, "high", np.where(signal_ > -0.5, "mid", "low"))
    return table


def pipeline_models(table: pd.DataFrame, target: str, iterations: int, work: Path) -> dict:
    """The pipeline's model as the Train job saves it: with its compiled form, and without."""
    from sagemaker_jobs import artifacts, compile, data
    from sagemaker_jobs.hyperparameters import Hyperparameters
    from sagemaker_jobs.model import build_model

    prepared, schema = data.prepare(table, data.DataSpec(target=target))
    features = list(schema.features)
    model = build_model(schema, Hyperparameters(n_estimators=iterations))
    model.fit(prepared[features], prepared[target])
    dirs = {}
    for name, enabled in (("compiled", True), ("sklearn", False)):
        folder = work / f"{target}-{name}"
        folder.mkdir(parents=True)
        section = compile.build(model, schema, folder, prepared, "train", enabled)
        artifacts.save(model, schema, folder, {"inference": section})
        dirs[name] = folder
    text = [n for n, k in schema.features.items() if k != "numeric"]
    rows = table[features].sample(frac=1.0, random_state=0)
    return {"dirs": dirs, "features": features, "text": text, "rows": rows}


def payload(X: pd.DataFrame, rows: int) -> bytes:
    return X.iloc[:rows].round(6).to_csv(header=False, index=False).encode()


# in-process baselines --------------------------------------------------------------------------
def timed(call: Callable[[], object], seconds: float) -> dict[str, float]:
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return {
        "rps": len(times) / sum(times),
        "p50": statistics.median(times) * 1000,
        "p99": float(np.percentile(times, 99)) * 1000,
        "max": max(times) * 1000,
    }


def user_script(model: Any, features: list[str], text: list[str]) -> Callable[[bytes], list]:
    """The stack's user script, called in-process: read CSV into a DataFrame, predict, encode."""

    def invoke(body: bytes) -> list:
        frame = pd.read_csv(
            io.StringIO(body.decode()), header=None, names=features, dtype=dict.fromkeys(text, str)
        )
        labels = model.predict(frame).tolist()
        json.dumps(labels)
        return [str(label) for label in labels]

    return invoke


# servers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def start_ours(model_dir: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "inference.serve"]
    argv += serve_args(model_dir, port, workers=2, host="127.0.0.1")
    env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def start_stack(
    model_file: Path, features: list[str], text: list[str], port: int, work: Path
) -> subprocess.Popen[bytes]:
    """nginx and gunicorn (gevent) in one process group, as the container's `serve` runs them."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "stack_app.py").write_text(
        textwrap.dedent(STACK_APP.format(model=str(model_file), features=features, text=text))
    )
    (work / "nginx.conf").write_text(NGINX_CONF.format(work=work, port=port))
    gunicorn = [
        *(sys.executable, "-m", "gunicorn", "--timeout", "60", "-k", "gevent"),
        *("-b", f"unix:{work}/gunicorn.sock", "--worker-connections", "2000", "-w", "2"),
        *("--chdir", str(work), "--log-level", "warning", "stack_app:app"),
    ]
    shell = f"nginx -c {work}/nginx.conf -p {work} & exec {' '.join(gunicorn)}"
    env = {**os.environ, "PYTHONPATH": f"{GEVENT_DIR}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    with (work / "stack.log").open("wb") as log:
        return subprocess.Popen(
            ["sh", "-c", shell], env=env, stdout=log, stderr=log, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by every live process of a process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def predictions(port: int, body: bytes) -> list[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
    response = connection.getresponse()
    document = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"status {response.status}: {document}")
    if isinstance(document, dict):
        document = document["predictions"]
    return [str(p) for p in document]


def wrk(
    port: int, path: str, body: bytes, content_type: str, clients: int, seconds: float, work: Path
) -> dict[str, float]:
    script = work / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [
            *("wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{max(1, round(seconds))}s"),
            *("--latency", "-s", str(script), f"http://127.0.0.1:{port}{path}"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = result.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    latency = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+\w+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "max": _ms(latency.group(1)) if latency else float("nan"),
        "errors": float(
            (int(errors.group(1)) if errors else 0)
            + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
        ),
        "wrk_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def measure(
    process: subprocess.Popen[bytes],
    port: int,
    bodies: dict[int, bytes],
    reference: dict[int, list[str]],
    cases: tuple[tuple[int, int], ...],
    seconds: float,
    work: Path,
    name: str,
) -> dict[tuple[int, int], dict[str, float]]:
    try:
        try:
            wait_ready(port, process)
        except RuntimeError as exc:
            logs = sorted(work.glob("**/stack.log")) + sorted(work.glob("**/nginx-error.log"))
            tails = "".join(f"\n{p}:\n{p.read_text()[-2000:]}" for p in logs)
            raise SystemExit(f"{name}: {exc}{tails}") from exc
        for rows, body in bodies.items():
            if predictions(port, body) != reference[rows]:
                raise SystemExit(f"correctness gate: {name} disagrees with in-process scikit-learn")
        out = {}
        for rows, clients in cases:
            cpu = group_cpu(process.pid)
            m = wrk(port, "/invocations", bodies[rows], "text/csv", clients, seconds, work)
            m["server_cpu"] = group_cpu(process.pid) - cpu
            m["seconds"] = max(1, round(seconds))
            out[(rows, clients)] = m
        return out
    finally:
        stop(process)


# runs ------------------------------------------------------------------------------------------
def run_pipeline(label: str, models: dict, seconds: float, work: Path) -> dict[str, dict]:
    sklearn_model = joblib.load(models["dirs"]["sklearn"] / "model.joblib")
    invoke = user_script(sklearn_model, models["features"], models["text"])
    bodies = {rows: payload(models["rows"], rows) for rows in ROWS}
    reference = {rows: invoke(body) for rows, body in bodies.items()}
    results: dict[str, dict] = {"in-process sklearn": {}, "in-process compiled": {}}
    handler = model_fn(models["dirs"]["compiled"])
    assert handler.compiled is not None, handler.serving
    for rows, body in bodies.items():
        results["in-process sklearn"][(rows, 1)] = timed(lambda b=body: invoke(b), seconds)

        def fast(b: bytes = body) -> None:
            handler.output_fn(
                handler.predict_fn(handler.input_fn(b, "text/csv")), "application/json"
            )

        results["in-process compiled"][(rows, 1)] = timed(fast, seconds)
        got = handler.predict_fn(handler.input_fn(body, "text/csv")).labels
        if [str(x) for x in got] != reference[rows]:
            raise SystemExit(f"correctness gate: the compiled handler disagrees ({label})")
    for name in ("compiled", "sklearn"):
        port = free_port()
        process = start_ours(models["dirs"][name], port)
        results[name] = measure(process, port, bodies, reference, CASES, seconds, work, name)
    port = free_port()
    process = start_stack(
        models["dirs"]["sklearn"] / "model.joblib",
        models["features"],
        models["text"],
        port,
        work / f"stack-{label}",
    )
    results["sagemaker-stack"] = measure(
        process, port, bodies, reference, CASES, seconds, work, "sagemaker-stack"
    )
    return results


def run_byo(seconds: float, repeats: int, work: Path) -> list[dict[str, dict]]:
    folder = work / "byo"
    X = make_model(folder)
    body = payload(X, 1)
    model = joblib.load(folder / "model.joblib")
    reference = {1: [str(p) for p in model.predict(np.asarray(X.iloc[:1].round(6)))]}
    rounds = []
    for _ in range(repeats):
        row = {}
        port = free_port()
        row["ours"] = measure(
            start_ours(folder, port), port, {1: body}, reference, ((1, 16),), seconds, work, "ours"
        )[(1, 16)]
        port = free_port()
        process = start_stack(folder / "model.joblib", [], [], port, work / "stack-byo")
        row["sagemaker-stack"] = measure(
            process, port, {1: body}, reference, ((1, 16),), seconds, work, "sagemaker-stack"
        )[(1, 16)]
        rounds.append(row)
        print(f"  byo round {len(rounds)}: " + _byo_line(row), flush=True)
    return rounds


def _byo_line(row: dict[str, dict]) -> str:
    ours, stack = row["ours"], row["sagemaker-stack"]
    return (
        f"ours {ours['rps']:.0f} req/s (server CPU {100 * ours['server_cpu'] / ours['seconds']:.0f}%,"
        f" wrk {100 * ours['wrk_cpu'] / ours['seconds']:.0f}%), stack {stack['rps']:.0f} req/s "
        f"(server CPU {100 * stack['server_cpu'] / stack['seconds']:.0f}%, wrk "
        f"{100 * stack['wrk_cpu'] / stack['seconds']:.0f}%): {ours['rps'] / stack['rps']:.2f}x"
    )


def report(label: str, results: dict[str, dict]) -> None:
    print(f"\n== {label} ==")
    print(
        f"{'server':<22}{'rows':>5}{'clients':>8}{'req/s':>9}{'rows/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'srv CPU%':>9}{'wrk CPU%':>9}{'errors':>7}"
    )
    for name, table in results.items():
        for (rows, clients), m in sorted(table.items()):
            cpu = f"{100 * m['server_cpu'] / m['seconds']:.0f}" if "server_cpu" in m else "-"
            wrk_cpu = f"{100 * m['wrk_cpu'] / m['seconds']:.0f}" if "wrk_cpu" in m else "-"
            print(
                f"{name:<22}{rows:>5}{clients:>8}{m['rps']:>9.0f}{m['rps'] * rows:>10.0f}"
                f"{m['p50']:>9.2f}{m['p99']:>9.2f}{m['max']:>9.1f}{cpu:>9}{wrk_cpu:>9}"
                f"{m.get('errors', 0):>7.0f}"
            )
    fast, stack = results["compiled"], results["sagemaker-stack"]
    base = results["in-process sklearn"]
    print("ratios (targets in brackets):")
    print(
        f"  1 row, 16 clients, compiled / sagemaker-stack: "
        f"{fast[(1, 16)]['rps'] / stack[(1, 16)]['rps']:.1f}x  [>= 10x]"
    )
    print(
        f"  1 row, 16 clients, compiled / our sklearn path: "
        f"{fast[(1, 16)]['rps'] / results['sklearn'][(1, 16)]['rps']:.1f}x"
    )
    print(f"  1 row, 1 client, compiled p50: {fast[(1, 1)]['p50']:.2f} ms  [<= 1 ms]")
    print(
        f"  100 rows, 16 clients, compiled rows/s / in-process sklearn (1 thread): "
        f"{fast[(100, 16)]['rps'] / base[(100, 1)]['rps']:.1f}x  [>= 5x]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5, help="per wrk case")
    parser.add_argument("--repeats", type=int, default=5, help="byo rounds")
    parser.add_argument("--models", default="demo,wide,byo")
    parser.add_argument("--iterations", type=int, default=0, help="override boosting iterations")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is missing: apt-get install {tool}")
    if not (GEVENT_DIR / "gevent").exists():
        sys.exit(f"gevent is missing: pip install --target {GEVENT_DIR} gevent")
    os.environ["PATH"] = f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin"
    print(f"2 workers per server; load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        work.chmod(0o755)  # nginx's workers (not root) reach gunicorn's socket in here
        chosen = args.models.split(",")
        if "demo" in chosen:
            from mlops.local import DEMO_DATA

            models = pipeline_models(
                pd.read_csv(DEMO_DATA), "species", args.iterations or 200, work / "demo"
            )
            report(
                "demo (penguins, 200 iterations)", run_pipeline("demo", models, args.seconds, work)
            )
        if "wide" in chosen:
            models = pipeline_models(wide_table(), "y", args.iterations or 250, work / "wide")
            report(
                "wide (32 numeric + 5 categorical, 250 iterations)",
                run_pipeline("wide", models, args.seconds, work),
            )
        if "byo" in chosen:
            print("\n== byo (100-tree GradientBoostingClassifier, 1-row CSV, 16 clients) ==")
            rounds = run_byo(args.seconds, args.repeats, work)
            ratios = sorted(r["ours"]["rps"] / r["sagemaker-stack"]["rps"] for r in rounds)
            print(
                f"  ours / sagemaker-stack over {len(ratios)} rounds: median "
                f"{statistics.median(ratios):.2f}x, min {ratios[0]:.2f}x, max {ratios[-1]:.2f}x"
                "  [median >= 2x, none below 1.5x]"
            )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end", flush=True)


if __name__ == "__main__":
    main()
