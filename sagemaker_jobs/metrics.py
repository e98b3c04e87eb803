"""Model quality metrics in the shape SageMaker model metrics use (``metrics.<name>.value``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from sagemaker_jobs.contract import JobError

# Metrics a quality gate may use: all maximize (sagemaker_jobs.metric_directions), as the
# gate condition is "at least the threshold".
GATE_METRICS = {
    "classification": ("accuracy", "f1", "roc_auc"),
    "regression": ("r2",),
}
DEFAULT_GATE = {"classification": "accuracy", "regression": "r2"}


def _value(x: float | None) -> dict[str, Any]:
    return {"value": None if x is None or np.isnan(x) else round(float(x), 6)}


def classification(model: Any, features: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    classes = [str(c) for c in model.classes_]
    predicted = model.predict(features).astype(str)
    result: dict[str, Any] = {
        "accuracy": _value(skm.accuracy_score(truth, predicted)),
        # Weighted F1: one definition for binary and multiclass, robust to class imbalance.
        "f1": _value(skm.f1_score(truth, predicted, average="weighted", zero_division=0)),
    }
    auc: float | None = None
    if hasattr(model, "predict_proba") and truth.nunique() > 1:
        proba = model.predict_proba(features)
        if len(classes) == 2:
            auc = skm.roc_auc_score(truth == classes[1], proba[:, 1])
        elif truth.nunique() == len(classes):
            auc = skm.roc_auc_score(
                truth, proba, multi_class="ovr", average="weighted", labels=classes
            )
    result["roc_auc"] = _value(auc)
    matrix = skm.confusion_matrix(truth, predicted, labels=classes)
    return {"metrics": result, "confusion_matrix": {"labels": classes, "matrix": matrix.tolist()}}


def regression(model: Any, features: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    predicted = model.predict(features)
    return {
        "metrics": {
            "rmse": _value(float(np.sqrt(skm.mean_squared_error(truth, predicted)))),
            "mae": _value(skm.mean_absolute_error(truth, predicted)),
            "r2": _value(skm.r2_score(truth, predicted)),
        }
    }


def resolve_gate_metric(problem_type: str, requested: str) -> str:
    if requested == "auto":
        return DEFAULT_GATE[problem_type]
    if requested not in GATE_METRICS[problem_type]:
        raise JobError(
            f"quality metric {requested!r} does not apply to {problem_type}; "
            f"use one of {', '.join(('auto', *GATE_METRICS[problem_type]))}"
        )
    return requested
