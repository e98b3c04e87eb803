"""CI/CD stack, once per account and region: CodePipeline with a CodeBuild project running
``buildspec.yml``.

Plan (the newest approved version, and whether prod already serves it) -> build (check, test,
synth) -> deploy staging with the planned model package of the build stage's group -> smoke test
the staging endpoint -> manual approval -> deploy prod; every stage after Plan is skipped when
there is nothing to release. An EventBridge rule starts it when a version of that group changes
while approved. Source: a zip in an S3 bucket, or a CodeStar connection to
GitHub/GitLab/Bitbucket (CodeCommit is closed to new customers). The stack does not depend on
``-c stage``: every synth produces the same template.
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

from mlops.stages import ROOT, Names, explain

SOURCE_KEY = "source.zip"
# The stages the release deploys, in order (each needs an endpoint in cdk.json).
RELEASE_STAGES = ("staging", "prod")
# The Plan action's variables namespace (buildspec.yml exports MLOPS_RELEASE, MODEL_PACKAGE_ARN).
PLAN_NAMESPACE = "Plan"
# A Debian image, so the Makefile's Chromium installs (docker/codebuild/Dockerfile says why).
BUILD_IMAGE_DIR = ROOT / "docker" / "codebuild"


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


def cicd_settings(context: dict[str, Any], build: Names) -> CicdSettings:
    """The ``cicd`` context block, defaulting the group to the build stage's."""
    try:
        return CicdSettings.model_validate(
            {"model_package_group": build.model_package_group, **context.get("cicd", {})}
        )
    except ValidationError as exc:
        raise explain(exc, "cicd") from exc


class CicdStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: CicdSettings,
        build: Names,
        release: list[Names],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(
            self,
            "Key",
            alias=build.cicd_key_alias,
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
                build_image=codebuild.LinuxBuildImage.from_asset(
                    self, "BuildImage", directory=str(BUILD_IMAGE_DIR)
                ),
                compute_type=codebuild.ComputeType.MEDIUM,
                # No Docker inside: the release deploys staging and prod, whose stacks have no
                # image asset (the project image is built with the build stage's stack).
                privileged=False,
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
        # What the CI targets' CLI commands call, as the deploy rehearsal records them against
        # moto: `mlops models latest-approved`, `mlops monitor baseline --uri` and `mlops
        # endpoint wait` (registry and endpoint reads, no S3), `mlops endpoint invoke` (ci-smoke).
        sagemaker_arn = f"arn:{partition}:sagemaker:{region}:{account}"
        group = settings.model_package_group
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadRegistry",
                actions=["sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage"],
                resources=[
                    f"{sagemaker_arn}:model-package-group/{group}",
                    f"{sagemaker_arn}:model-package/{group}/*",
                ],
            )
        )
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="FindApprovedModel", actions=["sagemaker:ListModelPackages"], resources=["*"]
            )
        )
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="WatchEndpoints",
                actions=[
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeModel",
                ],
                resources=[
                    *(f"{sagemaker_arn}:endpoint/{n.endpoint}" for n in release),
                    # CloudFormation names the configs and models (a new one per update).
                    f"{sagemaker_arn}:endpoint-config/*",
                    f"{sagemaker_arn}:model/*",
                ],
            )
        )
        self.project.add_to_role_policy(
            iam.PolicyStatement(
                sid="SmokeTest",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[f"{sagemaker_arn}:endpoint/{release[0].endpoint}"],
            )
        )

        def run(
            name: str,
            target: str,
            stage: str,
            namespace: str | None = None,
            **more: str,
        ) -> pipeline_actions.CodeBuildAction:
            variables = {
                key: codebuild.BuildEnvironmentVariable(value=value)
                for key, value in {"CI_TARGET": target, "STAGE": stage, **more}.items()
            }
            return pipeline_actions.CodeBuildAction(
                action_name=name,
                project=self.project,
                input=source_output,
                environment_variables=variables,
                variables_namespace=namespace,
            )

        # The rule below fires on every state change of an approved version, a metadata edit
        # too, and SageMaker's event does not say what changed. So the run first plans: the
        # newest approved version, and whether the last stage already serves it. Every later
        # stage enters only if there is something to release (else it is skipped: the run
        # succeeds without asking for the prod approval again), and deploys that one version
        # even if another is approved while the run waits.
        plan = run("Plan", "ci-plan", release[-1].stage, namespace=PLAN_NAMESPACE)
        planned_version = plan.variable("MODEL_PACKAGE_ARN")

        def gated(stage_name: str, *actions: codepipeline.IAction) -> codepipeline.StageProps:
            return codepipeline.StageProps(
                stage_name=stage_name,
                actions=list(actions),
                before_entry=codepipeline.Conditions(
                    conditions=[
                        codepipeline.Condition(
                            result=codepipeline.Result.SKIP,
                            rules=[
                                codepipeline.Rule(
                                    name="SomethingToRelease",
                                    provider="VariableCheck",
                                    version="1",
                                    configuration={
                                        "Variable": plan.variable("MLOPS_RELEASE"),
                                        "Operator": "EQ",
                                        "Value": "yes",
                                    },
                                )
                            ],
                        )
                    ]
                ),
            )

        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=build.release_pipeline,
            artifact_bucket=artifacts,
            pipeline_type=codepipeline.PipelineType.V2,
            stages=[
                codepipeline.StageProps(stage_name="Source", actions=[source_action]),
                codepipeline.StageProps(stage_name="Plan", actions=[plan]),
                gated("Build", run("CheckTestSynth", "ci-build", build.stage)),
                gated(
                    "Staging",
                    run(
                        "Deploy",
                        "ci-deploy",
                        release[0].stage,
                        MODEL_PACKAGE_ARN=planned_version,
                    ),
                ),
                gated("SmokeTest", run("InvokeStaging", "ci-smoke", release[0].stage)),
                gated(
                    "Approve", pipeline_actions.ManualApprovalAction(action_name="PromoteToProd")
                ),
                gated(
                    "Prod",
                    run(
                        "Deploy",
                        "ci-deploy",
                        release[1].stage,
                        MODEL_PACKAGE_ARN=planned_version,
                    ),
                ),
            ],
        )
        # aws-cdk-lib's CodePipeline adds a DependsOn on its role that the RoleArn GetAtt already
        # implies (cfn-lint W3005): redundant and harmless, ignored on this one resource only.
        cfn_pipeline = self.pipeline.node.default_child
        assert isinstance(cfn_pipeline, cdk.CfnResource)
        cfn_pipeline.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
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
