"""Foundation stack, one per stage: the KMS key, the buckets, the ECR repository and the
least-privilege roles the stage's other stacks use (as CDK objects, not ARN strings).

Models are built once, in the build stage (docs/deploy.md): only its foundation has the job and
pipeline roles, and it exports its key's ARN, because the other stages' endpoint roles read the
promoted models (and the Model Monitor roles their baselines) from its artifacts bucket.
What each role must be able to do comes from AWS's "SageMaker roles" page
(https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html); the deploy rehearsal
(infra/rehearsal) simulates every such call against these policies.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.stages import Names, StageSettings

# "SageMaker roles": a job, model or monitoring job with a VpcConfig needs these, and the page
# says not to scope them with conditions or resource filters (SageMaker's checks at creation
# would fail), so Resource "*".
NETWORK_INTERFACE_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
]
TUNING_ACTIONS = [
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    "sagemaker:AddTags",
]


def allow_network_interfaces(role: iam.IRole) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="VpcNetworkInterfaces", actions=NETWORK_INTERFACE_ACTIONS, resources=["*"]
        )
    )


class FoundationStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        build: Names,
        settings: StageSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.names, self.build = names, build
        self.stage = stage = names.stage
        self.builds = names.stage == build.stage
        self.model_package_group = build.model_package_group
        account, region = cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION
        self.arn_prefix = f"arn:{cdk.Aws.PARTITION}:sagemaker:{region}:{account}"

        self.key = kms.Key(
            self,
            "Key",
            alias=names.key_alias,
            description=f"Encrypts the mlops {stage} data, artifacts, images and notifications",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        # Server access logs may only go to an SSE-S3 bucket; it logs the other buckets.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=names.bucket("access-logs", account, region),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(365))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.data = self._bucket("Data", names.bucket("data", account, region), "data/")
        self.artifacts = self._bucket(
            "Artifacts", names.bucket("artifacts", account, region), "artifacts/"
        )

        self.repository = ecr.Repository(
            self,
            "Images",
            repository_name=names.repository,
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

        # Where promoted models and baselines live: the build stage's bucket, under its key.
        if self.builds:
            self.build_key: kms.IKey = self.key
            cdk.CfnOutput(
                self,
                "KeyArn",
                value=self.key.key_arn,
                export_name=names.key_export,
                description="Other stages decrypt the models and baselines built here",
            )
        else:
            self.build_key = kms.Key.from_key_arn(
                self, "BuildKey", cdk.Fn.import_value(build.key_export)
            )
        self.build_artifacts_arn = (
            f"arn:{cdk.Aws.PARTITION}:s3:::{build.bucket('artifacts', account, region)}"
        )
        # Everything the build pipeline writes (models, baselines, metrics) is under this prefix.
        self.build_outputs_arn = f"{self.build_artifacts_arn}/pipelines/{build.pipeline}/*"

        self.vpc: ec2.Vpc | None = None
        self.security_group: ec2.SecurityGroup | None = None
        if settings.vpc:
            self._network()

        self.job_role: iam.Role | None = None
        self.pipeline_role: iam.Role | None = None
        if self.builds:
            self._build_roles(settings)
        self.endpoint_role: iam.Role | None = None
        if settings.endpoint:
            self._endpoint_role()
        for role in (self.job_role, self.endpoint_role):
            if role:
                self._runtime_basics(role)

    def _build_roles(self, settings: StageSettings) -> None:
        """The SageMaker Pipeline's role and the role its jobs run as (build stage only)."""
        self.job_role = job_role = self._role(
            "JobRole",
            "jobs",
            "Processing, training and tuning containers: data in, artifacts out, logs",
        )
        self.data.grant_read(job_role)
        self.artifacts.grant_read_write(job_role)
        self.repository.grant_pull(job_role)
        self.pipeline_role = pipeline_role = self._role(
            "PipelineRole",
            "pipeline",
            "Runs the SageMaker Pipeline: starts its jobs, registers models",
        )
        arn = self.arn_prefix
        pipeline_role.add_to_policy(
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
                resources=[f"{arn}:processing-job/*", f"{arn}:training-job/*"],
            )
        )
        if settings.tuning:
            # The pipeline's RoleArn creates each step's job: a Tuning step is a tuning job.
            pipeline_role.add_to_policy(
                iam.PolicyStatement(
                    sid="PipelineTuning",
                    actions=TUNING_ACTIONS,
                    resources=[f"{arn}:hyper-parameter-tuning-job/*"],
                )
            )
        group = self.build.model_package_group
        pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="PipelineRegistry",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:AddTags",
                ],
                resources=[f"{arn}:model-package/{group}/*", f"{arn}:model-package-group/{group}"],
            )
        )
        pipeline_role.add_to_policy(
            iam.PolicyStatement(
                sid="PassJobRoleToSageMakerOnly",
                actions=["iam:PassRole"],
                resources=[job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # The pipeline reads property files (evaluation.json, profile.json) from the artifacts.
        self.artifacts.grant_read(pipeline_role)
        if self.vpc:
            allow_network_interfaces(job_role)

    def _endpoint_role(self) -> None:
        """The CreateModel execution role: pulls the promoted model's image and reads its data
        where the build stage put them, and writes the endpoint's data capture here."""
        self.endpoint_role = role = self._role(
            "EndpointRole",
            "endpoint",
            "Endpoint containers: read the promoted model, pull its image, capture, write logs",
        )
        account, region, partition = cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION, cdk.Aws.PARTITION
        repositories = [
            f"arn:{partition}:ecr:{region}:{account}:repository/"
            + Names.cdk_assets_repository(account, region),  # `cdk deploy` built the image
            f"arn:{partition}:ecr:{region}:{account}:repository/{self.build.repository}",  # CI
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullModelImage",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=repositories,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadModelData", actions=["s3:GetObject"], resources=[self.build_outputs_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptModelData", actions=["kms:Decrypt"], resources=[self.build_key.key_arn]
            )
        )
        # Data capture: the DataCaptureConfig page names no principal; the analogous
        # TransformOutput page says the CreateModel role must be able to use the key, so the
        # capture writes are granted here (inferred, see docs/deploy.md).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteDataCapture",
                actions=["s3:PutObject"],
                resources=[self.artifacts.arn_for_objects("data-capture/*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptDataCapture",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
            )
        )
        if self.vpc:
            allow_network_interfaces(role)

    def _runtime_basics(self, role: iam.Role) -> None:
        """Logs, metrics and the ECR login every SageMaker container needs."""
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
                    f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:"
                    "log-group:/aws/sagemaker/*"
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

    def _role(self, construct_id: str, purpose: str, description: str) -> iam.Role:
        """A role only SageMaker can assume, with a fixed name the pipeline body can refer to."""
        return iam.Role(
            self,
            construct_id,
            role_name=self.names.role(purpose),
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
