"""Which way each model metric improves: one table for the quality gate, the tuner and the
experiment comparison. Kept free of heavy imports: CDK synth reads it through the tuning settings."""

from __future__ import annotations

from typing import Literal

Direction = Literal["Maximize", "Minimize"]

DIRECTIONS: dict[str, Direction] = {
    "accuracy": "Maximize",
    "f1": "Maximize",
    "roc_auc": "Maximize",
    "r2": "Maximize",
    "rmse": "Minimize",
    "mae": "Minimize",
    "mse": "Minimize",
    "log_loss": "Minimize",
    "mape": "Minimize",
}


def direction(metric: str) -> Direction:
    """The direction of ``accuracy``, ``validation:rmse`` and the like; unknown ones maximize."""
    return DIRECTIONS.get(metric.rsplit(":", 1)[-1].lower(), "Maximize")


def higher_is_better(metric: str) -> bool:
    return direction(metric) == "Maximize"
