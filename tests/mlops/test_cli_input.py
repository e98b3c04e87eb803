"""What users type reaches them back as typed: never read as rich markup, names matched in full,
`--target` checked by typer, and nothing written outside MLOPS_HOME, temporary files included."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from mlops.cli import main
from mlops.errors import MlopsError
from mlops.home import Home

NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["endpoint", "status", "demo[/x]"], "demo[/x]"),
        (["endpoint", "deploy", "--name", "demo[/x]"], "demo[/x]"),
        (["endpoint", "invoke", "demo[/x]", "--file", "rows[/x].csv"], "rows[/x].csv"),
        (["models", "list", "--group", "g[/x]"], "g[/x]"),
        (["pipeline", "run", "--data", "d[/x].csv", "--target-column", "y"], "d[/x].csv"),
        (["pipeline", "run", "-p", "QualityThreshold=[/x]"], "[/x]"),
        (["data", "upload", "data[/x].csv"], "data[/x].csv"),
    ],
)
def test_user_text_is_never_read_as_markup(
    home: Home, capsys: pytest.CaptureFixture[str], argv: list[str], shown: str
) -> None:
    assert main(argv) in (2, 3)  # the user's mistake, not a crash (70)
    err = capsys.readouterr().err
    assert shown in err and "MarkupError" not in err and "unexpected" not in err


def test_an_uploaded_file_name_is_printed_as_is(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "[bold]sales.csv"  # a path cannot hold "/", but a tag without one
    data.write_text("a,b\n1,2\n")
    assert main(["data", "upload", str(data)]) == 0
    assert capsys.readouterr().out.strip().endswith("/[bold]sales.csv")


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["endpoint", "deploy", "--name", "demo\n"], "endpoint name 'demo\\n'"),
        (["models", "list", "--group", "group\n"], "model package group name 'group\\n'"),
        (["endpoint", "deploy", "--name", "-demo"], "endpoint name '-demo'"),
    ],
)
def test_names_match_in_full_and_the_message_shows_the_real_pattern(
    home: Home, capsys: pytest.CaptureFixture[str], argv: list[str], what: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{what} must match {NAME_PATTERN}" in err
    assert not (home.root / "endpoints").exists() and not (home.registry / "group\n").exists()


def test_an_unknown_target_is_a_usage_error(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["pipeline", "executions", "--target", "cloud"],
        ["endpoint", "status", "demo", "--target", "gcp"],
        ["data", "upload", "x.csv", "--target", "s3"],
        ["experiments", "log", "latest", "--target", "azure"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Invalid value for '--target'" in err and "'local', 'aws'" in err


def test_pipeline_run_names_the_column_target_column_and_keeps_target(
    home: Home, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[str] = []

    def fake_run(self: object, definition: object, overrides: dict[str, str], *names: str) -> None:
        seen.append(overrides["TargetColumn"])
        raise MlopsError("stop here")

    monkeypatch.setattr("mlops.executor.runner.LocalPipelineExecutor.run", fake_run)
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    assert main(["pipeline", "run", "--data", str(data), "--target-column", "b"]) == 2
    assert main(["pipeline", "run", "--data", str(data), "--target", "a"]) == 2
    assert seen == ["b", "a"]


def test_temporary_files_stay_under_mlops_home(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command's temporary folders (and its children's, through TMPDIR) land in home/tmp."""
    outside = tmp_path / "system-tmp"
    outside.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(outside))
    monkeypatch.setenv("TMPDIR", str(outside))
    seen: dict[str, Any] = {}

    def upload(self: object, source: Path) -> str:
        import os

        with tempfile.TemporaryDirectory() as scratch:
            seen["scratch"], seen["TMPDIR"] = scratch, os.environ["TMPDIR"]
        return "s3://mlops-local/x"

    monkeypatch.setattr("mlops.target.local.LocalTarget.upload", upload)
    assert main(["data", "upload", "anything.csv"]) == 0
    assert Path(seen["scratch"]).parent == home.tmp and seen["TMPDIR"] == str(home.tmp)
    assert list(outside.iterdir()) == []
    assert tempfile.tempdir == str(outside)  # restored after the command
