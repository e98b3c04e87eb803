"""How much the local loop costs on top of the jobs themselves.

Baseline: the three job entry points run back to back as child processes on the demo data,
with their /opt/ml trees laid out by hand (the least any executor could do). Measured: the
whole `mlops pipeline run` (SDK import, definition build, executor, registry). Both in this
run, on this machine; the ratio is what to compare across changes.

    .venv/bin/python bench/local_loop.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "mlops" / "demo" / "penguins.csv"


def _job(root: Path, *args: str) -> None:
    env = {**os.environ, "MLOPS_OPT_ML": str(root)}
    subprocess.run([sys.executable, "-m", *args], env=env, check=True, capture_output=True)


def bare_jobs(work: Path) -> float:
    started = time.perf_counter()
    pre, trn, ev = work / "pre", work / "train", work / "eval"
    (pre / "processing/input/raw").mkdir(parents=True)
    shutil.copy(DEMO, pre / "processing/input/raw")
    _job(pre, "sagemaker_jobs.preprocess", "--target", "species")
    for channel in ("train", "validation"):
        shutil.copytree(pre / "processing/output" / channel, trn / "input/data" / channel)
    _job(trn, "sagemaker_jobs.train", "train")
    (ev / "processing/model").mkdir(parents=True)
    with tarfile.open(ev / "processing/model/model.tar.gz", "w:gz") as tar:
        for item in (trn / "model").iterdir():
            tar.add(item, arcname=item.name)
    shutil.copytree(pre / "processing/output/test", ev / "processing/test")
    _job(ev, "sagemaker_jobs.evaluate")
    return time.perf_counter() - started


def pipeline_run(work: Path) -> float:
    started = time.perf_counter()
    env = {**os.environ, "MLOPS_HOME": str(work / "home")}
    subprocess.run(
        [sys.executable, "-m", "mlops.cli", "pipeline", "run"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bare, full = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            bare.append(bare_jobs(Path(a)))
            full.append(pipeline_run(Path(b)))
    b, f = statistics.median(bare), statistics.median(full)
    print(f"bare jobs (baseline)     median {b:6.2f}s  runs {[round(x, 2) for x in bare]}")
    print(f"mlops pipeline run       median {f:6.2f}s  runs {[round(x, 2) for x in full]}")
    print(
        f"ratio pipeline/bare      {f / b:.2f}x  (overhead {f - b:.2f}s: SDK import, definition build, executor)"
    )


if __name__ == "__main__":
    main()
