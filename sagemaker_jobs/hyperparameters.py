"""Training hyperparameters: SageMaker passes every value as a string; parse and bound them here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sagemaker_jobs.contract import JobError

Estimator = Literal["gradient_boosting", "random_forest", "linear"]


class Hyperparameters(BaseModel):
    """What ``train`` accepts; unknown names are errors so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    estimator: Estimator = "gradient_boosting"
    n_estimators: int = Field(200, ge=1, le=5000, description="trees (boosting iterations)")
    learning_rate: float = Field(0.1, gt=0, le=1, description="gradient boosting step size")
    max_depth: int | None = Field(None, ge=1, le=100, description="tree depth; empty = no limit")
    min_samples_leaf: int = Field(1, ge=1, le=10_000)
    l2_regularization: float = Field(
        0.0, ge=0, le=1000, description="gradient boosting's L2 penalty on leaf values"
    )
    regularization: float = Field(
        1.0, gt=0, description="C of logistic regression, 1/alpha of ridge"
    )
    min_category_fraction: float = Field(
        0.01, ge=0, lt=0.5, description="rarer categories are grouped as infrequent"
    )
    max_categories: int = Field(
        20, ge=2, le=1000, description="categories kept per column (the rest: one infrequent group)"
    )
    random_state: int = 42
    compiled_inference: bool = Field(
        True, description="serve through the compiled form when it matches scikit-learn"
    )
    feature_selection: str = Field(
        "rules",
        pattern=r"^(rules|importance:[1-9][0-9]*)$",
        description="rules (drop constant, near-constant and duplicate features) or "
        "importance:K (then keep the K most important)",
    )


def _parse_value(value: object) -> object:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("", "none", "null"):
        return None
    try:
        return json.loads(text)  # "100" -> 100, "0.1" -> 0.1, '"x"' -> "x"
    except json.JSONDecodeError:
        return text


def parse(raw: dict[str, object]) -> Hyperparameters:
    # SageMaker and its toolkits add their own entries (sagemaker_*, _tuning_objective_metric).
    ours = {k: _parse_value(v) for k, v in raw.items() if not k.startswith(("sagemaker_", "_"))}
    ours = {k: v for k, v in ours.items() if v is not None or k == "max_depth"}
    try:
        return Hyperparameters.model_validate(ours)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'hyperparameters'}: {e['msg']}"
            + (f" (got {e['input']!r})" if "input" in e and e["type"] != "extra_forbidden" else "")
            for e in exc.errors()
        )
        valid = ", ".join(Hyperparameters.model_fields)
        raise JobError(f"bad hyperparameters: {problems}. Valid names: {valid}") from exc


def load(path: Path) -> Hyperparameters:
    if not path.exists():
        return Hyperparameters()
    try:
        raw = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise JobError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise JobError(f"{path.name} must hold a JSON object of name: value strings")
    return parse(raw)
