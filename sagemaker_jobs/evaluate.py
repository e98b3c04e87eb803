"""Processing job: score the held-out test split, write ``evaluation.json`` and ``report.html``.

Container entry point:
``python3 -m sagemaker_jobs.evaluate [--quality-metric auto] [--threshold 0.7]``.
Inputs: the training job's ``model.tar.gz`` under ``/opt/ml/processing/model``, the test split
under ``/opt/ml/processing/test`` and (optional) preprocess's data profile under
``/opt/ml/processing/profile``. Outputs in ``/opt/ml/processing/evaluation``: ``evaluation.json``
with ``metrics.<name>.value`` (averaged ones say their averaging), ``per_class`` (precision,
recall, F1 and support of each class) and ``quality_gate`` (the metric, why it is the gate, and
with a threshold the signed ``margin`` the pipeline's condition tests, the verdict and a message
that says which direction was checked), the HTML report (``sagemaker_jobs.report``)
and a copy of the profile, so the folder explains the model on its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sagemaker_jobs import artifacts, compile, metrics
from sagemaker_jobs.contract import JobError, Paths, run_job, write_json
from sagemaker_jobs.data import Schema, read_split
from sagemaker_jobs.metric_directions import GATE_CHOICES, check_gate
from sagemaker_jobs.report import REPORT_FILE, ReportInputs, write_report

PROFILE_FILE = "profile.json"

log = logging.getLogger("sagemaker_jobs.evaluate")  # not __main__ under python -m


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise JobError(f"evaluate arguments: {message}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="sagemaker_jobs.evaluate", description=__doc__)
    parser.add_argument(
        "--quality-metric", default="auto", help=f"one of {', '.join(GATE_CHOICES)}"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="the quality gate's threshold: recorded with a pass/fail verdict",
    )
    parser.add_argument("--model", default="/opt/ml/processing/model")
    parser.add_argument("--test", default="/opt/ml/processing/test")
    parser.add_argument("--profile", default="/opt/ml/processing/profile")
    parser.add_argument("--output", default="/opt/ml/processing/evaluation")
    return parser.parse_args(argv)


def read_profile(profile_dir: Path) -> dict[str, Any] | None:
    """Preprocess's profile.json, or None when the job was given no profile."""
    path = profile_dir / PROFILE_FILE
    if not profile_dir.exists():
        return None
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise JobError(
            f"cannot read the data profile {path}: {exc}; pass preprocess's profile output"
        ) from exc
    if not isinstance(profile, dict) or not {"dataset", "target"} <= profile.keys():
        raise JobError(f"{path} is not a data profile written by preprocess (no dataset/target)")
    return profile


def evaluate(
    model_dir: Path,
    test_dir: Path,
    quality_metric: str,
    threshold: float | None = None,
    profile: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], ReportInputs]:
    """The evaluation, and what the report needs besides it (the model and the test split)."""
    model, manifest = artifacts.load(model_dir)
    schema = Schema.from_dict({**manifest, "dropped": {}})
    test = read_split(test_dir, schema)
    # The training split's class balance decides the default gate (older models lack it).
    counts = manifest.get("class_counts") or test[schema.target].value_counts().to_dict()
    gate, chosen = metrics.resolve_gate_metric(schema.problem_type, quality_metric, counts)
    try:
        check_gate(gate, schema.problem_type, threshold)
    except ValueError as exc:
        raise JobError(str(exc)) from exc
    score = (
        metrics.classification if schema.problem_type == "classification" else metrics.regression
    )
    features = test[list(schema.features)]
    answers = metrics.predictions(model, features)  # once: the report reads them too
    report = score(model, features, test[schema.target], answers)
    value = report["metrics"][gate]["value"]
    if value is None:
        raise JobError(
            f"metric {gate} is undefined on this test split; pick another --quality-metric"
        )
    quality_gate: dict[str, Any] = {"metric": gate, "value": value, "chosen": chosen}
    if threshold is not None:
        # The pipeline's condition tests the signed margin (>= 0 passes), whichever way the
        # metric improves; value and threshold stay here for people to read.
        quality_gate.update(metrics.gate_verdict(gate, value, threshold))
    else:
        quality_gate["message"] = f"{gate} = {value:.6g}; no threshold given, so no verdict"
    evaluation = {
        "problem_type": schema.problem_type,
        "test_rows": len(test),
        **report,
        "quality_gate": quality_gate,
        # How the package is served, and its compiled form scored both ways on this split.
        "inference": compile.test_split_parity(model_dir, model, manifest, test, schema),
    }
    return evaluation, ReportInputs(model, manifest, test, evaluation, profile, answers)


def run(args: argparse.Namespace, paths: Paths) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    output = paths.map(args.output)
    profile = read_profile(paths.map(args.profile))
    with tempfile.TemporaryDirectory(dir=paths.root) as scratch:  # stay inside the job's tree
        model_dir = artifacts.unpack(paths.map(args.model), Path(scratch))
        evaluation, inputs = evaluate(
            model_dir, paths.map(args.test), args.quality_metric, args.threshold, profile
        )
    for name, m in evaluation["metrics"].items():
        log.info("test %s = %s", name, m["value"])
    gate = evaluation["quality_gate"]
    log.info("%s (gate metric %s: %s)", gate["message"], gate["metric"], gate["chosen"])
    write_report(output / REPORT_FILE, inputs)
    if profile is not None:
        write_json(output / PROFILE_FILE, profile)
    write_json(output / "evaluation.json", evaluation)  # last: its presence means "done"


def main(argv: Sequence[str] | None = None) -> int:
    return run_job("evaluate", lambda paths: run(parse_args(argv), paths))


if __name__ == "__main__":
    sys.exit(main())
