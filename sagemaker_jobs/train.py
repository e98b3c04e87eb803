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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sagemaker_jobs import (
    artifacts,
    compile,
    feature_selection,
    hyperparameters,
    importance,
    metrics,
    resources,
)
from sagemaker_jobs.contract import JobError, Paths, run_job
from sagemaker_jobs.data import Schema, read_split
from sagemaker_jobs.model import (
    build_model,
    estimator_matrix,
    training_inputs,
    training_matrix,
)

log = logging.getLogger("sagemaker_jobs.train")  # not __main__ under python -m


def read_schema(channel: Path) -> Schema:
    path = channel / "schema.json"
    if not path.exists():
        raise JobError(f"{path} is missing: the train channel must be the preprocess output")
    return Schema.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass
class Fitted:
    model: Any
    schema: Schema  # the features the model reads, with the training selection recorded
    rows: int  # of the training split
    class_counts: dict[str, int] | None  # the training split's, for a classifier


def _target(column: pd.Series) -> Any:
    """The target as the estimator reads it. Class labels become an object array whose cells
    share one string per class (a string column's own conversion makes a string per row: 40
    MB for 700k rows)."""
    if column.dtype.kind in "biuf":
        return column.to_numpy()
    codes, labels = pd.factorize(column, use_na_sentinel=False)
    return labels.to_numpy(dtype=object)[codes]


def _fit(
    hp: hyperparameters.Hyperparameters,
    schema: Schema,
    train_dir: Path,
    validation_dir: Path | None,
    keep: list[str] | None = None,
) -> tuple[Fitted, dict[str, str]]:
    """Read the training split, drop what the selection rules drop (or keep only ``keep``),
    and fit: the pipeline's column preparation on the raw rows, which are then let go, and the
    estimator on the prepared matrix (the raw table, the prepared one and the estimator's own
    copies were all in memory at once). Gradient boosting stops early on the validation split,
    as SageMaker's XGBoost does on its validation channel, rather than on a tenth of the
    training split that it would set aside (and copy); only its prepared rows are kept during
    the fit. Returns the fit and what was dropped."""
    train = read_split(train_dir, schema)
    rows = len(train)
    class_counts = (
        {str(k): int(n) for k, n in train[schema.target].value_counts().sort_index().items()}
        if schema.problem_type == "classification"
        else None
    )
    if keep is None:
        dropped = feature_selection.training_rules(train, schema.features)
        for name, reason in dropped.items():
            log.warning("feature selection dropped %r: %s", name, reason)
        keep = [name for name in schema.features if name not in dropped]
    else:
        dropped = {}
    if not keep:
        raise JobError(
            "feature selection dropped every feature (constant, near-constant or duplicate in "
            "the training split): nothing is left to learn from"
        )
    selected = schema.keeping(keep)
    model = build_model(selected, hp)
    columns, estimator = model.steps[0][1], model.steps[1][1]
    started = time.perf_counter()
    target = _target(train[schema.target])
    inputs = training_inputs(train[keep], selected, hp)
    del train  # the raw rows: from here on, the inputs, then the matrix the estimator reads
    resources.release_freed_memory()  # else the phases of a job stack their peaks
    matrix = training_matrix(columns, inputs, hp)
    del inputs
    resources.release_freed_memory()
    stop_early_on: dict[str, Any] = {}
    if validation_dir is not None and hp.estimator == "gradient_boosting":
        validation = read_split(validation_dir, schema)
        stop_early_on = {
            "X_val": estimator_matrix(columns, validation[keep], hp),
            "y_val": _target(validation[schema.target]),
        }
        del validation
    resources.release_freed_memory()
    estimator.fit(matrix, target, **stop_early_on)
    log.info(
        "fitted %s on %d rows x %d features in %.2fs",
        hp.estimator,
        rows,
        len(keep),
        time.perf_counter() - started,
    )
    return Fitted(model, selected, rows, class_counts), dropped


def _select_and_fit(
    hp: hyperparameters.Hyperparameters,
    schema: Schema,
    train_dir: Path,
    validation_dir: Path | None,
) -> Fitted:
    """Feature selection on the training split, then the fit (sagemaker_jobs.feature_selection):
    the rules always; with ``importance:K`` a first fit ranks the features by permutation
    importance on a sample of the validation split, and the model is refit on the top K."""
    fitted, dropped = _fit(hp, schema, train_dir, validation_dir)
    kept = list(fitted.schema.features)
    k = feature_selection.parse_mode(hp.feature_selection)
    scores: dict[str, float] = {}
    if k is not None and k < len(kept):
        ranked_on = read_split(validation_dir or train_dir, schema)
        ranking = importance.permutation_importance(
            fitted.model,
            ranked_on[kept],
            ranked_on[schema.target],
            scoring=importance.scorer_name("auto", schema.problem_type),
            kinds=dict(fitted.schema.features),
            max_rows=feature_selection.IMPORTANCE_MAX_ROWS,
            max_features=len(kept),
            repeats=feature_selection.IMPORTANCE_REPEATS,
        )
        scores = dict(zip(ranking.names, ranking.means.tolist(), strict=True))
        top = set(ranking.names[:k])
        for rank, name in enumerate(ranking.names, 1):
            if name not in top:
                dropped[name] = (
                    f"importance: rank {rank} of {len(kept)} (mean score drop "
                    f"{scores[name]:.4g}), not in the top {k}"
                )
        kept = [name for name in kept if name in top]
        log.info("feature selection keeps the %d most important: %s", k, ", ".join(kept))
        del ranked_on
        fitted, _ = _fit(hp, schema, train_dir, validation_dir, keep=kept)  # reads the split again
    record = feature_selection.training_record(hp.feature_selection, kept, dropped, scores)
    fitted.schema = fitted.schema.with_training_selection(record)
    return fitted


def run(paths: Paths) -> None:
    hp = hyperparameters.load(paths.hyperparameters_file)
    log.info("hyperparameters: %s", hp.model_dump())
    train_dir = paths.channel("train")
    schema = read_schema(train_dir)
    channel = paths.channel("validation")
    validation_dir = channel if channel.exists() else None
    all_features = list(schema.features)
    fitted = _select_and_fit(hp, schema, train_dir, validation_dir)
    # Read after the fit, which holds only the prepared rows of the validation split.
    validation = read_split(validation_dir, schema) if validation_dir is not None else None
    model, schema = fitted.model, fitted.schema
    features = list(schema.features)

    scores: dict[str, float | None] = {}
    # Parity is proven on the validation split; without one, on the rows the model was fit on.
    if validation is not None:
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
    else:
        checked = read_split(train_dir, schema).iloc[: compile.PARITY_ROWS]
        split = "train"
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
            "train_rows": fitted.rows,
            # The training split's class balance: the default gate and the model card read it.
            "class_counts": fitted.class_counts,
            "inference": inference,
            # The columns a request may send, in order: Preprocess's features, the ones
            # selection dropped too (they are accepted and ignored).
            "input_columns": all_features,
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
