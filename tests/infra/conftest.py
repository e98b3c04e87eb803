"""One synth per session, with CDK's built-in CloudFormation validation and cdk-nag both on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import build_app


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out")
    build_app({"stage": "dev"}, outdir=str(outdir)).synth()  # raises on any unacknowledged finding
    return outdir


@pytest.fixture(scope="session")
def templates(cdk_out: Path) -> dict[str, dict[str, Any]]:
    return {
        p.name.removesuffix(".template.json"): json.loads(p.read_text())
        for p in cdk_out.glob("*.template.json")
    }


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == kind]
