"""The composition root of the CDK app."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from infra.model_build import ModelBuildStack
from infra.settings import load_context, stage_settings


def build_app(
    context: dict[str, Any] | None = None, outdir: str | None = None, *, validate: bool = True
) -> cdk.App:
    """Build the app from ``cdk.json`` context (plus overrides), as `cdk synth` and tests see it.

    An ``App()`` made outside the CLI reads no ``cdk.json`` itself, so the context is loaded here.
    """
    merged = {**load_context(), **(context or {})}
    stage, settings = stage_settings(merged)
    app = cdk.App(context=merged, outdir=outdir, builtin_cloud_formation_validation=validate)
    env = cdk.Environment(account=settings.account, region=settings.region)
    ModelBuildStack(app, f"mlops-{stage}-model-build", stage=stage, settings=settings, env=env)
    return app
