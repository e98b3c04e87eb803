"""`mlops lineage VERSION`: where a registered model came from and where it serves."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mlops.commands import PROJECT_OPTION, STAGE_OPTION, TARGET_OPTION, out, target_for
from mlops.target import TargetKind


def lineage(
    version: Annotated[int, typer.Argument(help="Model package version.")],
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    as_json: Annotated[bool, typer.Option("--json", help="Print the lineage as JSON.")] = False,
) -> None:
    """Trace a model version: data hash -> each step's image, code, inputs, outputs ->
    the package -> endpoints serving it."""
    chosen = target_for(target, stage, project)
    found = chosen.lineage(chosen.default_group, version)
    if as_json:
        print(json.dumps(found.to_dict(), indent=2))
        return
    for line in found.lines():
        out.print(line, markup=False)
