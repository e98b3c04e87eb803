"""CI/CD stack: CodePipeline with CodeBuild projects running ``buildspec.yml``.

Build (check, test, synth) -> deploy staging with the latest approved model package -> smoke
test the staging endpoint -> manual approval -> deploy prod. An EventBridge rule starts it when
a version of the model package group is approved. Source: a zip in an S3 bucket, or a CodeStar
connection to GitHub/GitLab/Bitbucket (CodeCommit is closed to new customers).
"""

from __future__ import annotations

from typing import Any, Literal

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as pipeline_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlops.stages import StageSettings, explain

SOURCE_KEY = "source.zip"


class CicdSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["s3", "codestar"] = "s3"
    connection_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):"
    )
    repository: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name")
    branch: str = "main"
    model_package_group: str = "mlops-tabular"

    @model_validator(mode="after")
    def _source_complete(self) -> CicdSettings:
        if self.source == "codestar" and not (self.connection_arn and self.repository):
            raise ValueError("source 'codestar' needs connection_arn and repository (owner/name)")
        return self


def cicd_settings(context: dict[str, Any], stage: StageSettings) -> CicdSettings:
    """The ``cicd`` context block, defaulting the group to the stage's."""
    try:
        return CicdSettings.model_validate(
            {"model_package_group": stage.model_package_group, **context.get("cicd", {})}
        )
    except ValidationError as exc:
        raise explain(exc, "cicd") from exc


class CicdStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: CicdSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(
            self,
            "Key",
            alias="alias/mlops-cicd",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(365))],
        )
        self.access_logs = logs

        def bucket(construct_id: str, prefix: str) -> s3.Bucket:
            return s3.Bucket(
                self,
                construct_id,
                encryption=s3.BucketEncryption.KMS,
                encryption_key=key,
                enforce_ssl=True,
                versioned=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                server_access_logs_bucket=logs,
                server_access_logs_prefix=prefix,
                lifecycle_rules=[
                    s3.LifecycleRule(noncurrent_version_expiration=cdk.Duration.days(30))
                ],
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )

        artifacts = bucket("PipelineArtifacts", "pipeline-artifacts/")
        source_output = codepipeline.Artifact("Source")
        if settings.source == "codestar":
            owner, name = (settings.repository or "/").split("/", 1)
            source_action: codepipeline.IAction = pipeline_actions.CodeStarConnectionsSourceAction(
                action_name="Source",
                owner=owner,
                repo=name,
                branch=settings.branch,
                connection_arn=settings.connection_arn or "",
                output=source_output,
            )
        else:
            self.source_bucket = bucket("Source", "source/")
            source_action = pipeline_actions.S3SourceAction(
                action_name="Source",
                bucket=self.source_bucket,
                bucket_key=SOURCE_KEY,
                output=source_output,
                trigger=pipeline_actions.S3Trigger.NONE,  # started by approvals and by hand
            )
            cdk.CfnOutput(
                self, "SourceLocation", value=self.source_bucket.s3_url_for_object(SOURCE_KEY)
            )

        self.project = codebuild.PipelineProject(
            self,
            "Project",
            description="Runs buildspec.yml: the same make targets a developer runs",
            build_spec=codebuild.BuildSpec.from_source_filename("buildspec.yml"),
            encryption_key=key,
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.MEDIUM,
                privileged=True,  # `cdk deploy` builds the project image with Docker
            ),
            timeout=cdk.Duration.minutes(90),
        )
        region, account, partition = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="CdkDeployThroughBootstrapRoles",
                actions=["sts:AssumeRole"],
                resources=[
                    f"arn:{partition}:iam::{account}:role/cdk-hnb659fds-*-{account}-{region}"
                ],
            )
        )
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="FindApprovedModel",
                actions=["sagemaker:ListModelPackages"],
                resources=["*"],
            )
        )
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="SmokeTest",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[f"arn:{partition}:sagemaker:{region}:{account}:endpoint/mlops-staging"],
            )
        )

        def run(
            name: str, target: str, stage: str | None = None
        ) -> pipeline_actions.CodeBuildAction:
            variables = {"CI_TARGET": codebuild.BuildEnvironmentVariable(value=target)}
            if stage:
                variables["STAGE"] = codebuild.BuildEnvironmentVariable(value=stage)
            return pipeline_actions.CodeBuildAction(
                action_name=name,
                project=self.project,
                input=source_output,
                environment_variables=variables,
            )

        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name="mlops-release",
            artifact_bucket=artifacts,
            pipeline_type=codepipeline.PipelineType.V2,
            stages=[
                codepipeline.StageProps(stage_name="Source", actions=[source_action]),
                codepipeline.StageProps(
                    stage_name="Build", actions=[run("CheckTestSynth", "ci-build")]
                ),
                codepipeline.StageProps(
                    stage_name="Staging",
                    actions=[
                        run("Deploy", "ci-deploy", "staging"),
                    ],
                ),
                codepipeline.StageProps(
                    stage_name="SmokeTest", actions=[run("InvokeStaging", "ci-smoke", "staging")]
                ),
                codepipeline.StageProps(
                    stage_name="Approve",
                    actions=[
                        pipeline_actions.ManualApprovalAction(action_name="PromoteToProd"),
                    ],
                ),
                codepipeline.StageProps(
                    stage_name="Prod", actions=[run("Deploy", "ci-deploy", "prod")]
                ),
            ],
        )
        events.Rule(
            self,
            "OnModelApproved",
            description="A model version was approved: release it through staging to prod",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={
                    "ModelPackageGroupName": [settings.model_package_group],
                    "ModelApprovalStatus": ["Approved"],
                },
            ),
            targets=[targets.CodePipeline(self.pipeline)],
        )
        cdk.CfnOutput(self, "ReleasePipeline", value=self.pipeline.pipeline_name)
