"""Shared fixtures: an isolated MLOPS_HOME per test, the local definition built once per worker,
and the worker groups that keep each expensive session fixture to one worker."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# One xdist worker per core: a model fitted in a test gets one OpenMP thread (read when OpenMP
# loads, so before anything imports scikit-learn). Jobs get theirs from MLOPS_JOB_CPUS below.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
import pytest

from mlops.home import Home
from mlops.local import DEMO_DATA

# A test that uses one of these fixtures runs on the worker of its group (`pytest -n 2 --dist
# loadgroup`): a session fixture is built once per worker, and these cost a pipeline run, the
# CDK synths or a server each. The first match names the group.
WORKER_GROUPS = {
    "demo_run": "demo-run",
    "cdk_outs": "cdk",
    "cli_synth": "cdk",
    "ci_calls": "cdk",
    "metrics_server": "metrics-server",
    "two_projects": "projects",  # a module fixture, but two workers would each build it
    "definitions": "api-requests",  # every stage's definition: 4 s a worker
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        group = next((g for name, g in WORKER_GROUPS.items() if name in fixtures), None)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
            if getattr(config.option, "loadgroup", False):  # on an xdist worker
                _name_group_in_node_id(item, group)


def _name_group_in_node_id(item: pytest.Item, group: str) -> None:
    """xdist's loadgroup scheduler reads the group from the node id (``id@group``), which
    pytest-xdist 3.8 sets through ``_nodeid``, an attribute pytest 9.2 no longer reads, so the
    groups were silently ignored (pytest-dev/pytest-xdist#1386): set the id pytest 9.2 reads."""
    from _pytest.nodeid import NodeId

    if isinstance(getattr(item, "_id", None), NodeId) and "@" not in item.nodeid:
        item._id = NodeId.parse(f"{item.nodeid}@{group}")


def offline(patch: pytest.MonkeyPatch) -> None:
    """No real account (no credentials, a fixed region), and no experiment tracking: `pipeline
    run` logs to MLflow by default, and a new store per test home costs seconds; only the
    tracking tests (tests/mlops/test_tracking.py, with --track) pay for it."""
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        patch.delenv(name, raising=False)
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    patch.setenv("MLOPS_TRACK", "false")
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # `make test` runs one xdist worker per core: a job in a worker gets one thread. With the
    # default (every CPU) two workers' OpenMP pools spin against each other: a 2 s test took 36 s.
    patch.setenv("MLOPS_JOB_CPUS", "1")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch)


@pytest.fixture(autouse=True)
def _patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy machine is no failure: a local endpoint's server gets ten minutes to answer (a
    server that exits is still reported at once)."""
    import mlops.endpoints

    monkeypatch.setattr(mlops.endpoints, "START_TIMEOUT_SECONDS", 600)


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
