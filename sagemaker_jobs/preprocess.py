"""Processing job: validate, profile and split the raw data set.

Container entry point: ``python3 -m sagemaker_jobs.preprocess --target COLUMN [...]``.
Reads every CSV/Parquet file under ``/opt/ml/processing/input/raw`` and writes
``train/``, ``validation/``, ``test/`` (Parquet, plus ``schema.json`` beside each),
``profile/profile.json`` and ``baseline/`` (Model Monitor's ``statistics.json`` and
``constraints.json`` of the train split) under ``/opt/ml/processing/output``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sagemaker_jobs import baseline, data, eda, resources
from sagemaker_jobs.contract import JobError, Paths, run_job, write_json
from sagemaker_jobs.digests import dataset_sha256, file_entries

log = logging.getLogger("sagemaker_jobs.preprocess")  # not __main__ under python -m

INPUT = "/opt/ml/processing/input/raw"
OUTPUT = "/opt/ml/processing/output"
SPLITS = ("train", "validation", "test")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise JobError(f"preprocess arguments: {message}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="sagemaker_jobs.preprocess", description=__doc__)
    parser.add_argument("--target", required=True, help="name of the column to predict")
    parser.add_argument(
        "--problem-type", default="auto", choices=["auto", "classification", "regression"]
    )
    parser.add_argument("--column-types", default="", help="NAME=numeric|categorical|datetime,...")
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--dataset-sha256",
        default="",
        help="the Fingerprint step's hash of the input: in the arguments so that SageMaker's "
        "step cache sees new data; checked against what is read",
    )
    parser.add_argument("--input", default=INPUT, help="file or directory (under /opt/ml)")
    parser.add_argument("--output", default=OUTPUT, help="directory (under /opt/ml)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, paths: Paths) -> None:
    source, out = paths.map(args.input), paths.map(args.output)
    spec = data.DataSpec(
        target=args.target.strip(),
        problem_type=args.problem_type,
        column_types=data.parse_column_types(args.column_types),
    )
    files = data.table_files(source)
    raw = data.read_table(source)
    resources.release_freed_memory()  # the parser's chunks, freed but kept by the heap
    raw_rows = len(raw)
    log.info("read %d rows x %d columns from %d file(s)", raw_rows, raw.shape[1], len(files))
    table, schema = data.prepare(raw, spec)
    del raw  # the table (prepare shares the raw table's unchanged columns) is all that is left
    log.info(
        "problem type %s; %d features (%s)",
        schema.problem_type,
        len(schema.features),
        ", ".join(f"{n}:{k}" for n, k in schema.features.items()),
    )
    sha256 = dataset_sha256(file_entries(files, source if source.is_dir() else source.parent))
    if args.dataset_sha256 and args.dataset_sha256 != sha256:
        raise JobError(
            f"the input data changed during this execution (sha256 {sha256}, but the Fingerprint "
            f"step read {args.dataset_sha256}): do not overwrite InputDataUri while a run reads "
            "it; start the pipeline again"
        )
    # What reads the whole table runs before the split; then each part is written from the
    # table a batch of rows at a time, so the table and one batch are all that is in memory.
    report = data.profile(table, schema, raw_rows=raw_rows, sha256=sha256)
    write_json(out / "profile" / "profile.json", report)
    # The EDA page beside the profile, on a bounded sample (sagemaker_jobs/eda.py).
    eda.write_report(out / "profile" / eda.EDA_FILE, table, schema, source=_source_name(files))
    resources.release_freed_memory()
    rows = data.split(
        table, schema, validation=args.validation_fraction, test=args.test_fraction, seed=args.seed
    )
    for name, picked in zip(SPLITS, rows, strict=True):
        resources.release_freed_memory()  # what the split and the part before it let go
        target_dir = out / name
        # Parquet between steps: typed, compressed and read column by column, several times
        # faster than CSV for Train and Evaluate; CSV stays the contract at the edges.
        data.write_part(table, picked, target_dir / f"{name}.parquet")
        write_json(target_dir / "schema.json", schema.to_dict())
        log.info("%s: %d rows", name, len(picked))
        if name == "train":
            # The data the model learns from is what served traffic is compared with.
            baseline.write_baseline(out / "baseline", table, schema, rows=picked)
            log.info("baseline: Model Monitor statistics and constraints of the train split")


def _source_name(files: Sequence[Path]) -> str:
    return files[0].name if len(files) == 1 else f"{len(files)} files"


def main(argv: Sequence[str] | None = None) -> int:
    return run_job("preprocess", lambda paths: run(parse_args(argv), paths))


if __name__ == "__main__":
    sys.exit(main())
