"""Model build stack, once per project, in the build stage: the Model Package Group and the
SageMaker Pipeline whose body is ``build_pipeline``'s definition, the same JSON the local
executor runs. Every stage deploys the versions registered here (docs/deploy.md).

Image, role and bucket reach the body as CDK references through ``Fn::Sub`` variables; the
builder only ever sees ARN-shaped placeholders, so it needs no credentials and calls no AWS API.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.foundation import FoundationStack
from mlops.stages import ROOT, Names, StageSettings
from mlops.stages import names as default_names
from sagemaker_jobs.pipeline import PipelineSettings, definition_json

# What the builder sees; CloudFormation fills them in (see ``definition_body``).
IMAGE = "${ImageUri}"
ROLE = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${JobRoleName}"
BUCKET = "${ArtifactsBucket}"


def definition_body(
    settings: StageSettings, subnet_count: int = 0, names: Names | None = None
) -> str:
    names = names or default_names()
    network = (
        {
            "subnets": tuple(f"${{Subnet{i}}}" for i in range(subnet_count)),
            "security_group_ids": ("${SecurityGroup}",),
        }
        if subnet_count
        else {}
    )
    return definition_json(
        PipelineSettings(
            pipeline_name=names.pipeline,
            model_package_group=names.model_package_group,
            image_uri=IMAGE,
            role_arn=ROLE,
            bucket=BUCKET,
            region=settings.region,
            quality_threshold=settings.quality_threshold,
            tuning=settings.tuning,
            **network,
        )
    )


class ModelBuildStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        settings: StageSettings,
        foundation: FoundationStack,
        image_tag: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        job_role, pipeline_role = foundation.job_role, foundation.pipeline_role
        if not (job_role and pipeline_role):
            raise ValueError(f"{foundation.stack_name} is not the build stage's foundation")
        if image_tag:
            # CI/CD pushed the image to the stage's repository under this (immutable) tag.
            image_uri = foundation.repository.repository_uri_for_tag(image_tag)
        else:
            # `cdk deploy` builds the root Dockerfile (needs Docker); synth only stages it.
            asset = ecr_assets.DockerImageAsset(self, "ProjectImage", directory=str(ROOT))
            asset.repository.grant_pull(job_role)
            image_uri = asset.image_uri

        group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=names.model_package_group,
            model_package_group_description=f"Models of the {names.pipeline} pipeline",
        )
        variables: dict[str, str] = {
            "ImageUri": image_uri,
            "JobRoleName": job_role.role_name,
            "ArtifactsBucket": foundation.artifacts.bucket_name,
        }
        subnets = foundation.vpc.isolated_subnets if foundation.vpc else []
        for index, subnet in enumerate(subnets):
            variables[f"Subnet{index}"] = subnet.subnet_id
        if foundation.security_group:
            variables["SecurityGroup"] = foundation.security_group.security_group_id
        pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=names.pipeline,
            pipeline_description="preprocess -> train -> evaluate -> quality gate -> register",
            role_arn=pipeline_role.role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": cdk.Fn.sub(
                    definition_body(settings, len(subnets), names), variables
                )
            },
        )
        pipeline.node.add_dependency(group)
        cdk.CfnOutput(self, "PipelineName", value=names.pipeline)
        cdk.CfnOutput(self, "ModelPackageGroupName", value=names.model_package_group)
