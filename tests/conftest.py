"""Shared fixtures: an isolated MLOPS_HOME per test, the local definition built once per worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops.home import Home
from mlops.local import DEMO_DATA


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real account: no credentials, a fixed region."""
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _no_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pipeline run` logs to MLflow by default, and a new store per test home costs seconds:
    only the tracking tests (tests/mlops/test_tracking.py, with --track) pay for it."""
    monkeypatch.setenv("MLOPS_TRACK", "false")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any credentials will do for moto and for our own server: boto3 only needs to sign."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    root = tmp_path / "mlops-home"
    monkeypatch.setenv("MLOPS_HOME", str(root))
    return Home(root)


@pytest.fixture(scope="session")
def local_definition() -> dict[str, Any]:
    from mlops.local import local_settings
    from sagemaker_jobs.pipeline import definition_json

    return json.loads(definition_json(local_settings(code_version="test")))


@pytest.fixture
def penguins() -> pd.DataFrame:
    return pd.read_csv(DEMO_DATA)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained in-process on the demo data, saved (compiled form included) as the
    training job saves it."""
    from sagemaker_jobs import artifacts, compile, data
    from sagemaker_jobs.hyperparameters import Hyperparameters
    from sagemaker_jobs.model import build_model

    directory = tmp_path_factory.mktemp("model")
    table, schema = data.prepare(pd.read_csv(DEMO_DATA), data.DataSpec(target="species"))
    model = build_model(schema, Hyperparameters(n_estimators=20))
    model.fit(table[list(schema.features)], table[schema.target])
    inference = compile.build(model, schema, directory, table, "train", enabled=True)
    artifacts.save(model, schema, directory, {"inference": inference})
    return directory
