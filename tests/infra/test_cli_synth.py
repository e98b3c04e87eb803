"""`npx cdk synth` with the pinned CLI, as a platform engineer runs it: offline, no credentials."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlops.stages import names

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cdk_cli_synthesizes_each_stage(stage: str, tmp_path: Path) -> None:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "the pinned CDK CLI is missing: run `make install`"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        CDK_DISABLE_VERSION_CHECK="1",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        AWS_EC2_METADATA_DISABLED="true",
        PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}",
    )
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "-c", f"stage={stage}", "-o", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stack = names(stage=stage).build_stack if stage == "dev" else names(stage=stage).deploy_stack
    assert (tmp_path / "out" / f"{stack}.template.json").exists()
