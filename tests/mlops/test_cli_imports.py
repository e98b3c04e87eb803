"""The CLI stays light: no command, local or cloud, loads the CDK runtime (jsii starts Node)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
from moto import mock_aws
from mlops.cli import main
with mock_aws():
    code = main(sys.argv[1:])
heavy = sorted(m for m in ("aws_cdk", "jsii", "constructs", "cdk_nag", "infra.app") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def run_cli(tmp_path, *args: str) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MLOPS_HOME": str(tmp_path / "home"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_VALIDATE_ROLE": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_cloud_command_does_not_import_the_cdk_runtime(tmp_path):
    result = run_cli(tmp_path, "models", "list", "--target", "aws", "--stage", "dev")
    assert result["heavy"] == []
    assert result["code"] in (0, 3)  # an empty account: the group may not exist yet


def test_stage_settings_import_without_cdk():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, mlops.stages; print('aws_cdk' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "False"
