"""Processing job: score the held-out test split and write ``evaluation.json``.

Container entry point: ``python3 -m sagemaker_jobs.evaluate [--quality-metric auto]``.
Inputs: the training job's ``model.tar.gz`` under ``/opt/ml/processing/model`` and the test
split under ``/opt/ml/processing/test``; output: ``/opt/ml/processing/evaluation/evaluation.json``
with ``metrics.<name>.value`` and ``quality_gate`` (the metric the pipeline's condition reads).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sagemaker_jobs import artifacts, metrics
from sagemaker_jobs.contract import JobError, Paths, run_job, write_json
from sagemaker_jobs.data import Schema, read_split

log = logging.getLogger("sagemaker_jobs.evaluate")  # not __main__ under python -m


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise JobError(f"evaluate arguments: {message}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="sagemaker_jobs.evaluate", description=__doc__)
    parser.add_argument(
        "--quality-metric", default="auto", help="auto, accuracy, f1, roc_auc or r2"
    )
    parser.add_argument("--model", default="/opt/ml/processing/model")
    parser.add_argument("--test", default="/opt/ml/processing/test")
    parser.add_argument("--output", default="/opt/ml/processing/evaluation")
    return parser.parse_args(argv)


def evaluate(model_dir: Path, test_dir: Path, quality_metric: str) -> dict:
    model, manifest = artifacts.load(model_dir)
    schema = Schema.from_dict({**manifest, "dropped": {}})
    test = read_split(test_dir, schema)
    gate = metrics.resolve_gate_metric(schema.problem_type, quality_metric)
    score = (
        metrics.classification if schema.problem_type == "classification" else metrics.regression
    )
    report = score(model, test[list(schema.features)], test[schema.target])
    value = report["metrics"][gate]["value"]
    if value is None:
        raise JobError(
            f"metric {gate} is undefined on this test split; pick another --quality-metric"
        )
    return {
        "problem_type": schema.problem_type,
        "test_rows": len(test),
        **report,
        "quality_gate": {"metric": gate, "value": value},
    }


def run(args: argparse.Namespace, paths: Paths) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.root) as scratch:  # stay inside the job's tree
        model_dir = artifacts.unpack(paths.map(args.model), Path(scratch))
        report = evaluate(model_dir, paths.map(args.test), args.quality_metric)
    for name, m in report["metrics"].items():
        log.info("test %s = %s", name, m["value"])
    write_json(paths.map(args.output) / "evaluation.json", report)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job("evaluate", lambda paths: run(parse_args(argv), paths))


if __name__ == "__main__":
    sys.exit(main())
