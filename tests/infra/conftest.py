"""One synth per stage per session (cdk-nag on, so any unacknowledged finding fails it), and one
synth through the pinned CDK CLI, as a platform engineer runs it (CDK's built-in CloudFormation
validation on, as there). Tests that use them run on one worker (WORKER_GROUPS, tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "staging", "prod")  # every stage: the rehearsal needs them all
CLI_STAGE = "prod"  # the stage with the most in it (a VPC, an endpoint, monitoring)


@pytest.fixture(scope="session")
def cdk_outs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    outs = {}
    for stage in STAGES:
        outs[stage] = tmp_path_factory.mktemp(f"cdk.out-{stage}")
        build_app({"stage": stage}, outdir=str(outs[stage]), validate=False).synth()
    return outs


@dataclass(frozen=True)
class CliSynth:
    stage: str
    outdir: Path
    returncode: int
    output: str


@pytest.fixture(scope="session")
def cli_synth(tmp_path_factory: pytest.TempPathFactory) -> CliSynth:
    """`cdk synth` of CLI_STAGE with the pinned CLI: offline, no credentials."""
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "the pinned CDK CLI is missing: run `make install`"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        CDK_DISABLE_VERSION_CHECK="1",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        AWS_EC2_METADATA_DISABLED="true",
        PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}",
    )
    outdir = tmp_path_factory.mktemp("cdk.out-cli") / "out"
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "-c", f"stage={CLI_STAGE}", "-o", str(outdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a hang, not a slow machine
    )
    return CliSynth(CLI_STAGE, outdir, result.returncode, result.stdout + result.stderr)


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
