"""How the pipeline's cost grows with the data: wall time and peak memory per step.

For each size, a synthetic table (20 numeric and 4 categorical columns plus a binary target,
about 204 bytes a row as CSV) is written once, then `mlops pipeline run` runs on it in a fresh
MLOPS_HOME, and again (every job step a cache hit). Per step: its seconds from the execution
record, and its peak memory and memory after imports, which every job logs when it finishes
(sagemaker_jobs.contract.run_job). Targets (issue 13) are checked and printed as held or not:

- 1M rows end to end in at most 60 s on 2 cores;
- for 1M rows and more, every step's peak memory above its import baseline at most 2x the CSV;
- the repeated (cached) run at most 0.1x of the first.

    .venv/bin/python bench/scale.py --rows 100000 1000000 [5000000]

Numbers depend on the machine and on what else runs on it: say which when you quote them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops.executor.records import list_executions  # noqa: E402

NUMERIC, CATEGORICAL = 20, 4
CHUNK = 250_000
_MEMORY = re.compile(r"peak memory (\d+) MB \((\d+) MB after imports\)")


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    """Write the synthetic table in chunks, so the generator never holds it all."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=NUMERIC)
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            x = rng.normal(size=(n, NUMERIC)).round(6)
            frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(NUMERIC)])
            for j in range(CATEGORICAL):
                frame[f"c{j}"] = rng.choice([f"v{k}" for k in range(8 + 4 * j)], size=n)
            score = x @ weights + (frame["c0"] == "v1") * 1.5 + rng.normal(size=n)
            frame["y"] = np.where(score > 0, "yes", "no")
            frame.to_csv(handle, header=start == 0, index=False)


def run(home: Path, data: Path) -> tuple[float, dict[str, dict[str, float]]]:
    """Wall seconds of `mlops pipeline run`, and per job step: seconds, peak and import MB."""
    started = time.perf_counter()
    command = ["pipeline", "run", "--no-track", "--data", str(data), "--target-column", "y"]
    subprocess.run(
        [sys.executable, "-m", "mlops.cli", *command],
        env={**os.environ, "MLOPS_HOME": str(home)},
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    record = list_executions(home / "runs")[0]
    steps: dict[str, dict[str, float]] = {}
    for step in record.steps:
        if step.type not in ("Processing", "Training"):
            continue
        entry = {"seconds": step.seconds or 0.0, "cached": float(bool(step.cache_hit))}
        log = Path(record.run_dir) / "steps" / step.name / "log.txt"
        if not step.cache_hit and log.exists() and (found := _MEMORY.search(log.read_text())):
            entry.update(peak_mb=float(found[1]), import_mb=float(found[2]))
        steps[step.name] = entry
    return wall, steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        for rows in args.rows:
            data = Path(scratch) / f"scale-{rows}.csv"
            write_table(data, rows)
            size_mb = data.stat().st_size / 1e6
            home = Path(scratch) / f"home-{rows}"
            first, steps = run(home, data)
            again, _ = run(home, data)
            print(f"\n{rows:,} rows, CSV {size_mb:.0f} MB: end to end {first:.1f} s")
            print(f"  {'step':<12}{'seconds':>9}{'peak MB':>9}{'imports MB':>11}{'x CSV':>7}")
            worst = 0.0
            for name, s in steps.items():
                above = (s.get("peak_mb", 0) - s.get("import_mb", 0)) / size_mb
                worst = max(worst, above)
                print(
                    f"  {name:<12}{s['seconds']:>9.1f}{s.get('peak_mb', 0):>9.0f}"
                    f"{s.get('import_mb', 0):>11.0f}{above:>7.2f}"
                )
            ratio = again / first
            print(f"  cached rerun {again:.1f} s = {ratio:.2f}x of the first")
            if rows >= 1_000_000:
                held = {
                    "end to end <= 60 s": first <= 60,
                    "peak above imports <= 2x CSV": worst <= 2,
                    "cached rerun <= 0.1x": ratio <= 0.1,
                }
                print(
                    "  targets: "
                    + ", ".join(f"{k}: {'held' if v else 'MISSED'}" for k, v in held.items())
                )


if __name__ == "__main__":
    main()
