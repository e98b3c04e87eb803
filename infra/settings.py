"""Stage settings from ``cdk.json`` context, validated once into typed objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.errors import MlopsError

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = ROOT / "cdk.json"


class StageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str | None = Field(None, pattern=r"^\d{12}$")
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    pipeline_name: str = Field("mlops-tabular", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
    model_package_group: str = Field("mlops-tabular", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    quality_threshold: float = Field(0.7, ge=0, le=1)


def load_context(path: Path = CDK_JSON) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("context", {}))
    except (OSError, json.JSONDecodeError) as exc:
        raise MlopsError(f"cannot read CDK context from {path}: {exc}") from exc


def stage_settings(context: dict[str, Any]) -> tuple[str, StageSettings]:
    stage = str(context.get("stage", "dev"))
    stages = context.get("stages", {})
    if stage not in stages:
        raise MlopsError(
            f"unknown stage {stage!r}: cdk.json defines {sorted(stages)}; pass -c stage=NAME"
        )
    try:
        return stage, StageSettings.model_validate(stages[stage])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MlopsError(f"stage {stage!r} in cdk.json: {problems}") from exc
