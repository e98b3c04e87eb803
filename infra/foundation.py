"""Foundation stack: the KMS key, the buckets, the ECR repository and the least-privilege roles
every other stack of a stage uses. Other stacks receive these as CDK objects, not ARN strings."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.stages import StageSettings


class FoundationStack(cdk.Stack):
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
        self.stage = stage
        self.model_package_group = settings.model_package_group
        account, region = cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION

        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/mlops-{stage}",
            description=f"Encrypts the mlops {stage} data, artifacts, images and notifications",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        # Server access logs may only go to an SSE-S3 bucket; it logs the other buckets.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=f"mlops-{stage}-access-logs-{account}-{region}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(365))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.data = self._bucket("Data", f"mlops-{stage}-data-{account}-{region}", "data/")
        self.artifacts = self._bucket(
            "Artifacts", f"mlops-{stage}-artifacts-{account}-{region}", "artifacts/"
        )

        self.repository = ecr.Repository(
            self,
            "Images",
            repository_name=f"mlops-{stage}",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=self.key,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="keep the last 30 images", max_image_count=30, rule_priority=1
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        self.job_role = self._role(
            "JobRole",
            "jobs",
            "Processing, training and model containers: data in, artifacts out, logs",
        )
        self.data.grant_read(self.job_role)
        self.artifacts.grant_read_write(self.job_role)
        self.repository.grant_pull(self.job_role)
        self.pipeline_role = self._role(
            "PipelineRole",
            "pipeline",
            "Runs the SageMaker Pipeline: starts its jobs, registers models",
        )
        sagemaker_arn = f"arn:{cdk.Aws.PARTITION}:sagemaker:{region}:{account}"
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="PipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[f"{sagemaker_arn}:processing-job/*", f"{sagemaker_arn}:training-job/*"],
            )
        )
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="PipelineRegistry",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:AddTags",
                ],
                resources=[
                    f"{sagemaker_arn}:model-package/{settings.model_package_group}/*",
                    f"{sagemaker_arn}:model-package-group/{settings.model_package_group}",
                ],
            )
        )
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="PassJobRoleToSageMakerOnly",
                actions=["iam:PassRole"],
                resources=[self.job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # The pipeline reads property files (evaluation.json, profile.json) from the artifacts.
        self.artifacts.grant_read(self.pipeline_role)

        self.endpoint_role = self._role(
            "EndpointRole",
            "endpoint",
            "Endpoint containers: read the model artifact, pull the image, write logs",
        )
        self.artifacts.grant_read(self.endpoint_role)
        self.repository.grant_pull(self.endpoint_role)
        for role in (self.job_role, self.endpoint_role):
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="Logs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    resources=[
                        f"arn:{cdk.Aws.PARTITION}:logs:{region}:{account}:log-group:/aws/sagemaker/*"
                    ],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="Metrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],  # PutMetricData has no resource type; the condition scopes it
                    conditions={
                        "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "mlops/*"]}
                    },
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="EcrAuth", actions=["ecr:GetAuthorizationToken"], resources=["*"]
                )
            )

        self.vpc: ec2.Vpc | None = None
        self.security_group: ec2.SecurityGroup | None = None
        if settings.vpc:
            self._network()

    def _role(self, construct_id: str, purpose: str, description: str) -> iam.Role:
        """A role only SageMaker can assume, with a fixed name the pipeline body can refer to."""
        return iam.Role(
            self,
            construct_id,
            role_name=f"mlops-{self.stage}-sagemaker-{purpose}",
            description=description,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        )

    def _network(self) -> None:
        """Private isolated subnets (no NAT, no internet) and the endpoints SageMaker needs."""
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                )
            ],
            flow_logs={"all": ec2.FlowLogOptions(traffic_type=ec2.FlowLogTrafficType.ALL)},
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "Workloads",
            vpc=self.vpc,
            description="SageMaker jobs and models",
            allow_all_outbound=False,
        )
        # Isolated subnets have no route out: HTTPS can only reach the endpoints below.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to VPC endpoints"
        )
        endpoints = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=self.vpc,
            description="VPC interface endpoints",
            allow_all_outbound=False,
        )
        endpoints.add_ingress_rule(
            self.security_group, ec2.Port.tcp(443), "HTTPS from SageMaker workloads"
        )
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        for name, service in (
            ("SageMakerApi", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API),
            ("SageMakerRuntime", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME),
            ("EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR),
            ("EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
            ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
            ("Monitoring", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING),
            ("Sts", ec2.InterfaceVpcEndpointAwsService.STS),
        ):
            self.vpc.add_interface_endpoint(
                name, service=service, security_groups=[endpoints], open=False
            )

    def _bucket(self, construct_id: str, name: str, log_prefix: str) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tidy-versions",
                    noncurrent_version_expiration=cdk.Duration.days(90),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
