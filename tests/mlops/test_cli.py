"""The CLI's own behaviour: output, validation of what users type, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops.cli import main
from mlops.errors import MlopsError, NotFound
from mlops.home import Home
from mlops.registry import LocalModelRegistry


def test_definition_prints_the_pipeline_json(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pipeline", "definition"]) == 0
    definition = json.loads(capsys.readouterr().out)
    assert definition["Version"] == "2020-12-01"
    assert (
        definition["Steps"][0]["Arguments"]["AppSpecification"]["ImageUri"]
        == "local/sagemaker-mlops:latest"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pipeline", "run", "--data", "x.csv"], "--data needs --target"),
        (["pipeline", "run", "--param", "QualityThreshold"], "write Name=Value"),
        (
            ["pipeline", "run", "--param", "QualityThreshold=high"],
            "parameter QualityThreshold is Float",
        ),
        (["pipeline", "run", "--param", "Colour=red"], "unknown parameter(s) ['Colour']"),
    ],
)
def test_bad_run_arguments_are_explained(
    home: Home, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not home.runs.exists()


def test_missing_files_exit_3(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "run", "--data", "missing.csv", "--target", "y"]) == 3
    assert "missing.csv does not exist" in capsys.readouterr().err
    assert main(["endpoint", "invoke", "demo", "--file", "missing.csv"]) == 3
    assert main(["transform", "--model", "1", "--input", "missing", "--output", "out"]) == 3


def test_transform_options_are_checked_before_any_work(
    home: Home, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    (tmp_path / "in.csv").write_text("1,2\n")
    base = [
        "transform",
        "--model",
        "1",
        "--input",
        str(tmp_path / "in.csv"),
        "--output",
        str(tmp_path / "o"),
    ]
    assert main([*base, "--content-type", "application/x-npy"]) == 2
    assert "line-split transform takes" in capsys.readouterr().err
    assert main([*base, "--accept", "text/html"]) == 2
    assert "--accept 'text/html'" in capsys.readouterr().err


def test_demo_target_yields_to_an_explicit_parameter(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, str] = {}

    def fake_run(self: object, definition: object, overrides: dict[str, str], *names: str) -> None:
        seen.update(overrides)
        raise MlopsError("stop here")

    monkeypatch.setattr("mlops.executor.runner.LocalPipelineExecutor.run", fake_run)
    assert main(["pipeline", "run", "-p", "TargetColumn=island"]) == 2
    assert seen["TargetColumn"] == "island"


def test_steps_of_an_unknown_execution(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "steps", "nope"]) == 3
    assert "no execution 'nope'" in capsys.readouterr().err
    assert main(["pipeline", "steps"]) == 3
    assert "no pipeline execution yet" in capsys.readouterr().err


def test_models_commands(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    registry = LocalModelRegistry(home.registry)
    for _ in range(2):
        registry.create_model_package(
            "mlops-tabular",
            model_data_url="s3://b/m.tar.gz",
            image_uri="img",
            approval_status="PendingManualApproval",
            metrics={"metrics": {"accuracy": {"value": 0.9}}},
            metadata={"DatasetSha256": "ab" * 32},
            content_types=["text/csv"],
            response_types=[],
        )
    assert main(["models", "approve", "2", "--description", "alice: beats v1"]) == 0
    assert main(["models", "reject", "2", "--description", "bob: drift"]) == 0
    capsys.readouterr()
    assert main(["models", "describe", "2"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert (described["approval_status"], described["approval_description"]) == (
        "Rejected",
        "bob: drift",
    )
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "accuracy=0.9" in listed and "Rejected" in listed and "PendingManualApp" in listed
    assert main(["models", "describe", "7"]) == 3
    assert "has no version 7; it has versions [1, 2]" in capsys.readouterr().err


def test_usage_errors_exit_2_and_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "approve", "one"]) == 2
    assert main(["--help"]) == 0
    assert "pipeline" in capsys.readouterr().out


def test_importing_the_cli_pulls_in_no_heavy_module() -> None:
    code = (
        "import sys, mlops.cli, inference; heavy = [m for m in ('sagemaker', 'aws_cdk', 'sklearn', 'pandas')"
        " if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_report_that_cannot_be_written_warns_and_keeps_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model is registered by then: a missing report is a warning with the retry command."""
    from mlops import model_card
    from mlops.commands import pipeline

    class Unwritable:
        def __init__(self, *args: object) -> None:
            pass

        def write_report(self, output: object) -> str:
            raise NotFound("no report.html beside evaluation.json")

    monkeypatch.setattr(model_card, "LocalVersionFiles", Unwritable)
    package = SimpleNamespace(version=7)
    pipeline._print_model_docs(package)  # type: ignore[arg-type]
    warning = capsys.readouterr().err
    assert "version 7 was not written: no report.html beside evaluation.json" in warning
    assert "mlops models report 7" in warning


def test_an_unexpected_error_is_one_line_and_exit_70(
    home: Home, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise KeyError("steps")

    monkeypatch.setattr(LocalModelRegistry, "list_model_packages", broken)
    monkeypatch.delenv("MLOPS_DEBUG", raising=False)
    assert main(["models", "list"]) == 70
    assert capsys.readouterr().err.strip() == (
        "error: unexpected KeyError: 'steps' (MLOPS_DEBUG=1 shows the traceback)"
    )
    monkeypatch.setenv("MLOPS_DEBUG", "1")
    assert main(["models", "list"]) == 70
    shown = capsys.readouterr().err
    assert "Traceback" in shown and "broken" in shown
    assert shown.rstrip().endswith("(MLOPS_DEBUG=1 shows the traceback)")


@pytest.mark.parametrize("content", ['{"execution_id": "20260101-abc", "st', "{}", "[]"])
def test_a_corrupt_run_record_is_an_error_naming_the_file(
    home: Home, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    record = home.runs / "20260101-abc" / "execution.json"
    record.parent.mkdir(parents=True)
    record.write_text(content, encoding="utf-8")
    for argv in (["pipeline", "executions"], ["pipeline", "steps", "20260101-abc"]):
        assert main(argv) == 2
        shown = capsys.readouterr().err
        assert f"run record {record} is not a valid execution record" in shown
        assert "Traceback" not in shown and "unexpected" not in shown


def test_the_command_exits_with_mains_code_and_its_output_flushed(tmp_path: Path) -> None:
    """``python -m mlops.cli`` (and the ``mlops`` script) skip the interpreter's teardown: the
    exit code and every line written must survive that."""
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home")}
    failed = subprocess.run(
        [sys.executable, "-m", "mlops.cli", "models", "describe", "7"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 3
    assert "has no version 7" in failed.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "mlops.cli", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert helped.returncode == 0
    assert helped.stdout.rstrip().endswith("─╯")  # the help box, to its last line
