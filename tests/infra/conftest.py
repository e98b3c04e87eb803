"""One synth per stage per session (cdk-nag on, so any unacknowledged finding fails it); CDK's
built-in CloudFormation validation stays off here and on in one test of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app

STAGES = ("dev", "staging", "prod")  # every stage: the rehearsal needs them all


@pytest.fixture(scope="session")
def cdk_outs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    outs = {}
    for stage in STAGES:
        outs[stage] = tmp_path_factory.mktemp(f"cdk.out-{stage}")
        build_app({"stage": stage}, outdir=str(outs[stage]), validate=False).synth()
    return outs


@pytest.fixture(scope="session")
def cdk_out(cdk_outs: dict[str, Path]) -> Path:
    return cdk_outs["dev"]


def load_templates(outdir: Path) -> dict[str, dict[str, Any]]:
    return {
        p.name.removesuffix(".template.json"): json.loads(p.read_text())
        for p in outdir.glob("*.template.json")
    }


@pytest.fixture(scope="session")
def templates(cdk_out: Path) -> dict[str, dict[str, Any]]:
    return load_templates(cdk_out)


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == kind]


@pytest.fixture(scope="session")
def ci_calls() -> dict[str, list[Any]]:
    """The CodeBuild role's calls, recorded once per session against moto."""
    from infra.cicd import RELEASE_STAGES
    from infra.rehearsal.ci_calls import record_ci_calls
    from mlops.stages import names

    return record_ci_calls(names(), [names(stage=s) for s in RELEASE_STAGES], "us-east-1")
