"""Fixtures shared by the mlops tests: the session's demo run, a deployed stage faked with moto,
and model archives."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from moto import mock_aws

from mlops.aws import Aws, Stage
from mlops.cli import main
from mlops.executor.records import ExecutionRecord, find_execution
from mlops.home import Home
from mlops.registry import LocalModelRegistry, ModelPackage
from tests.conftest import offline

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


@dataclass(frozen=True)
class DemoRun:
    """What `mlops pipeline run` printed and left: its home, exit code and execution."""

    home: Home
    code: int
    out: str
    err: str
    execution_id: str
    tracking_uri: str
    packages: list[ModelPackage]  # the group's versions right after the run (tests add more)

    @property
    def record(self) -> ExecutionRecord:
        return find_execution(self.home.runs, self.execution_id)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """main() with stdout and stderr captured (capsys is per test; rich prints to sys.std*)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """`mlops pipeline run` on the demo data in a fresh home, once per session, as `make run`
    does it, with tracking pointed at a store that cannot be created (a path under a file): the
    run must not mind (tests/mlops/test_pipeline_run.py), and the tracking tests read how the
    failure was reported. Tests that add to this home (another run, an endpoint) find their
    versions and executions by number and id, never as "the only" or "the latest" one."""
    root = tmp_path_factory.mktemp("demo")
    blocker = root / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    broken = f"sqlite:///{blocker}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        offline(patch)
        patch.setenv("MLOPS_HOME", str(root / "home"))
        code, out, err = run_cli(["pipeline", "run", "--track", "--tracking-uri", broken])
        home = Home.from_env()
        execution_id = find_execution(home.runs, "latest").execution_id
        packages = LocalModelRegistry(home.registry).list_model_packages("mlops-tabular")
    yield DemoRun(home, code, out, err, execution_id, broken, packages)
