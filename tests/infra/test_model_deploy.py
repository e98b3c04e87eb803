"""The model deploy stacks: staging (serverless) and prod (instances with guardrails)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app
from mlops.errors import MlopsError
from mlops.stages import EndpointSettings

from .conftest import load_templates, resources


@pytest.fixture(scope="module")
def prod(cdk_outs: dict[str, Path]) -> dict[str, Any]:
    return load_templates(cdk_outs["prod"])["mlops-tabular-prod-model-deploy"]


@pytest.fixture(scope="module")
def staging(cdk_outs: dict[str, Path]) -> dict[str, Any]:
    return load_templates(cdk_outs["staging"])["mlops-tabular-staging-model-deploy"]


def test_dev_has_no_endpoint(templates: dict[str, dict[str, Any]]) -> None:
    assert "mlops-tabular-dev-model-deploy" not in templates


def test_model_comes_from_the_ssm_parameter_at_deploy_time(prod: dict[str, Any]) -> None:
    (model,) = resources(prod, "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is True
    (reference,) = [
        p
        for p in prod["Parameters"].values()
        if p.get("Default") == "/mlops/mlops-tabular/prod/model-package-arn"
    ]
    assert reference["Type"] == "AWS::SSM::Parameter::Value<String>"


def test_prod_endpoint_has_guardrails_capture_kms_and_scaling(prod: dict[str, Any]) -> None:
    (config,) = resources(prod, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 2)
    assert "KmsKeyId" in config
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 20 and capture["EnableCapture"] is True
    (endpoint,) = resources(prod, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == "mlops-tabular-prod"
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert policy["Type"] == "CANARY" and policy["CanarySize"] == {
        "Type": "CAPACITY_PERCENT",
        "Value": 10,
    }
    rollback = {
        a["AlarmName"] for a in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    }
    assert rollback == {
        f"mlops-tabular-prod-{n}" for n in ("Errors5xx", "LatencyP99", "Cpu", "Memory")
    }
    (target,) = resources(prod, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    (scaling,) = resources(prod, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = scaling["TargetTrackingScalingPolicyConfiguration"]
    assert (
        tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    alarms = resources(prod, "AWS::CloudWatch::Alarm")
    # The four rollback alarms, and Model Monitor's drift alarm (tests/infra/test_monitoring.py).
    assert len(alarms) == 5 and all(a["AlarmActions"] for a in alarms)
    (topic,) = resources(prod, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic
    assert resources(prod, "AWS::CloudWatch::Dashboard")


def test_staging_is_serverless_with_all_at_once_guardrails(staging: dict[str, Any]) -> None:
    (config,) = resources(staging, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "DataCaptureConfig" not in config and "KmsKeyId" not in config
    (model,) = resources(staging, "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is False and "VpcConfig" not in model
    (endpoint,) = resources(staging, "AWS::SageMaker::Endpoint")
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 600,
    }
    rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert {a["AlarmName"] for a in rollback} == {
        "mlops-tabular-staging-Errors5xx",
        "mlops-tabular-staging-LatencyP99",
    }
    assert not resources(staging, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert len(resources(staging, "AWS::CloudWatch::Alarm")) == 2


def test_a_model_package_arn_from_context_wins(tmp_path: Path) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-tabular/7"
    build_app(
        {"stage": "staging", "model_package_arn": arn}, outdir=str(tmp_path), validate=False
    ).synth()
    template = json.loads(
        (tmp_path / "mlops-tabular-staging-model-deploy.template.json").read_text()
    )
    (model,) = resources(template, "AWS::SageMaker::Model")
    assert model["Containers"] == [{"ModelPackageName": arn}]


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({"min_capacity": 3, "max_capacity": 2}, "min_capacity 3 is above max_capacity 2"),
        ({"serverless_memory_mb": 1500}, "must be a 1024 MB step"),
        ({"serverless_memory_mb": 8192}, "serverless_memory_mb"),
        ({"instance_type": "m5.large"}, "instance_type"),
        ({"deployment": "yolo"}, "deployment"),
        ({"data_capture_percent": 120}, "data_capture_percent"),
    ],
)
def test_bad_endpoint_settings_are_explained(
    endpoint: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(MlopsError) as caught:
        build_app({"stages": {"dev": {"endpoint": endpoint}}}, outdir=str(tmp_path))
    assert message in str(caught.value)


def test_endpoint_defaults_are_consistent() -> None:
    settings = EndpointSettings()
    assert settings.min_capacity <= settings.initial_instance_count <= settings.max_capacity


def test_prod_runs_models_and_monitoring_in_private_isolated_subnets(
    cdk_outs: dict[str, Path],
) -> None:
    stacks = load_templates(cdk_outs["prod"])
    foundation = stacks["mlops-prod-foundation"]
    assert not resources(foundation, "AWS::EC2::NatGateway") and not resources(
        foundation, "AWS::EC2::InternetGateway"
    )
    services = json.dumps(
        [e["ServiceName"] for e in resources(foundation, "AWS::EC2::VPCEndpoint")]
    )
    for service in (
        "sagemaker.api",
        "sagemaker.runtime",
        "ecr.api",
        "ecr.dkr",
        "logs",
        "monitoring",
        "sts",
        "s3",
    ):
        assert f".{service}" in services
    assert resources(foundation, "AWS::EC2::FlowLog")
    (model,) = resources(stacks["mlops-tabular-prod-model-deploy"], "AWS::SageMaker::Model")
    assert len(model["VpcConfig"]["Subnets"]) == 2 and model["EnableNetworkIsolation"] is True


def test_stages_without_vpc_have_none(templates: dict[str, dict[str, Any]]) -> None:
    assert not resources(templates["mlops-dev-foundation"], "AWS::EC2::VPC")


def test_the_build_stage_tunes_its_train_step(templates: dict[str, dict[str, Any]]) -> None:
    (pipeline,) = resources(templates["mlops-tabular-model-build"], "AWS::SageMaker::Pipeline")
    body, _ = pipeline["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    steps = json.loads(body)["Steps"]
    types = {step["Name"]: step["Type"] for step in steps}
    assert types["Train"] == "Tuning"  # cdk.json: dev is the build stage and tunes
