"""Model Monitor on a deployed endpoint: a data-quality schedule over its captured traffic,
checked against the pipeline's baseline; an alarm on feature drift; and an EventBridge rule that
starts the retraining pipeline when the alarm fires.

The baseline (``statistics.json`` and ``constraints.json``, which the build stage's pipeline
writes under ``.../preprocess/baseline/`` of its artifacts bucket) comes from context
(``-c baseline_uri=s3://...``, what ``mlops monitor baseline --uri`` prints) or, when absent, from
the SSM parameter ``names.parameter("baseline-uri")``, read at deploy time. The drift alarm
starts the build stage's pipeline: retraining registers a new version, which is promoted like
any other (docs/deploy.md).
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.foundation import FoundationStack, allow_network_interfaces
from mlops.errors import MlopsError
from mlops.stages import MonitoringSettings, Names
from sagemaker_jobs.baseline import column_name

# The accounts that publish the Model Monitor analyzer image (sagemaker-model-monitor-analyzer),
# as in the SageMaker SDK's image_uri_config/model-monitor.json (a test keeps them equal).
# A table, not a lookup: synth makes no AWS calls.
ANALYZER_ACCOUNTS = {
    "af-south-1": "875698925577",
    "ap-east-1": "001633400207",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-northeast-3": "990339680094",
    "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ap-southeast-3": "669540362728",
    "ca-central-1": "536280801234",
    "cn-north-1": "453000072557",
    "cn-northwest-1": "453252182341",
    "eu-central-1": "048819808253",
    "eu-central-2": "590183933784",
    "eu-north-1": "895015795356",
    "eu-south-1": "933208885752",
    "eu-south-2": "437450045455",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "il-central-1": "843974653677",
    "me-central-1": "588750061953",
    "me-south-1": "607024016150",
    "sa-east-1": "539772159869",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}
# Where the analyzer publishes per-feature metrics for endpoints (emit_metrics in constraints).
DATA_METRICS = "aws/sagemaker/Endpoints/data-metrics"
# Captures: the endpoint config's destination, in the stage's own artifacts bucket.
CAPTURES = "data-capture"
_BASELINE_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^/]+)+$")


def artifacts_arn(names: Names) -> str:
    """A stage's artifacts bucket by its fixed name: plain ARNs keep the policy readable."""
    bucket = names.bucket("artifacts", cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION)
    return f"arn:{cdk.Aws.PARTITION}:s3:::{bucket}"


def analyzer_image(region: str) -> str:
    if region not in ANALYZER_ACCOUNTS:
        raise MlopsError(
            f"Model Monitor has no analyzer image in {region}; "
            f"use a region among {', '.join(sorted(ANALYZER_ACCOUNTS))} or drop monitoring"
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{ANALYZER_ACCOUNTS[region]}.dkr.ecr.{region}.{domain}/sagemaker-model-monitor-analyzer"


class DataQualityMonitor(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        build: Names,
        region: str,
        endpoint: sagemaker.CfnEndpoint,
        settings: MonitoringSettings,
        foundation: FoundationStack,
        topic: sns.ITopic,
        baseline_uri: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.names, self.build, self.region_name = names, build, region
        self.stage = stage = names.stage
        endpoint_name = names.endpoint
        self.schedule_name = names.monitoring_schedule
        self.threshold = settings.drift_threshold
        baseline = self._baseline(names, baseline_uri)
        self.output = output = f"monitoring/{endpoint_name}/data-quality"
        self.role = self._role(names, foundation, output)
        vpc, group = foundation.vpc, foundation.security_group
        job = sagemaker.CfnDataQualityJobDefinition(
            self,
            "JobDefinition",
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=analyzer_image(region),
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            data_quality_baseline_config=sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=f"{baseline}/constraints.json"
                ),
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                    s3_uri=f"{baseline}/statistics.json"
                ),
            ),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path="/opt/ml/processing/input/endpoint",
                    s3_data_distribution_type="FullyReplicated",
                    s3_input_mode="File",
                )
            ),
            data_quality_job_output_config=sagemaker.CfnDataQualityJobDefinition.MonitoringOutputConfigProperty(
                kms_key_id=foundation.key.key_arn,
                monitoring_outputs=[
                    sagemaker.CfnDataQualityJobDefinition.MonitoringOutputProperty(
                        s3_output=sagemaker.CfnDataQualityJobDefinition.S3OutputProperty(
                            local_path="/opt/ml/processing/output",
                            s3_uri=foundation.artifacts.s3_url_for_object(output),
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=sagemaker.CfnDataQualityJobDefinition.MonitoringResourcesProperty(
                cluster_config=sagemaker.CfnDataQualityJobDefinition.ClusterConfigProperty(
                    instance_count=settings.instance_count,
                    instance_type=settings.instance_type,
                    volume_size_in_gb=settings.volume_size_gb,
                    volume_kms_key_id=foundation.key.key_arn,
                )
            ),
            network_config=sagemaker.CfnDataQualityJobDefinition.NetworkConfigProperty(
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
                vpc_config=sagemaker.CfnDataQualityJobDefinition.VpcConfigProperty(
                    subnets=[s.subnet_id for s in vpc.isolated_subnets],
                    security_group_ids=[group.security_group_id],
                )
                if vpc and group
                else None,
            ),
            role_arn=self.role.role_arn,
            stopping_condition=sagemaker.CfnDataQualityJobDefinition.StoppingConditionProperty(
                max_runtime_in_seconds=settings.max_runtime_minutes * 60
            ),
        )
        job.node.add_dependency(endpoint)  # the definition reads the endpoint's capture config
        # The role's policy exists before SageMaker checks it (the role itself: the GetAtt above).
        policy = self.role.node.find_child("DefaultPolicy")
        job.node.add_dependency(policy)
        sagemaker.CfnMonitoringSchedule(
            self,
            "Schedule",
            monitoring_schedule_name=self.schedule_name,
            endpoint_name=endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                # Ref gives the ARN; the name is its last part. CloudFormation names the
                # definition, so a changed baseline (a replacement) cannot collide with the old.
                monitoring_job_definition_name=cdk.Fn.select(
                    1, cdk.Fn.split("/", job.attr_job_definition_arn)
                ),
                monitoring_type="DataQuality",
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                    schedule_expression=settings.schedule
                ),
            ),
        )
        self.drift_metrics = {
            feature: cloudwatch.Metric(
                namespace=DATA_METRICS,
                metric_name=f"feature_baseline_drift_{column_name(position)}",
                label=f"{feature} ({column_name(position)})",
                dimensions_map={
                    "Endpoint": endpoint_name,
                    "MonitoringSchedule": self.schedule_name,
                },
                statistic="Maximum",
                period=cdk.Duration.hours(1),
            )
            for position, feature in enumerate(settings.features)
        }
        self.alarm = cloudwatch.Alarm(
            self,
            "DriftAlarm",
            alarm_name=names.alarm("data-drift"),
            alarm_description=(
                f"Model Monitor: a watched feature of {endpoint_name} drifted from the training "
                f"baseline by {settings.drift_threshold} or more"
                + ("; starts the retraining pipeline" if settings.retrain else "")
            ),
            # The largest drift among the watched features, per hour.
            metric=cloudwatch.MathExpression(
                expression=f"MAX([{', '.join(f'f{i}' for i in range(len(settings.features)))}])",
                using_metrics={f"f{i}": m for i, m in enumerate(self.drift_metrics.values())},
                label="largest feature drift",
                period=cdk.Duration.hours(1),
            ),
            threshold=self.threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,  # no traffic, no run
        )
        self.alarm.add_alarm_action(actions.SnsAction(topic))
        if settings.retrain:
            self._retrain_rule(stage, build.pipeline, settings.retrain_parameters)

    def _baseline(self, names: Names, baseline_uri: str | None) -> str:
        if baseline_uri is None:
            return ssm.StringParameter.value_for_string_parameter(
                self, names.parameter("baseline-uri")
            )
        uri = baseline_uri.rstrip("/")
        if not _BASELINE_URI.match(uri):
            raise MlopsError(
                f"baseline_uri {baseline_uri!r} is not an S3 folder; pass the pipeline's "
                "s3://<artifacts bucket>/pipelines/<pipeline>/<execution>/preprocess/baseline"
            )
        return uri

    def _role(self, names: Names, foundation: FoundationStack, output: str) -> iam.Role:
        """Reads its stage's captures and the build stage's baseline, writes reports and
        metrics in its own stage."""
        role = iam.Role(
            self,
            "Role",
            role_name=names.monitor_role,
            description="Model Monitor jobs: read captures and the baseline, write reports",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        )
        bucket = artifacts_arn(names)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadCaptures",
                actions=["s3:GetObject"],
                resources=[f"{bucket}/{CAPTURES}/*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListCaptures",
                actions=["s3:ListBucket"],
                resources=[bucket],
                conditions={"StringLike": {"s3:prefix": [f"{CAPTURES}/*"]}},
            )
        )
        # The baseline is the build's (what `mlops monitor baseline --uri` returns).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadBaseline",
                actions=["s3:GetObject"],
                resources=[foundation.build_outputs_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptBaseline",
                actions=["kms:Decrypt"],
                resources=[foundation.build_key.key_arn],
            )
        )
        # The analyzer image lives in AWS's account for the region; the role pulls it.
        host, _, repository = analyzer_image(self.region_name).partition("/")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullAnalyzer",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:ecr:{self.region_name}:{host.split('.', 1)[0]}:"
                    f"repository/{repository}"
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrAuth", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteReports",
                actions=["s3:PutObject"],
                resources=[f"{bucket}/{output}/*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StageKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[foundation.key.key_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Logs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:"
                    "log-group:/aws/sagemaker/ProcessingJobs:*"
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DataMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; the condition scopes it
                conditions={"StringEquals": {"cloudwatch:namespace": DATA_METRICS}},
            )
        )
        if foundation.vpc:
            allow_network_interfaces(role)
        return role

    def _retrain_rule(self, stage: str, pipeline_name: str, parameters: dict[str, str]) -> None:
        """The drift alarm going into ALARM starts one execution of the stage's pipeline."""
        pipeline_arn = (
            f"arn:{cdk.Aws.PARTITION}:sagemaker:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:"
            f"pipeline/{pipeline_name.lower()}"  # SageMaker lowercases pipeline ARNs
        )
        role = iam.Role(
            self,
            "RetrainRole",
            description=f"EventBridge: start the {pipeline_name} pipeline when {stage} drifts",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StartRetraining",
                actions=["sagemaker:StartPipelineExecution"],
                resources=[pipeline_arn],
            )
        )
        events.CfnRule(
            self,
            "Retrain",
            description=f"Drift alarm of {self.names.endpoint} -> start the {pipeline_name} pipeline",
            event_pattern={
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "resources": [self.alarm.alarm_arn],
                "detail": {"state": {"value": ["ALARM"]}},
            },
            targets=[
                events.CfnRule.TargetProperty(
                    id="RetrainingPipeline",
                    arn=pipeline_arn,
                    role_arn=role.role_arn,
                    sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                        pipeline_parameter_list=[
                            events.CfnRule.SageMakerPipelineParameterProperty(name=k, value=v)
                            for k, v in sorted(parameters.items())
                        ]
                    )
                    if parameters
                    else None,
                )
            ],
        )
