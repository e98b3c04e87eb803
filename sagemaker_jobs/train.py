"""Training job: fit the scikit-learn pipeline on the ``train`` channel.

SageMaker runs the project image as ``train``; that command is ``python3 -m
sagemaker_jobs.train``. Hyperparameters come from ``/opt/ml/input/config/hyperparameters.json``,
data from the ``train`` and ``validation`` channels (CSV plus ``schema.json`` from preprocess),
and the model goes to ``/opt/ml/model``: ``model.joblib``, its compiled form (``compiled.json`` and
``trees.onnx``, when it has one and matches scikit-learn on the validation split; see
``sagemaker_jobs.compile``) and ``manifest.json``, which says how the model is served and why.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sagemaker_jobs import artifacts, compile, hyperparameters, metrics
from sagemaker_jobs.contract import JobError, Paths, run_job
from sagemaker_jobs.data import Schema, read_split
from sagemaker_jobs.model import build_model

log = logging.getLogger("sagemaker_jobs.train")  # not __main__ under python -m


def read_schema(channel: Path) -> Schema:
    path = channel / "schema.json"
    if not path.exists():
        raise JobError(f"{path} is missing: the train channel must be the preprocess output")
    return Schema.from_dict(json.loads(path.read_text(encoding="utf-8")))


def run(paths: Paths) -> None:
    hp = hyperparameters.load(paths.hyperparameters_file)
    log.info("hyperparameters: %s", hp.model_dump())
    train_dir = paths.channel("train")
    schema = read_schema(train_dir)
    train = read_split(train_dir, schema)
    features = list(schema.features)
    model = build_model(schema, hp)
    started = time.perf_counter()
    model.fit(train[features], train[schema.target])
    log.info(
        "fitted %s on %d rows in %.2fs", hp.estimator, len(train), time.perf_counter() - started
    )

    validation_dir = paths.channel("validation")
    scores: dict[str, float | None] = {}
    # Parity is proven on the validation split; without one, on the rows the model was fit on.
    checked, split = train, "train"
    if validation_dir.exists():
        validation = read_split(validation_dir, schema)
        checked, split = validation, "validation"
        score = (
            metrics.classification
            if schema.problem_type == "classification"
            else metrics.regression
        )
        result = score(model, validation[features], validation[schema.target])["metrics"]
        scores = {name: m["value"] for name, m in result.items()}
        for name, value in scores.items():
            # One line per metric, the form SageMaker metric definitions scrape from the log.
            print(f"validation:{name}={value}", flush=True)
    model_dir = paths.model_dir()
    model_dir.mkdir(parents=True, exist_ok=True)
    inference = compile.build(model, schema, model_dir, checked, split, hp.compiled_inference)
    if inference["runtime"] == compile.RUNTIME:
        log.info(
            "compiled inference (%s): parity on the %s split %s",
            inference["runtime"],
            split,
            inference["parity"],
        )
    else:
        log.warning("served by scikit-learn: %s", inference["reason"])
    manifest = artifacts.save(
        model,
        schema,
        model_dir,
        {
            "hyperparameters": hp.model_dump(),
            "validation_metrics": scores,
            "train_rows": len(train),
            # The training split's class balance: the default gate and the model card read it.
            "class_counts": (
                train[schema.target].value_counts().sort_index().to_dict()
                if schema.problem_type == "classification"
                else None
            ),
            "inference": inference,
        },
    )
    log.info("model sha256 %s", manifest["sha256"])


def main(argv: Sequence[str] | None = None) -> int:
    if argv:  # SageMaker passes "train"; anything else is a mistake worth naming
        extra = [a for a in argv if a != "train"]
        if extra:
            print(
                f"train takes no arguments (got {extra}); set hyperparameters instead",
                file=sys.stderr,
            )
            return 2
    return run_job("train", run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
