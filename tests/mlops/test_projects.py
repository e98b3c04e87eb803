"""Projects side by side, through the CLI: one demo classification run and one regression run
in its own project, shared by the module (each run costs seconds); the other checks read them."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes

from mlops.cli import main
from mlops.executor.records import list_executions
from mlops.home import Home
from mlops.registry import LocalModelRegistry

pytestmark = pytest.mark.slow


FIRST_RUN_ERR = io.StringIO()  # the demo run's stderr: its heartbeat lines


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, Path]]:
    root = tmp_path_factory.mktemp("projects")
    data = root / "diabetes.csv"
    load_diabetes(as_frame=True, scaled=False).frame.head(150).to_csv(data, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(root / "home"))
        patch.setenv("MLOPS_TRACK", "0")
        # Steps take seconds anyway: a short heartbeat adds no wait to see it.
        patch.setenv("MLOPS_HEARTBEAT_SECONDS", "0.2")
        with contextlib.redirect_stderr(FIRST_RUN_ERR):
            assert main(["pipeline", "run"]) == 0  # the default project, mlops-tabular
        regression = ["--data", str(data), "--target-column", "target", "-p", "Estimator=linear"]
        gate = ["-p", "QualityMetric=r2", "-p", "QualityThreshold=0"]
        assert main(["pipeline", "run", "--project", "diabetes", *regression, *gate]) == 0
        yield Home(root / "home"), data


def test_each_project_has_its_group_pipeline_and_runs(
    two_projects: tuple[Home, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home, _ = two_projects
    registry = LocalModelRegistry(home.registry)
    assert registry.list_groups() == ["diabetes", "mlops-tabular"]
    assert {r.pipeline_name for r in list_executions(home.runs)} == {"diabetes", "mlops-tabular"}
    capsys.readouterr()
    assert main(["pipeline", "executions", "--project", "diabetes"]) == 0
    listed = capsys.readouterr().out
    assert "diabetes.csv" in listed and " target " in listed and "regression" in listed
    assert "penguins.csv" not in listed  # the other project's run is not listed
    assert main(["pipeline", "executions"]) == 0
    listed = capsys.readouterr().out
    assert "penguins.csv" in listed and "species" in listed and "classification" in listed
    assert "diabetes.csv" not in listed


def test_models_list_shows_data_set_target_and_problem_type(
    two_projects: tuple[Home, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, _ = two_projects
    sha = (
        LocalModelRegistry(home.registry)
        .list_model_packages("diabetes")[0]
        .metadata["DatasetSha256"]
    )
    capsys.readouterr()
    assert main(["models", "list", "--project", "diabetes"]) == 0
    listed = capsys.readouterr().out
    assert f"{sha[:12]} diabetes.csv" in listed and "regression" in listed and "rmse=" in listed
    # --group is the old name, kept as a hidden alias; MLOPS_PROJECT is the environment's.
    assert main(["models", "list", "--group", "diabetes"]) == 0
    assert capsys.readouterr().out == listed
    monkeypatch.setenv("MLOPS_PROJECT", "diabetes")
    assert main(["models", "list"]) == 0
    assert capsys.readouterr().out == listed
    monkeypatch.delenv("MLOPS_PROJECT")
    assert main(["models", "latest-approved", "--project", "diabetes"]) == 3
    assert "group 'diabetes' has no approved version" in capsys.readouterr().err
    assert "--group" not in _help(capsys, ["models", "list", "--help"])


def _help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_a_run_of_another_target_is_refused_before_any_job(
    two_projects: tuple[Home, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home, data = two_projects
    before = len(list_executions(home.runs))
    capsys.readouterr()
    argv = ["pipeline", "run", "--project", "diabetes", "--data", str(data)]
    assert main([*argv, "--target-column", "bmi"]) == 2
    message = capsys.readouterr().err
    assert "project 'diabetes' holds models of target column 'target'" in message
    assert "--project NAME" in message and "--project diabetes-bmi" in message
    assert main([*argv, "--target-column", "target", "--problem-type", "classification"]) == 2
    assert "problem type 'regression'" in capsys.readouterr().err
    assert len(list_executions(home.runs)) == before  # nothing ran


def test_a_repeated_run_with_the_same_model_registers_nothing(
    two_projects: tuple[Home, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home, _ = two_projects
    capsys.readouterr()
    assert main(["pipeline", "run"]) == 0  # every job a cache hit: the same model.tar.gz
    assert "unchanged: version 1 of mlops-tabular" in capsys.readouterr().out
    assert len(LocalModelRegistry(home.registry).list_model_packages("mlops-tabular")) == 1


def test_registration_refuses_another_problem_type(tmp_path: Path) -> None:
    """A problem type left to auto is only known once trained: the registry checks it."""
    from mlops.errors import MlopsError

    registry = LocalModelRegistry(tmp_path)

    def register(problem_type: str) -> None:
        registry.create_model_package(
            "p",
            model_data_url=f"s3://b/{problem_type}/model.tar.gz",
            image_uri="i",
            approval_status="PendingManualApproval",
            metrics={"problem_type": problem_type},
            metadata={},
            content_types=[],
            response_types=[],
        )

    register("classification")
    with pytest.raises(MlopsError, match=r"problem type 'classification'.*--project NAME"):
        register("regression")


def _first_run(home: Home) -> str:
    return list_executions(home.runs, "mlops-tabular")[-1].execution_id


def test_graph_shows_the_dag_and_writes_mermaid_beside_the_run(
    two_projects: tuple[Home, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home, _ = two_projects
    execution = _first_run(home)
    capsys.readouterr()
    assert main(["pipeline", "graph", execution]) == 0
    shown = capsys.readouterr()
    for step in ("Preprocess", "Train", "Evaluate", "QualityGate", "RegisterModel"):
        assert f"{step}: Succeeded " in shown.out
    assert "QualityGateFailed: NotStarted" in shown.out  # the branch not taken
    assert "(also after Preprocess)" in shown.out  # Evaluate needs Train and Preprocess
    mermaid = (home.runs / execution / "graph.mmd").read_text()
    assert mermaid.startswith("flowchart TD")
    assert "Preprocess --> Train" in mermaid and "QualityGate --> RegisterModel" in mermaid
    assert "class QualityGateFailed NotStarted" in mermaid
    assert str(home.runs / execution / "graph.mmd") in shown.err


def test_logs_print_a_step_or_every_step(
    two_projects: tuple[Home, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home, _ = two_projects
    execution = _first_run(home)
    train_log = (home.runs / execution / "steps" / "Train" / "log.txt").read_text()
    capsys.readouterr()
    assert main(["pipeline", "logs", execution, "Train"]) == 0
    assert capsys.readouterr().out == train_log and "validation:" in train_log
    assert main(["pipeline", "logs", execution, "--watch"]) == 0  # ended: prints and returns
    every = capsys.readouterr().out
    assert "==> Preprocess" in every and "==> Evaluate" in every and train_log in every
    assert main(["pipeline", "logs", execution, "Nope"]) == 3
    assert "has no step 'Nope' (it ran: Fingerprint, Preprocess, Train" in capsys.readouterr().err


def test_watch_follows_a_log_until_its_step_ends(tmp_path: Path) -> None:
    from mlops.commands.views import follow

    log = tmp_path / "log.txt"
    log.write_text("one\n")
    polls: list[float] = []
    written: list[str] = []

    def sleep(seconds: float) -> None:  # no wall-clock wait: the job "writes" between polls
        polls.append(seconds)
        with log.open("a") as handle:
            handle.write(f"line {len(polls)}\n")

    follow(log, lambda: len(polls) < 3, written.append, sleep=sleep, interval=0.5)
    assert "".join(written) == "one\nline 1\nline 2\nline 3\n" and polls == [0.5] * 3


def test_a_piped_run_prints_a_heartbeat_with_the_last_log_line(
    two_projects: tuple[Home, Path],
) -> None:
    beats = [line for line in FIRST_RUN_ERR.getvalue().splitlines() if line.startswith("... ")]
    assert beats and all(" running, " in b and "s elapsed" in b for b in beats)
    assert any(b.startswith("... Train running, ") and "s elapsed: " in b for b in beats)


def test_describe_shows_the_input_schema_in_order(
    two_projects: tuple[Home, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["models", "describe", "1", "--project", "diabetes"]) == 0
    schema = json.loads(capsys.readouterr().out)["input_schema"]
    assert (schema["target"], schema["problem_type"]) == ("target", "regression")
    names = [f["name"] for f in schema["features"]]
    assert names == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert [f["position"] for f in schema["features"]] == list(range(1, 11))
    assert {f["kind"] for f in schema["features"]} <= {"numeric", "categorical"}
