"""`npx cdk synth` with the pinned CLI, as a platform engineer runs it: offline, no credentials
(the session's CLI synth, tests/infra/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.stages import names

from .conftest import CliSynth


@pytest.mark.slow
def test_cdk_cli_synthesizes_a_stage_with_cloudformation_validation(cli_synth: CliSynth) -> None:
    assert cli_synth.returncode == 0, cli_synth.output
    stack = names(stage=cli_synth.stage).deploy_stack
    assert (cli_synth.outdir / f"{stack}.template.json").exists()


def _without_path_metadata(template: Path) -> str:
    """The template as written (key order kept), less the `aws:cdk:path` metadata that the CLI
    asks for and an in-process app does not."""
    content = json.loads(template.read_text())
    for resource in content.get("Resources", {}).values():
        metadata = resource.get("Metadata", {})
        metadata.pop("aws:cdk:path", None)
        if not metadata:
            resource.pop("Metadata", None)
    return json.dumps(content, indent=1)


@pytest.mark.slow
def test_synth_is_deterministic(cli_synth: CliSynth, cdk_outs: dict[str, Path]) -> None:
    """The CLI's synth and the session's in-process synth of the same stage, in two processes:
    the same templates, down to the order of keys."""
    assert cli_synth.returncode == 0, cli_synth.output
    session = cdk_outs[cli_synth.stage]
    names = sorted(p.name for p in session.glob("*.template.json"))
    assert names == sorted(p.name for p in cli_synth.outdir.glob("*.template.json"))
    for name in names:
        cli, here = cli_synth.outdir / name, session / name
        assert _without_path_metadata(cli) == _without_path_metadata(here), name
