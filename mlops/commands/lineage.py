"""`mlops lineage VERSION`: where a registered model came from and where it serves."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mlops.commands import GROUP_OPTION, STAGE_OPTION, TARGET_OPTION, out
from mlops.home import Home
from mlops.registry import open_registry


def lineage(
    version: Annotated[int, typer.Argument(help="Model package version.")],
    group: Annotated[str | None, GROUP_OPTION] = None,
    target: Annotated[str, TARGET_OPTION] = "local",
    stage: Annotated[str, STAGE_OPTION] = "dev",
    as_json: Annotated[bool, typer.Option("--json", help="Print the lineage as JSON.")] = False,
) -> None:
    """Trace a model version: data hash -> each step's image, code, inputs, outputs ->
    the package -> endpoints serving it."""
    from mlops.lineage import aws_lineage, local_lineage

    chosen = open_registry(Home.from_env(), target, stage, group)
    if chosen.aws is not None:
        found = aws_lineage(chosen.aws, chosen.group, version)
    else:
        found = local_lineage(Home.from_env(), chosen.group, version)
    if as_json:
        print(json.dumps(found.to_dict(), indent=2))
        return
    for line in found.lines():
        out.print(line, markup=False)
