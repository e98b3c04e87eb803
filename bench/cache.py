"""What step caching saves on the demo pipeline.

In a fresh MLOPS_HOME: `mlops pipeline run` (cold: every step runs, the baseline), the same
run again (every job step should be a cache hit), then a run with one input changed
(`-p Estimator=random_forest`: Preprocess should hit, Train and Evaluate run again). Wall time
is the whole command (SDK import and definition build included); "steps" is the sum of the
steps' own seconds from the execution record. Ratios are against the cold run of the same
repeat, on this machine.

    .venv/bin/python bench/cache.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops.executor.records import list_executions  # noqa: E402

RUNS = {
    "cold": [],
    "repeat": [],
    "Estimator changed": ["-p", "Estimator=random_forest"],
}


def run(home: Path, extra: list[str]) -> tuple[float, float, list[str]]:
    """Wall seconds, summed step seconds, and the steps that were cache hits."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mlops.cli", "pipeline", "run", "--no-track", *extra],
        env={**os.environ, "MLOPS_HOME": str(home)},
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    record = list_executions(home / "runs")[0]
    steps = sum(s.seconds or 0 for s in record.steps)
    return wall, steps, [s.name for s in record.steps if s.cache_hit]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {name: [] for name in RUNS}
    steps: dict[str, list[float]] = {name: [] for name in RUNS}
    hits: dict[str, list[str]] = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch:
            for name, extra in RUNS.items():
                wall, step_seconds, hit = run(Path(scratch) / "home", extra)
                walls[name].append(wall)
                steps[name].append(step_seconds)
                hits[name] = hit
    cold_wall, cold_steps = statistics.median(walls["cold"]), statistics.median(steps["cold"])
    print(f"{'run':<18} {'wall s':>7} {'ratio':>6} {'steps s':>8} {'ratio':>6}  cache hits")
    for name in RUNS:
        wall, step_seconds = statistics.median(walls[name]), statistics.median(steps[name])
        print(
            f"{name:<18} {wall:7.2f} {wall / cold_wall:6.2f} {step_seconds:8.2f} "
            f"{step_seconds / cold_steps:6.2f}  {', '.join(hits[name]) or '-'}"
        )
    print(f"(median of {args.repeat}; ratios against the cold run)")


if __name__ == "__main__":
    main()
