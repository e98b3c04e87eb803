"""The cdk-nag findings we accept, each by its exact id and with the reason it is right here.

IAM5 (wildcards) must be acknowledged per finding: each entry names the one action or resource
pattern and why it is as narrow as it can be.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from infra.cicd import CicdStack
from infra.foundation import FoundationStack
from infra.model_monitor import DataQualityMonitor
from infra.tracking import ARTIFACT_PREFIX, MlflowTrackingServer

IAM5 = "AwsSolutions::AwsSolutions-IAM5"
ROLES_PAGE = 'AWS\'s "SageMaker roles" page (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html)'
_GRANT = "from a CDK grant helper, limited to the stage's own buckets and key"


def _accept(scope: IConstruct, findings: dict[str, str]) -> None:
    cdk.Validations.of(scope).acknowledge(
        *(cdk.Acknowledgment(id=i, reason=r) for i, r in findings.items())
    )


def _logical_id(construct: IConstruct) -> str:
    """A resource's logical id as cdk-nag prints it (stable: it derives from the path)."""
    stack = cdk.Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(construct.node.default_child)))  # type: ignore[arg-type]


def _objects(bucket: s3.IBucket) -> str:
    """How cdk-nag spells ``<bucket ARN>/*``."""
    return f"{IAM5}[Resource::<{_logical_id(bucket)}.Arn>/*]"


def acknowledge_findings(foundation: FoundationStack, cicd: CicdStack) -> None:
    """The model build and deploy stacks need none: they have no finding."""
    _accept(
        foundation.access_logs,
        {
            "AwsSolutions::AwsSolutions-S1": "This is the access-log bucket; logging it into itself would loop."
        },
    )
    s3_reads = {
        f"{IAM5}[Action::s3:GetBucket*]": f"Bucket metadata reads {_GRANT}.",
        f"{IAM5}[Action::s3:GetObject*]": f"Object reads (and their versions) {_GRANT}.",
        f"{IAM5}[Action::s3:List*]": f"Listing prefixes {_GRANT}.",
        _objects(
            foundation.artifacts
        ): "Objects of the artifacts bucket: every job run writes new keys.",
    }
    unscoped = {
        f"{IAM5}[Resource::*]": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource "
        "type; PutMetricData is limited by a namespace condition. In a VPC, the EC2 network-interface "
        f"actions: {ROLES_PAGE} says not to scope them with conditions or resource filters.",
        f"{IAM5}[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/*]": "SageMaker writes job and endpoint logs to the /aws/sagemaker/* groups.",
    }
    build = foundation.build
    promoted = {
        f"{IAM5}[Resource::arn:<AWS::Partition>:s3:::{build.bucket('artifacts', '<AWS::AccountId>', '<AWS::Region>')}"
        f"/pipelines/{build.pipeline}/*]": "Models, baselines and metrics the build stage's pipeline "
        "wrote: every execution writes new keys under this prefix.",
    }
    if foundation.endpoint_role:
        _accept(
            foundation.endpoint_role,
            {
                **unscoped,
                **promoted,
                _objects(foundation.artifacts).replace("/*]", "/data-capture/*]"): "Data capture "
                "writes new keys every hour under this prefix (PutObject only).",
            },
        )
    if foundation.job_role:
        _accept(
            foundation.job_role,
            {
                **s3_reads,
                **unscoped,
                f"{IAM5}[Action::s3:DeleteObject*]": f"Jobs replace their own outputs {_GRANT}.",
                f"{IAM5}[Action::s3:Abort*]": f"Aborting multipart uploads of large outputs {_GRANT}.",
                f"{IAM5}[Action::kms:GenerateDataKey*]": "Encrypting outputs with the stage key only.",
                f"{IAM5}[Action::kms:ReEncrypt*]": "Re-encrypting with the stage key only (S3 copy).",
                _objects(
                    foundation.data
                ): "Objects of the data bucket: data sets are uploaded under new keys.",
            },
        )
    sagemaker = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
    if foundation.pipeline_role:
        _accept(
            foundation.pipeline_role,
            {
                **s3_reads,
                f"{IAM5}[Resource::{sagemaker}:processing-job/*]": "SageMaker Pipelines names each "
                "step's processing job at run time.",
                f"{IAM5}[Resource::{sagemaker}:training-job/*]": "SageMaker Pipelines names each "
                "step's training job at run time.",
                f"{IAM5}[Resource::{sagemaker}:hyper-parameter-tuning-job/*]": "SageMaker Pipelines "
                "names each Tuning step's job at run time.",
                f"{IAM5}[Resource::{sagemaker}:model-package/{foundation.model_package_group}/*]": "New "
                "versions of the project's one model package group.",
            },
        )

    project, region = _logical_id(cicd.project), cicd.region
    _accept(
        cicd,
        {
            "AwsSolutions::AwsSolutions-CB5": "The build image is our own, from CDK's asset repository "
            "in this account (docker/codebuild/Dockerfile: Debian, for Chromium).",
            f"{IAM5}[Action::kms:GenerateDataKey*]": "CodePipeline and CodeBuild encrypt artifacts with the "
            "stack's own key only (CDK grant).",
            f"{IAM5}[Action::kms:ReEncrypt*]": "Re-encrypting artifacts with the stack's own key only.",
            f"{IAM5}[Action::s3:Abort*]": "Aborting multipart artifact uploads, artifact bucket only.",
            f"{IAM5}[Action::s3:DeleteObject*]": "Replacing pipeline artifacts, artifact bucket only.",
            f"{IAM5}[Action::s3:GetBucket*]": "Artifact and source bucket metadata (CDK grant).",
            f"{IAM5}[Action::s3:GetObject*]": "Reading artifacts and the source zip (CDK grant).",
            f"{IAM5}[Action::s3:List*]": "Listing the artifact bucket (CDK grant).",
            f"{IAM5}[Resource::*]": "sagemaker:ListModelPackages has no resource-level permission; it "
            "finds the approved version to deploy.",
            f"{IAM5}[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            "endpoint-config/*]": "CloudFormation names each endpoint config (a new one per update); "
            "`mlops endpoint wait` reads the one in service (Describe only).",
            f"{IAM5}[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            "model/*]": "CloudFormation names each model; `mlops endpoint wait` reads the one in "
            "service (Describe only).",
            f"{IAM5}[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            f"model-package/{foundation.model_package_group}/*]": "Versions of the project's model "
            "package group: the release reads the approved one (Describe only).",
            _objects(
                cicd.pipeline.artifact_bucket
            ): "Pipeline artifacts get new keys on every run.",
            f"{IAM5}[Resource::arn:<AWS::Partition>:codebuild:{region}:<AWS::AccountId>:report-group/"
            f"<{project}>-*]": "CodeBuild test reports of this project only.",
            f"{IAM5}[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-hnb659fds-*-"
            "<AWS::AccountId>-<AWS::Region>]": "`cdk deploy` acts through the CDK bootstrap roles of this "
            "account and region (deploy, file and image publishing, lookup).",
            f"{IAM5}[Resource::arn:<AWS::Partition>:logs:{region}:<AWS::AccountId>:log-group:/aws/codebuild/"
            f"<{project}>:*]": "Log streams of this CodeBuild project's own log group.",
        },
    )


def acknowledge_tracking_findings(tracking: MlflowTrackingServer) -> None:
    """The tracking server's role writes MLflow artifacts under one prefix of one bucket."""
    bucket = _logical_id(tracking.bucket)
    _accept(
        tracking.role,
        {
            f"{IAM5}[Resource::<{bucket}.Arn>/{ARTIFACT_PREFIX}/*]": "MLflow writes each run's "
            "artifacts under new keys of the artifact store's prefix, and only there."
        },
    )


def acknowledge_monitor(monitor: DataQualityMonitor) -> None:
    """The Model Monitor role's wildcards: prefixes of the stage's artifacts bucket only."""
    objects = f"{IAM5}[Resource::arn:<AWS::Partition>:s3:::" + monitor.names.bucket(
        "artifacts", "<AWS::AccountId>", "<AWS::Region>"
    )
    build = monitor.build
    _accept(
        monitor.role,
        {
            f"{objects}/data-capture/*]": "Captured traffic: the endpoint writes new keys every "
            "hour; the job reads them only (GetObject).",
            f"{IAM5}[Resource::arn:<AWS::Partition>:s3:::{build.bucket('artifacts', '<AWS::AccountId>', '<AWS::Region>')}"
            f"/pipelines/{build.pipeline}/*]": "Baselines of the build stage's pipeline: each "
            "execution writes them under its own id; the job reads them only (GetObject).",
            f"{objects}/{monitor.output}/*]": "Each monitoring run writes its reports under new "
            "keys of this endpoint's own prefix (PutObject only).",
            f"{IAM5}[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            "/aws/sagemaker/ProcessingJobs:*]": "Log streams of SageMaker's processing-job log "
            "group, named per monitoring run.",
            f"{IAM5}[Resource::*]": "cloudwatch:PutMetricData has no resource type; a condition "
            "limits it to Model Monitor's data-metrics namespace. In a VPC, the EC2 "
            f"network-interface actions: {ROLES_PAGE} says not to scope them.",
        },
    )
