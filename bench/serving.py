"""Serving benchmark: our server against the in-process limit and the stacks users pick instead.

One run, one machine, one fixed model (a 100-tree GradientBoostingClassifier over 30 numeric
features), the same load generator (wrk, from Debian's `wrk` package) for every server:

- in-process limit: one Python thread doing parse, predict and format (no HTTP);
- ours: `python -m inference.serve` (uvicorn, uvloop, httptools), 2 workers;
- ours-metrics: the same with Prometheus metrics on (`--metrics-port`), to price them;
- flask-gunicorn: a Flask app on gunicorn (2 sync workers) following the SageMaker scikit-learn
  container's flow (np.genfromtxt decoding with a float32 cast, predict, JSON encoding);
- mlflow: MLflow's scoring server (`mlflow models serve`, 2 workers) on the same model.

A correctness gate first checks that every server returns the in-process predictions.

    apt-get install wrk          # once
    .venv/bin/python bench/serving.py [--seconds 5] [--only ours,ours-metrics,flask-gunicorn,mlflow]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import joblib  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402

from inference.handler import model_fn  # noqa: E402
from inference.serve import serve_args  # noqa: E402

N_FEATURES = 30
CLIENTS = (1, 16, 64)
ROWS = (1, 100)

FLASK_APP = """
import io, json, joblib, numpy as np
from flask import Flask, Response, request
model = joblib.load({model!r})
app = Flask(__name__)

@app.route("/ping")
def ping():
    return Response(status=200)

@app.route("/invocations", methods=["POST"])
def invocations():
    # The SageMaker scikit-learn container's default decoder: np.genfromtxt, then a float32 cast.
    array = np.genfromtxt(io.StringIO(request.data.decode()), delimiter=",", dtype=np.float32)
    return Response(json.dumps(model.predict(array.reshape(-1, model.n_features_in_)).tolist()),
                    mimetype="application/json")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


def payload(X: pd.DataFrame, rows: int) -> bytes:
    return X.iloc[:rows].round(6).to_csv(header=False, index=False).encode()


def in_process(model_dir: Path, body: bytes, seconds: float) -> dict[str, float]:
    handler = model_fn(model_dir)
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        handler.output_fn(
            handler.predict_fn(handler.input_fn(body, "text/csv")), "application/json"
        )
        times.append(time.perf_counter() - started)
    return {
        "rps": len(times) / sum(times),
        "p50": statistics.median(times) * 1000,
        "p99": float(np.percentile(times, 99)) * 1000,
    }


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
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


def predictions(port: int, path: str, body: bytes, content_type: str) -> list[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, body=body, headers={"Content-Type": content_type})
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
    threads = min(clients, 2)
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "errors": float(
            (int(errors.group(1)) if errors else 0)
            + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
        ),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def start(
    name: str, model_dir: Path, work: Path, port: int
) -> tuple[subprocess.Popen[bytes], bytes]:
    """Start one server (2 workers on 127.0.0.1:port); return it and the CSV header it needs."""
    python = sys.executable
    header = b""
    if name in ("ours", "ours-metrics"):
        metrics_port = free_port() if name == "ours-metrics" else None
        argv = [
            python,
            "-m",
            "inference.serve",
            *serve_args(model_dir, port, workers=2, host="127.0.0.1", metrics_port=metrics_port),
        ]
    elif name == "flask-gunicorn":
        (work / "flask_app.py").write_text(
            textwrap.dedent(FLASK_APP.format(model=str(model_dir / "model.joblib")))
        )
        argv = [
            python,
            "-m",
            "gunicorn",
            "-w",
            "2",
            "-k",
            "sync",
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(work),
            "flask_app:app",
        ]
    elif name == "mlflow":
        import mlflow.sklearn

        target = work / "mlflow-model"
        if not target.exists():
            # We made this model ourselves, so its tree type is trusted (MLflow's skops check).
            mlflow.sklearn.save_model(
                joblib.load(model_dir / "model.joblib"),
                str(target),
                skops_trusted_types=["sklearn.tree._tree.Tree"],
            )
        argv = [
            str(Path(python).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            str(target),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-w",
            "2",
            "--env-manager",
            "local",
        ]
        header = (
            ",".join(f"f{i:02d}" for i in range(N_FEATURES)).encode() + b"\n"
        )  # it reads CSV with a header
    else:
        raise ValueError(name)
    # MLflow starts `uvicorn` by name: the venv's bin must be on PATH.
    env = {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return process, header


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--only", default="ours,flask-gunicorn,mlflow")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model_dir = work / "model"
        X = make_model(model_dir)
        reference = {
            rows: [
                str(p)
                for p in model_fn(model_dir)
                .predict_fn(model_fn(model_dir).input_fn(payload(X, rows), "text/csv"))
                .labels
            ]
            for rows in ROWS
        }
        results: dict[str, dict[tuple[int, int], dict[str, float]]] = {"in-process": {}}
        for rows in ROWS:
            limit = in_process(model_dir, payload(X, rows), args.seconds)
            results["in-process"][(rows, 1)] = limit
        for name in args.only.split(","):
            port = free_port()
            process, header = start(name, model_dir, work, port)
            path, content_type = "/invocations", "text/csv"
            try:
                wait_ready(port, process)
                results[name] = {}
                for rows in ROWS:
                    body = header + payload(X, rows)
                    got = predictions(port, path, body, content_type)
                    if got != reference[rows]:
                        raise SystemExit(
                            f"correctness gate: {name} disagrees with the in-process predictions"
                        )
                    for clients in CLIENTS:
                        results[name][(rows, clients)] = wrk(
                            port, path, body, content_type, clients, args.seconds, work
                        )
            finally:
                stop(process)
        report(results)


def report(results: dict[str, dict[tuple[int, int], dict[str, float]]]) -> None:
    limit = results["in-process"]
    print("correctness gate: every server returned the in-process predictions\n")
    print(
        f"{'server':<16}{'rows':>5}{'clients':>8}{'req/s':>10}{'rows/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    )
    for rows in ROWS:
        m = limit[(rows, 1)]
        print(
            f"{'in-process':<16}{rows:>5}{1:>8}{m['rps']:>10.0f}{m['rps'] * rows:>11.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}{'-':>8}"
        )
    for name, table in results.items():
        if name == "in-process":
            continue
        for (rows, clients), m in sorted(table.items()):
            print(
                f"{name:<16}{rows:>5}{clients:>8}{m['rps']:>10.0f}{m['rps'] * rows:>11.0f}{m['p50']:>9.2f}"
                f"{m['p99']:>9.2f}{m['errors']:>8.0f}"
            )
    ours = results.get("ours")
    if not ours:
        return
    print("\nratios (targets in brackets):")
    for other, target in (("flask-gunicorn", 2.0), ("mlflow", 5.0)):
        if other in results:
            ratio = ours[(1, 16)]["rps"] / results[other][(1, 16)]["rps"]
            print(f"  1-row, 16 clients, ours / {other}: {ratio:.2f}x  [>= {target}x]")
    if "ours-metrics" in results:
        for rows, clients in ((1, 1), (1, 16), (100, 16)):
            ratio = results["ours-metrics"][(rows, clients)]["rps"] / ours[(rows, clients)]["rps"]
            print(f"  {rows}-row, {clients} clients, metrics on / off: {ratio:.2f}x  [>= 0.95x]")
    gap = ours[(1, 1)]["p50"] - limit[(1, 1)]["p50"]
    print(f"  1-row, 1 client, p50 gap to in-process: {gap:.2f} ms  [<= 0.4 ms]")
    ratio = ours[(100, 16)]["rps"] * 100 / (limit[(100, 1)]["rps"] * 100)
    print(f"  100-row, 16 clients, rows/s vs in-process single thread: {ratio:.2f}x  [>= 1.0x]")


if __name__ == "__main__":
    main()
