"""``serve``: start the model server (SageMaker runs ``docker run IMAGE serve``).

Settings come from the ``SAGEMAKER_*`` environment; ``--model-dir``, ``--port``, ``--workers``,
``--host`` and ``--metrics-port`` override them (``mlops serve`` and local endpoints use these).
``--metrics-port`` (or ``MLOPS_METRICS_PORT``) adds Prometheus metrics on that port; it is off by
default, as on SageMaker, which only talks to port 8080.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from inference.config import SettingsError, from_env, to_env


def serve_args(
    model_dir: Path, port: int, workers: int, host: str, metrics_port: int | None = None
) -> list[str]:
    """The command-line form of these settings (local endpoints and benchmarks start it so)."""
    metrics = ["--metrics-port", str(metrics_port)] if metrics_port else []
    return [
        "--model-dir",
        str(model_dir),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--host",
        host,
        *metrics,
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="serve", description=__doc__)
    parser.add_argument("--model-dir")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--host")
    parser.add_argument("--metrics-port", type=int, help="Prometheus metrics port (default: off)")
    argv = list(argv or [])
    if argv[:1] == ["serve"]:  # SageMaker starts the container as `serve`
        argv = argv[1:]
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        print(
            f"serve: LOG_LEVEL {level!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stdout)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = from_env(
            model_dir=args.model_dir,
            port=args.port,
            workers=args.workers,
            host=args.host,
            metrics_port=args.metrics_port,
        )
    except SettingsError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    if not settings.model_dir.is_dir():
        print(f"serve: model directory {settings.model_dir} does not exist", file=sys.stderr)
        return 2
    exporter = None
    if settings.metrics_port:
        from inference.metrics import MetricsExporter

        # Before the workers start: they inherit the folder's location.
        exporter = MetricsExporter.for_server(settings.model_dir, settings.metrics_dir)
        try:
            exporter.start(settings.host, settings.metrics_port)
        except OSError as exc:
            exporter.close()
            print(
                f"serve: cannot serve metrics on port {settings.metrics_port}: {exc}",
                file=sys.stderr,
            )
            return 2
    # Only once nothing can fail early: a refused start leaves the environment as it was.
    os.environ.update(to_env(settings))  # each worker process rebuilds the same settings
    # One compute thread per worker: workers are the parallelism. OpenMP models (histogram
    # gradient boosting) otherwise spin a thread per core in every worker and collapse under load.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from inference.protocol import ServerConfig, run

    try:
        run(
            ServerConfig(
                "inference.app:create_app",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                loop="uvloop",
                access_log=False,  # the app logs one structured line per request itself
                header_timeout=settings.header_timeout,
                body_timeout=settings.body_timeout,
                timeout_keep_alive=settings.idle_timeout,
                timeout_graceful_shutdown=30,  # SageMaker sends SIGKILL 30 s after SIGTERM
                log_level=level.lower(),
            )
        )
    finally:
        if exporter:
            exporter.close()  # the metrics folder goes with the server
    return 0


if __name__ == "__main__":
    sys.exit(main())
