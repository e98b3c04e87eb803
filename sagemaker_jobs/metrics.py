"""Model quality metrics in the shape SageMaker model metrics use (``metrics.<name>.value``),
and the quality gate's verdict on one of them.

Every averaged metric says how it was averaged, in its name (``f1_macro``, ``f1_weighted``)
and in an ``averaging`` entry beside its value, so no reader has to guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from sagemaker_jobs.contract import JobError
from sagemaker_jobs.metric_directions import GATE_METRICS, check_gate, higher_is_better

__all__ = [
    "GATE_METRICS",
    "Predictions",
    "classification",
    "gate_verdict",
    "predictions",
    "regression",
    "resolve_gate_metric",
]

DEFAULT_GATE = {"classification": "accuracy", "regression": "r2"}
# A target whose smallest class has under this share of the rows is imbalanced: accuracy
# rewards ignoring that class, so the default gate is balanced accuracy instead.
IMBALANCED_SHARE = 0.10
IMBALANCED_GATE = "balanced_accuracy"


def _value(x: float | None, averaging: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"value": None if x is None or np.isnan(x) else round(float(x), 6)}
    if averaging:
        entry["averaging"] = averaging
    return entry


@dataclass(frozen=True)
class Predictions:
    """The model's answers on one split, computed once: the metrics and the evaluation report
    both read them (on a large test split each ``predict`` costs seconds)."""

    labels: np.ndarray  # model.predict
    proba: np.ndarray | None  # model.predict_proba, for a classifier that has it


# Classifiers whose ``predict`` is the most probable class of ``predict_proba`` (the first on a
# tie), to the bit: their labels come from the probabilities, one pass over the trees, not two.
_PREDICT_IS_PROBA_ARGMAX = ("HistGradientBoostingClassifier", "RandomForestClassifier")


def predictions(model: Any, features: pd.DataFrame) -> Predictions:
    if not hasattr(model, "predict_proba"):
        return Predictions(np.asarray(model.predict(features)), None)
    proba = model.predict_proba(features)
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    if type(estimator).__name__ in _PREDICT_IS_PROBA_ARGMAX:
        return Predictions(np.asarray(model.classes_)[proba.argmax(axis=1)], proba)
    return Predictions(np.asarray(model.predict(features)), proba)


def classification(
    model: Any, features: pd.DataFrame, truth: pd.Series, given: Predictions | None = None
) -> dict[str, Any]:
    given = given or predictions(model, features)
    classes = [str(c) for c in model.classes_]
    # Every metric on integer codes: scikit-learn checks and sorts string labels again in each
    # call (seconds on a large split). Truth labels the model never saw get codes after its own.
    truth = truth.astype(str)
    names = [*classes, *sorted(set(truth.unique()) - set(classes))]
    true = pd.Categorical(truth, categories=names).codes.astype(np.int64)
    predicted = pd.Categorical(given.labels.astype(str), categories=names).codes.astype(np.int64)
    labels = list(range(len(classes)))
    result: dict[str, Any] = {
        "accuracy": _value(skm.accuracy_score(true, predicted)),
        "balanced_accuracy": _value(
            skm.balanced_accuracy_score(true, predicted), "macro (mean of per-class recall)"
        ),
        "f1_macro": _value(
            skm.f1_score(true, predicted, average="macro", labels=labels, zero_division=0),
            "macro (unweighted mean over classes)",
        ),
        "f1_weighted": _value(
            skm.f1_score(true, predicted, average="weighted", zero_division=0),
            "weighted by each class's test rows",
        ),
    }
    auc: float | None = None
    averaging = None
    present = len(np.unique(true))
    if given.proba is not None and present > 1:
        proba = given.proba
        if len(classes) == 2:
            auc = skm.roc_auc_score(true == 1, proba[:, 1])
            averaging = f"binary (positive class {classes[1]!r})"
        elif present == len(classes) and len(names) == len(classes):
            auc = skm.roc_auc_score(
                true, proba, multi_class="ovr", average="weighted", labels=labels
            )
            averaging = "one-vs-rest, weighted by each class's test rows"
    result["roc_auc"] = _value(auc, averaging)
    matrix = skm.confusion_matrix(true, predicted, labels=labels)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        true, predicted, labels=labels, zero_division=0
    )
    per_class = [
        {
            "class": name,
            "precision": round(float(p), 6),
            "recall": round(float(r), 6),
            "f1": round(float(f), 6),
            "support": int(n),
        }
        for name, p, r, f, n in zip(classes, precision, recall, f1, support, strict=True)
    ]
    return {
        "metrics": result,
        "per_class": per_class,
        "confusion_matrix": {"labels": classes, "matrix": matrix.tolist()},
    }


def regression(
    model: Any, features: pd.DataFrame, truth: pd.Series, given: Predictions | None = None
) -> dict[str, Any]:
    predicted = (given or predictions(model, features)).labels
    return {
        "metrics": {
            "rmse": _value(float(np.sqrt(skm.mean_squared_error(truth, predicted)))),
            "mae": _value(skm.mean_absolute_error(truth, predicted)),
            "r2": _value(skm.r2_score(truth, predicted)),
        }
    }


def smallest_class(class_counts: Mapping[str, int]) -> tuple[str, float]:
    """The rarest class and its share of the rows."""
    total = sum(class_counts.values())
    name = min(class_counts, key=lambda k: (class_counts[k], k))
    return name, class_counts[name] / total if total else 0.0


def resolve_gate_metric(
    problem_type: str, requested: str, class_counts: Mapping[str, int] | None = None
) -> tuple[str, str]:
    """The gate metric and why it is the one: asked for, or the default for this target."""
    try:
        metric = check_gate(requested, problem_type)
    except ValueError as exc:
        raise JobError(str(exc)) from exc
    if metric != "auto":
        return metric, "chosen with QualityMetric"
    if problem_type == "classification" and class_counts:
        name, share = smallest_class(class_counts)
        if share < IMBALANCED_SHARE:
            return IMBALANCED_GATE, (
                f"default for an imbalanced target: the smallest class {name!r} has {share:.1%} "
                f"of the training rows (under {IMBALANCED_SHARE:.0%}), and accuracy would reward "
                "ignoring it"
            )
    return DEFAULT_GATE[problem_type], f"default for {problem_type}"


def gate_verdict(metric: str, value: float, threshold: float) -> dict[str, Any]:
    """The gate's verdict: a signed margin (>= 0 passes, whichever way the metric improves)
    that the pipeline's fixed ``>= 0`` condition tests, and a message that says the direction."""
    higher = higher_is_better(metric)
    margin = value - threshold if higher else threshold - value
    passed = margin >= 0
    if higher:
        check = f"{metric} = {value:.6g} must be at least the threshold {threshold:.6g}"
        check += " (higher is better)"
    else:
        check = (
            f"{metric} = {value:.6g} must be at most the threshold {threshold:.6g} "
            "(lower is better: QualityThreshold is an upper bound)"
        )
    message = f"Quality gate {'passed' if passed else 'failed'}: {check}"
    if not passed:
        message += "; nothing was registered (set QualityThreshold or improve the model)"
    return {
        "threshold": threshold,
        "direction": "higher_is_better" if higher else "lower_is_better",
        "margin": round(margin, 9),
        "passed": passed,
        "message": message,
    }
