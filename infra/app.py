"""The composition root of the CDK app: one stage's stacks, plus the stage-independent release.

Topology (docs/deploy.md): per stage a foundation; in the build stage the model build (the
project's pipeline and model package group, once); per stage with an endpoint a deploy stack;
once per account and region the CI/CD stack, identical whatever ``-c stage`` says.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.cicd import RELEASE_STAGES, CicdStack, cicd_settings
from infra.foundation import FoundationStack
from infra.model_build import ModelBuildStack
from infra.model_deploy import ModelDeployStack
from infra.nag import acknowledge_findings, acknowledge_monitor, acknowledge_tracking_findings
from infra.tracking import MlflowTrackingServer
from mlops.errors import MlopsError
from mlops.stages import all_stages, build_stage, load_context, names, project_name


def build_app(
    context: dict[str, Any] | None = None, outdir: str | None = None, *, validate: bool = True
) -> cdk.App:
    """Build the app from ``cdk.json`` context (plus overrides), as `cdk synth` and tests see it.

    An ``App()`` made outside the CLI reads no ``cdk.json`` itself, so the context is loaded here.
    cdk-nag's AWS Solutions rules check every stack; an unacknowledged finding fails the synth.
    """
    merged = {**load_context(), **(context or {})}
    stage = str(merged.get("stage", "dev"))
    stages = all_stages(merged)  # every stage valid, or a clear error naming the bad one
    if stage not in stages:
        raise MlopsError(
            f"unknown stage {stage!r}: cdk.json defines {sorted(stages)}; pass -c stage=NAME"
        )
    settings = stages[stage]
    project = project_name(merged)  # cdk.json context "project" (default mlops-tabular)
    here, build = names(project, stage), names(project, build_stage(merged))
    release = [names(project, s) for s in RELEASE_STAGES]
    for n in release:
        if n.stage not in stages or not stages[n.stage].endpoint:
            raise MlopsError(
                f"the release deploys {n.stage!r}, which needs an endpoint in cdk.json stages"
            )
    app = cdk.App(context=merged, outdir=outdir, builtin_cloud_formation_validation=validate)
    env = cdk.Environment(account=settings.account, region=settings.region)
    foundation = FoundationStack(
        app, here.foundation_stack, names=here, build=build, settings=settings, env=env
    )
    stage_stacks: list[cdk.Stack] = [foundation]
    if stage == build.stage:
        stage_stacks.append(
            ModelBuildStack(
                app,
                here.build_stack,
                names=here,
                settings=settings,
                foundation=foundation,
                image_tag=merged.get("image_tag") or None,
                env=env,
            )
        )
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
            here.deploy_stack,
            names=here,
            build=build,
            endpoint=settings.endpoint,
            foundation=foundation,
            model_package_arn=merged.get("model_package_arn") or None,
            baseline_uri=merged.get("baseline_uri") or None,
            env=env,
        )
        if deploy.monitor:
            acknowledge_monitor(deploy.monitor)
        stage_stacks.append(deploy)
    build_settings = stages[build.stage]
    cicd = CicdStack(
        app,
        build.cicd_stack,
        settings=cicd_settings(merged, build),
        build=build,
        release=release,
        env=cdk.Environment(account=build_settings.account, region=build_settings.region),
    )
    for stack in stage_stacks:
        cdk.Tags.of(stack).add("project", "mlops")
        cdk.Tags.of(stack).add("stage", stage)
    cdk.Tags.of(cicd).add("project", "mlops")  # no stage: it serves them all
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    acknowledge_findings(foundation, cicd)
    return app
