"""Processing job: the sha256 of the input data set, for the steps whose cache must see it.

Container entry point: ``python3 -m sagemaker_jobs.fingerprint``. Reads every CSV/Parquet file
under ``/opt/ml/processing/input/raw`` (as preprocess does) and writes
``/opt/ml/processing/output/fingerprint/fingerprint.json``: ``{"dataset": {"sha256", "files"}}``.

Why a step of its own: SageMaker's step cache compares a step's argument values, not the bytes
behind an S3 URI, so a retraining run on new data under the same ``InputDataUri`` would reuse
the old Preprocess, Train and Evaluate. This step runs uncached in every execution, and its hash
becomes an argument of Preprocess: new bytes, new argument, no stale reuse; the same bytes keep
every cached step. (The job cannot copy the data to a ``datasets/<sha256>/`` prefix instead: an
output's S3 location is fixed when the job is created, and jobs in a VPC run network-isolated.)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sagemaker_jobs.contract import JobError, Paths, run_job, write_json
from sagemaker_jobs.data import table_files
from sagemaker_jobs.digests import dataset_sha256, file_entries

log = logging.getLogger("sagemaker_jobs.fingerprint")

INPUT = "/opt/ml/processing/input/raw"
OUTPUT = "/opt/ml/processing/output/fingerprint"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise JobError(f"fingerprint arguments: {message}")


def run(argv: Sequence[str] | None, paths: Paths) -> None:
    parser = _Parser(prog="sagemaker_jobs.fingerprint", description=__doc__)
    parser.add_argument("--input", default=INPUT, help="file or directory (under /opt/ml)")
    parser.add_argument("--output", default=OUTPUT, help="directory (under /opt/ml)")
    args = parser.parse_args(argv)
    source = paths.map(args.input)
    files = table_files(source)
    # The same identity preprocess records as DatasetSha256, so the two can be compared.
    digest = dataset_sha256(file_entries(files, source if source.is_dir() else source.parent))
    write_json(
        paths.map(args.output) / "fingerprint.json",
        {"dataset": {"sha256": digest, "files": len(files)}},
    )
    log.info("data set sha256 %s (%d file(s))", digest, len(files))


def main(argv: Sequence[str] | None = None) -> int:
    return run_job("fingerprint", lambda paths: run(argv, paths))


if __name__ == "__main__":
    sys.exit(main())
