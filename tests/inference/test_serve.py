"""The serve entry point's own checks, and the promise that serving stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inference.config import SettingsError, from_env, to_env
from inference.serve import main
from mlops.cli import main as mlops_main


def test_settings_come_from_the_sagemaker_environment() -> None:
    settings = from_env(
        {
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
        }
    )
    assert (
        settings.port,
        settings.workers,
        settings.max_payload_bytes,
        settings.default_accept,
    ) == (9000, 3, 2 * 1024 * 1024, "text/csv")
    assert from_env(to_env(settings)) == settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT"),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "SAGEMAKER_MODEL_SERVER_WORKERS"),
        (
            {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "image/png"},
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",
        ),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_env(env)


def test_serve_refuses_a_missing_model_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--model-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert mlops_main(["serve", "--model-dir", str(tmp_path / "nope")]) == 2


def test_serving_imports_no_sdk_no_cdk_no_cli() -> None:
    code = (
        "import sys, inference.app, inference.serve, inference.transform, inference.handler;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'aws_cdk', 'boto3', 'mlops', 'typer')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_serve_rejects_unknown_options_and_log_levels(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--wokers", "4"])
    assert "unrecognized arguments: --wokers" in capsys.readouterr().err
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    assert main(["serve", "--model-dir", str(tmp_path)]) == 2
    assert "LOG_LEVEL 'VERBOSE'" in capsys.readouterr().err
