"""Batch transform benchmark: a 1 million row CSV through `inference.transform`, against the
in-process limit (the same handler scoring payloads of the same size in a loop), in one run.

It also reports the transform's peak memory (its own process), to show it is bounded by the
batch size (6 MB payloads), not by the file size.

    .venv/bin/python bench/transform.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from serving import make_model  # noqa: E402

from inference.handler import model_fn  # noqa: E402
from inference.transform import batches  # noqa: E402

MAX_MB = 6.0


def write_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(11)
    with path.open("w") as handle:
        for start in range(0, rows, 100_000):
            block = rng.normal(size=(min(100_000, rows - start), 30))
            np.savetxt(handle, block, delimiter=",", fmt="%.5f")


def in_process_limit(model_dir: Path, source: Path, seconds: float) -> float:
    handler = model_fn(model_dir)
    with source.open("rb") as stream:
        body = next(batches(stream, int(MAX_MB * 1024 * 1024)))
    rows = done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        prediction = handler.predict_fn(handler.input_fn(body, "text/csv"))
        handler.output_fn(prediction, "text/csv")
        rows += len(prediction.labels)
        done += 1
    return rows / (time.perf_counter() - started)


def run_transform(model_dir: Path, source: Path, output: Path) -> dict[str, float]:
    """In a child process, so its peak memory is its own."""
    code = (
        "import json,resource,sys,time; sys.path.insert(0, sys.argv[4]);"
        "from pathlib import Path; from inference.handler import model_fn; from inference.transform import transform;"
        "h=model_fn(Path(sys.argv[1])); t=time.perf_counter();"
        "s=transform(h, Path(sys.argv[2]), Path(sys.argv[3]), max_payload_mb=6);"
        "print(json.dumps({'rows': s.records, 'seconds': time.perf_counter()-t,"
        "'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(model_dir), str(source), str(output), str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        make_model(work / "model")
        source = work / "input" / "data.csv"
        source.parent.mkdir()
        write_csv(source, args.rows)
        size_mb = source.stat().st_size / 1024 / 1024
        limit = in_process_limit(work / "model", source, seconds=10)
        small = work / "small" / "data.csv"
        small.parent.mkdir()
        write_csv(small, args.rows // 10)
        small_peak = run_transform(work / "model", small.parent, work / "small-output")["peak_mb"]
        measured = run_transform(work / "model", source.parent, work / "output")
        lines = sum(1 for _ in (work / "output" / "data.csv.out").open())
        assert lines == args.rows == measured["rows"], "one output line per input record"
        rate = measured["rows"] / measured["seconds"]
        print(f"input: {args.rows:,} rows, {size_mb:.0f} MB CSV; batches of at most {MAX_MB:g} MB")
        print(f"in-process limit (same handler, 6 MB payloads): {limit:,.0f} rows/s")
        print(
            f"transform: {rate:,.0f} rows/s in {measured['seconds']:.1f}s; ratio {rate / limit:.2f}x  [>= 0.8x]"
        )
        print(
            f"transform peak memory: {measured['peak_mb']:.0f} MB for the {size_mb:.0f} MB file, "
            f"{small_peak:.0f} MB for a file a tenth of its size (bounded by the batch, not the file)"
        )


if __name__ == "__main__":
    main()
