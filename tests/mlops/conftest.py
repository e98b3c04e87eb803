"""Fixtures shared by the mlops tests: a deployed stage faked with moto, and model archives."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from mlops.aws import Aws, Stage

STAGE = Stage("dev", "us-east-1", "mlops-tabular", "mlops-tabular")


@pytest.fixture
def aws(fake_aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """Stage dev in moto: the stage's clients, and the very handle every `--target aws` command
    gets (so a fake answer registered on it reaches the command)."""
    import mlops.target

    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    connect = mlops.target.connect  # other stages stay as cdk.json has them (or unknown)
    with mock_aws():
        handle = Aws(STAGE)
        monkeypatch.setattr(
            mlops.target, "connect", lambda stage: handle if stage == STAGE.name else connect(stage)
        )
        yield handle


@pytest.fixture
def model_archive(model_dir: Path, tmp_path: Path) -> Path:
    """The session's model packed as SageMaker packs /opt/ml/model: model.tar.gz, files on top."""
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for item in model_dir.iterdir():
            tar.add(item, arcname=item.name)
    return archive
