"""The composition root of the CDK app."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.cicd import CicdStack, cicd_settings
from infra.foundation import FoundationStack
from infra.model_build import ModelBuildStack
from infra.model_deploy import ModelDeployStack
from infra.nag import acknowledge_findings, acknowledge_monitor, acknowledge_tracking_findings
from infra.tracking import MlflowTrackingServer
from mlops.stages import load_context, stage_settings


def build_app(
    context: dict[str, Any] | None = None, outdir: str | None = None, *, validate: bool = True
) -> cdk.App:
    """Build the app from ``cdk.json`` context (plus overrides), as `cdk synth` and tests see it.

    An ``App()`` made outside the CLI reads no ``cdk.json`` itself, so the context is loaded here.
    cdk-nag's AWS Solutions rules check every stack; an unacknowledged finding fails the synth.
    """
    merged = {**load_context(), **(context or {})}
    stage, settings = stage_settings(merged)
    app = cdk.App(context=merged, outdir=outdir, builtin_cloud_formation_validation=validate)
    env = cdk.Environment(account=settings.account, region=settings.region)
    foundation = FoundationStack(
        app, f"mlops-{stage}-foundation", stage=stage, settings=settings, env=env
    )
    build = ModelBuildStack(
        app,
        f"mlops-{stage}-model-build",
        settings=settings,
        foundation=foundation,
        image_tag=merged.get("image_tag") or None,
        env=env,
    )
    stacks: list[cdk.Stack] = [foundation, build]
    if settings.mlflow.tracking_server:
        tracking = MlflowTrackingServer(
            foundation,
            "Mlflow",
            stage=stage,
            settings=settings.mlflow,
            bucket=foundation.artifacts,
            key=foundation.key,
        )
        acknowledge_tracking_findings(tracking)
    if settings.endpoint:
        deploy = ModelDeployStack(
            app,
            f"mlops-{stage}-model-deploy",
            stage=stage,
            endpoint=settings.endpoint,
            foundation=foundation,
            model_package_arn=merged.get("model_package_arn") or None,
            pipeline_name=settings.pipeline_name,
            baseline_uri=merged.get("baseline_uri") or None,
            env=env,
        )
        if deploy.monitor:
            acknowledge_monitor(deploy.monitor)
        stacks.append(deploy)
    cicd = CicdStack(app, "mlops-cicd", settings=cicd_settings(merged, settings), env=env)
    stacks.append(cicd)
    for stack in stacks:
        cdk.Tags.of(stack).add("project", "mlops")
        cdk.Tags.of(stack).add("stage", stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    acknowledge_findings(foundation, cicd)
    return app
