"""`mlops lineage VERSION`: where a registered model came from and where it serves."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mlops.commands import DEFAULT_GROUP, GROUP_OPTION, STAGE_OPTION, TARGET_OPTION, out
from mlops.errors import MlopsError
from mlops.home import Home


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

    if target == "local":
        found = local_lineage(Home.from_env(), group or DEFAULT_GROUP, version)
    elif target == "aws":
        from mlops.aws import Aws, Stage

        deployed = Stage.load(stage)
        found = aws_lineage(Aws(deployed), group or deployed.model_package_group, version)
    else:
        raise MlopsError(f"--target {target!r}: use local or aws")
    if as_json:
        print(json.dumps(found.to_dict(), indent=2))
        return
    for line in found.lines():
        out.print(line, markup=False)
