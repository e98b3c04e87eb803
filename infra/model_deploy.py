"""Model deploy stack, one per project and stage with an endpoint: model, endpoint config,
endpoint with blue/green guardrails and auto-rollback, autoscaling, alarms into an encrypted
topic, dashboard, and, when the stage asks for it, Model Monitor with a drift alarm that starts
retraining (infra/model_monitor.py).

The model package (registered in the build stage) comes from context (``-c model_package_arn=...``,
what CI/CD passes) or, when absent, from the SSM parameter ``names.parameter("model-package-arn")``
(``/mlops/<project>/<stage>/model-package-arn``), which CloudFormation reads at deploy time:
synth never looks anything up.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.foundation import FoundationStack
from infra.model_monitor import DataQualityMonitor
from mlops.stages import EndpointSettings, Names, vcpus

VARIANT = "AllTraffic"


class ModelDeployStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        build: Names,
        endpoint: EndpointSettings,
        foundation: FoundationStack,
        model_package_arn: str | None = None,
        baseline_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.names = names
        stage = names.stage
        # A fixed name: alarms that use a generated name form a cycle.
        self.endpoint_name = names.endpoint
        package_arn = model_package_arn or ssm.StringParameter.value_for_string_parameter(
            self, names.parameter("model-package-arn")
        )
        role = foundation.endpoint_role
        if role is None:
            raise ValueError(
                f"{foundation.stack_name} has no endpoint role: the stage has no endpoint"
            )
        # Serverless endpoints support neither network isolation nor a VPC (feature exclusions,
        # https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html).
        isolated = not endpoint.serverless
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            containers=[
                sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=package_arn)
            ],
            enable_network_isolation=isolated,
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=[s.subnet_id for s in foundation.vpc.isolated_subnets],
                security_group_ids=[foundation.security_group.security_group_id],
            )
            if isolated and foundation.vpc and foundation.security_group
            else None,
        )
        self.topic = sns.Topic(
            self,
            "Alarms",
            display_name=f"mlops {stage} endpoint alarms",
            master_key=foundation.key,
            enforce_ssl=True,
        )
        foundation.key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        alarms = self._alarms(endpoint)
        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            model_name=model.attr_model_name,
            variant_name=VARIANT,
            initial_variant_weight=1,
            **(
                {
                    "serverless_config": sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=endpoint.serverless_memory_mb,
                        max_concurrency=endpoint.serverless_max_concurrency,
                    )
                }
                if endpoint.serverless
                else {
                    "instance_type": endpoint.instance_type,
                    "initial_instance_count": endpoint.initial_instance_count,
                }
            ),
        )
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[variant],
            # Serverless variants take no KMS volume key, no data capture and no guardrails.
            kms_key_id=None if endpoint.serverless else foundation.key.key_arn,
            data_capture_config=None
            if endpoint.serverless or not endpoint.data_capture_percent
            else (
                sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                    enable_capture=True,
                    initial_sampling_percentage=endpoint.data_capture_percent,
                    destination_s3_uri=foundation.artifacts.s3_url_for_object("data-capture"),
                    kms_key_id=foundation.key.key_arn,
                    capture_options=[
                        sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=m)
                        for m in ("Input", "Output")
                    ],
                    capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                        csv_content_types=["text/csv"], json_content_types=["application/json"]
                    ),
                )
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
            deployment_config=self._guardrails(endpoint),
        )
        # "SageMaker roles": the CreateModel role reads the rollback alarms during a deployment.
        # A policy of this stack (the alarms are here), attached to the foundation's role.
        watch = iam.Policy(
            self,
            "RollbackAlarmsRead",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[a.alarm_arn for a in alarms],
                )
            ],
        )
        self.endpoint.node.add_dependency(watch)
        for alarm in alarms:
            self.endpoint.node.add_dependency(alarm)  # rollback alarms exist before the endpoint
        if not endpoint.serverless:
            self._autoscaling(endpoint)
        self.monitor = (
            DataQualityMonitor(
                self,
                "Monitor",
                names=names,
                build=build,
                region=self.region,
                endpoint=self.endpoint,
                settings=endpoint.monitoring,
                foundation=foundation,
                topic=self.topic,
                baseline_uri=baseline_uri,
            )
            if endpoint.monitoring
            else None
        )
        self._dashboard(endpoint)
        cdk.CfnOutput(self, "EndpointName", value=self.endpoint_name)
        cdk.CfnOutput(self, "AlarmTopic", value=self.topic.topic_arn)

    def _metric(
        self, name: str, statistic: str, namespace: str = "AWS/SageMaker"
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT},
            statistic=statistic,
            period=cdk.Duration.minutes(1 if namespace == "AWS/SageMaker" else 5),
        )

    def _alarms(self, endpoint: EndpointSettings) -> list[cloudwatch.Alarm]:
        # (name, metric, threshold, evaluation periods). The 5xx alarm sums over 5 minutes once:
        # "N errors within 5 minutes", not "N in each of 5 consecutive minutes".
        errors = self._metric("Invocation5XXErrors", "Sum").with_(period=cdk.Duration.minutes(5))
        specs = [
            ("Errors5xx", errors, endpoint.alarm_5xx_per_5_minutes, 1),
            # ModelLatency is in microseconds.
            (
                "LatencyP99",
                self._metric("ModelLatency", "p99"),
                endpoint.alarm_latency_ms * 1000,
                3,
            ),
        ]
        if not endpoint.serverless:
            host = "/aws/sagemaker/Endpoints"
            specs += [
                # CPUUtilization is summed over the vCPUs (0-200% on 2 vCPUs).
                (
                    "Cpu",
                    self._metric("CPUUtilization", "Average", host),
                    endpoint.alarm_cpu_percent * vcpus(endpoint.instance_type),
                    2,
                ),
                (
                    "Memory",
                    self._metric("MemoryUtilization", "Average", host),
                    endpoint.alarm_memory_percent,
                    2,
                ),
            ]
        alarms = []
        self.alarm_names = [self.names.alarm(name) for name, *_ in specs]
        for name, metric, threshold, periods in specs:
            alarm = cloudwatch.Alarm(
                self,
                name,
                alarm_name=self.names.alarm(name),
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(self.topic))
            alarms.append(alarm)
        return alarms

    def _guardrails(self, endpoint: EndpointSettings) -> Any:
        # Serverless: all at once (settings refuse canary and linear there), still with a bake
        # and the rollback alarms (deployment guardrails exclude only rolling updates).
        routing: dict[str, Any] = {
            "type": endpoint.deployment.upper(),
            "wait_interval_in_seconds": endpoint.bake_minutes * 60,
        }
        step = sagemaker.CfnEndpoint.CapacitySizeProperty(
            type="CAPACITY_PERCENT", value=endpoint.canary_percent
        )
        if endpoint.deployment == "canary":
            routing["canary_size"] = step
        elif endpoint.deployment == "linear":
            routing["linear_step_size"] = step
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    **routing
                ),
                termination_wait_in_seconds=300,
                maximum_execution_timeout_in_seconds=3600,
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                # Literal names (the alarms' fixed names), not references: the alarms watch this
                # endpoint by name, so a reference back would be a cycle.
                alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=n) for n in self.alarm_names]
            ),
        )

    def _autoscaling(self, endpoint: EndpointSettings) -> None:
        target = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=endpoint.min_capacity,
            max_capacity=endpoint.max_capacity,
            # SageMaker's service-linked role for Application Auto Scaling (created on first use).
            role=iam.Role.from_role_arn(
                self,
                "ScalingRole",
                f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/aws-service-role/"
                "sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            ),
        )
        target.node.add_dependency(self.endpoint)
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=endpoint.invocations_per_instance_per_minute,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=cdk.Duration.minutes(5),
            scale_out_cooldown=cdk.Duration.minutes(1),
        )

    def _dashboard(self, endpoint: EndpointSettings) -> None:
        """The questions of the Grafana dashboard (monitoring/grafana), from SageMaker's metrics:
        traffic, errors, latency, resources and, with Model Monitor, drift of the inputs."""
        host = "/aws/sagemaker/Endpoints"
        invocations = self._metric("Invocations", "Sum")
        errors_4xx = self._metric("Invocation4XXErrors", "Sum")
        errors_5xx = self._metric("Invocation5XXErrors", "Sum")
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Invocations and errors per minute",
                left=[invocations, errors_4xx, errors_5xx],
            ),
            cloudwatch.GraphWidget(
                title="Error ratio",
                left=[
                    cloudwatch.MathExpression(
                        expression="100 * (e4 + e5) / inv",
                        using_metrics={"e4": errors_4xx, "e5": errors_5xx, "inv": invocations},
                        label="4xx + 5xx (% of invocations)",
                        period=cdk.Duration.minutes(1),
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, label="%", show_units=False),
            ),
            cloudwatch.GraphWidget(
                title="Model latency p50 / p90 / p99 (us)",
                left=[self._metric("ModelLatency", s) for s in ("p50", "p90", "p99")],
            ),
            cloudwatch.GraphWidget(
                title="Overhead latency p50 / p99 (us)",
                left=[self._metric("OverheadLatency", s) for s in ("p50", "p99")],
            ),
        ]
        if not endpoint.serverless:
            widgets.append(
                cloudwatch.GraphWidget(
                    title="CPU, memory and disk (%)",
                    left=[
                        self._metric(name, "Average", host)
                        for name in ("CPUUtilization", "MemoryUtilization", "DiskUtilization")
                    ],
                )
            )
        if self.monitor:
            widgets.append(
                cloudwatch.GraphWidget(
                    title="Model Monitor: feature drift from the baseline",
                    left=list(self.monitor.drift_metrics.values()),
                    left_annotations=[
                        cloudwatch.HorizontalAnnotation(
                            value=self.monitor.threshold, label="drift alarm"
                        )
                    ],
                )
            )
            widgets.append(
                cloudwatch.AlarmStatusWidget(title="Drift alarm", alarms=[self.monitor.alarm])
            )
        cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.endpoint_name,
            widgets=[widgets[i : i + 2] for i in range(0, len(widgets), 2)],
        )
