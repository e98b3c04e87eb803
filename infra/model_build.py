"""Model build stack: the project image, artifacts bucket, SageMaker role, Model Package Group
and the SageMaker Pipeline whose body is ``build_pipeline``'s definition: the same JSON the
local executor runs. The infrastructure issue hardens this and adds the deploy stacks."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.settings import ROOT, StageSettings
from sagemaker_jobs.pipeline import PipelineSettings, definition_json


class ModelBuildStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        settings: StageSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        role_name = f"mlops-{stage}-sagemaker"
        bucket_prefix = f"mlops-{stage}-artifacts"

        image = ecr_assets.DockerImageAsset(self, "ProjectImage", directory=str(ROOT))
        bucket = s3.Bucket(
            self,
            "Artifacts",
            bucket_name=f"{bucket_prefix}-{cdk.Aws.ACCOUNT_ID}-{cdk.Aws.REGION}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        role = iam.Role(
            self,
            "SageMakerRole",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        )
        bucket.grant_read_write(role)
        image.repository.grant_pull(role)

        group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup", model_package_group_name=settings.model_package_group
        )
        # Account values are CloudFormation placeholders inside the body, resolved by Fn::Sub;
        # CDK tokens must not appear in the string (they would turn it into Fn::Join).
        body = definition_json(
            PipelineSettings(
                pipeline_name=settings.pipeline_name,
                model_package_group=settings.model_package_group,
                image_uri="${ImageUri}",
                role_arn=f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{role_name}",
                bucket=f"{bucket_prefix}-${{AWS::AccountId}}-${{AWS::Region}}",
                region=settings.region,
                quality_threshold=settings.quality_threshold,
            )
        )
        pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=settings.pipeline_name,
            role_arn=role.role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": cdk.Fn.sub(body, {"ImageUri": image.image_uri})
            },
        )
        pipeline.node.add_dependency(group, role)
        cdk.CfnOutput(self, "PipelineName", value=settings.pipeline_name)
        cdk.CfnOutput(self, "ArtifactsBucket", value=bucket.bucket_name)
