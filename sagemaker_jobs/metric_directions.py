"""Which way each model metric improves: one table for the quality gate, the tuner and the
experiment comparison, and the gate's own rules (which metrics it takes per problem type, their
ranges). Kept free of heavy imports: CDK synth reads it through the tuning settings, and the
CLI checks pipeline parameters with it before any job runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Direction = Literal["Maximize", "Minimize"]

DIRECTIONS: dict[str, Direction] = {
    "accuracy": "Maximize",
    "balanced_accuracy": "Maximize",
    "f1_macro": "Maximize",
    "f1_weighted": "Maximize",
    "f1": "Maximize",  # runs before averaging was named: weighted
    "roc_auc": "Maximize",
    "r2": "Maximize",
    "rmse": "Minimize",
    "mae": "Minimize",
    "mse": "Minimize",
    "log_loss": "Minimize",
    "mape": "Minimize",
}

# Metrics a quality gate may use. Names and problem types are disjoint, so a metric says which
# problem it belongs to. Lower-is-better metrics make the threshold an upper bound.
GATE_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc"),
    "regression": ("r2", "rmse", "mae"),
}
# Older names still accepted as QualityMetric values.
GATE_ALIASES = {"f1": "f1_weighted"}
GATE_CHOICES: tuple[str, ...] = ("auto", *(m for ms in GATE_METRICS.values() for m in ms), "f1")
# The values a threshold can meaningfully take: (lowest, highest), None = unbounded.
GATE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "accuracy": (0.0, 1.0),
    "balanced_accuracy": (0.0, 1.0),
    "f1_macro": (0.0, 1.0),
    "f1_weighted": (0.0, 1.0),
    "roc_auc": (0.0, 1.0),
    "r2": (None, 1.0),
    "rmse": (0.0, None),
    "mae": (0.0, None),
}


def direction(metric: str) -> Direction:
    """The direction of ``accuracy``, ``validation:rmse`` and the like; unknown ones maximize."""
    return DIRECTIONS.get(metric.rsplit(":", 1)[-1].lower(), "Maximize")


def higher_is_better(metric: str) -> bool:
    return direction(metric) == "Maximize"


def gate_problem_type(metric: str) -> str | None:
    """The problem type a gate metric belongs to (None for ``auto`` or an unknown name)."""
    metric = GATE_ALIASES.get(metric, metric)
    return next((p for p, names in GATE_METRICS.items() if metric in names), None)


def check_gate(metric: str, problem_type: str = "auto", threshold: float | None = None) -> str:
    """Return the gate metric's canonical name, or raise ``ValueError`` saying what to pass.

    Runs before any job (parameter resolution) and again in Evaluate, once the data has
    decided the problem type."""
    if metric not in GATE_CHOICES:
        raise ValueError(
            f"QualityMetric {metric!r} is not a gate metric; use one of {', '.join(GATE_CHOICES)}"
        )
    metric = GATE_ALIASES.get(metric, metric)
    belongs = gate_problem_type(metric)
    if belongs and problem_type in GATE_METRICS and belongs != problem_type:
        raise ValueError(
            f"QualityMetric {metric!r} is a {belongs} metric but ProblemType is {problem_type}; "
            f"use one of {', '.join(('auto', *GATE_METRICS[problem_type]))}"
        )
    if threshold is not None and metric in GATE_RANGES:
        low, high = GATE_RANGES[metric]
        if (low is not None and threshold < low) or (high is not None and threshold > high):
            bound = "lower" if higher_is_better(metric) else "upper"
            span = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
            raise ValueError(
                f"QualityThreshold {threshold} is outside {metric}'s range {span}; as the "
                f"{bound} bound for {metric} it could never be met as meant"
            )
    return metric


def check_gate_parameters(values: Mapping[str, Any]) -> None:
    """Check a pipeline execution's QualityMetric against its ProblemType and QualityThreshold
    (when the definition has them), so a bad gate fails before the first job starts."""
    if "QualityMetric" not in values:
        return
    threshold = values.get("QualityThreshold")
    check_gate(
        str(values["QualityMetric"]),
        str(values.get("ProblemType", "auto")),
        float(threshold) if isinstance(threshold, int | float) else None,
    )
