"""Cloud monitoring in the deploy stack: the CloudWatch dashboard, prod's Model Monitor schedule
against the pipeline's baseline, its drift alarm, and the EventBridge rule that retrains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from infra.app import build_app
from infra.model_monitor import ANALYZER_ACCOUNTS, analyzer_image
from mlops.errors import MlopsError
from mlops.local import DEMO_DATA, DEMO_TARGET
from mlops.stages import load_context
from sagemaker_jobs.data import DataSpec, Schema, prepare

from .conftest import load_templates, resources

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prod(cdk_outs: dict[str, Path]) -> dict[str, Any]:
    return load_templates(cdk_outs["prod"])["mlops-tabular-prod-model-deploy"]


def logical(template: dict[str, Any], kind: str, prefix: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (k, r["Properties"])
        for k, r in template["Resources"].items()
        if r["Type"] == kind and k.startswith(prefix)
    ]
    return found


def flat(value: Any) -> str:
    """A CloudFormation string value as text: Fn::Join joined, references as ${Name}."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(flat(p) for p in parts)
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return json.dumps(value)


def statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    role, _ = logical(template, "AWS::IAM::Role", role_prefix)
    return [
        s
        for p in resources(template, "AWS::IAM::Policy")
        if {"Ref": role} in p["Roles"]
        for s in p["PolicyDocument"]["Statement"]
    ]


def test_the_job_checks_captures_against_the_baseline_from_ssm(prod: dict[str, Any]) -> None:
    _, job = logical(prod, "AWS::SageMaker::DataQualityJobDefinition", "Monitor")
    assert job["DataQualityAppSpecification"] == {
        "ImageUri": "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        "Environment": {"publish_cloudwatch_metrics": "Enabled"},
    }
    (parameter,) = [
        name
        for name, p in prod["Parameters"].items()
        if p.get("Default") == "/mlops/mlops-tabular/prod/baseline-uri"
    ]
    baseline = job["DataQualityBaselineConfig"]
    assert flat(baseline["ConstraintsResource"]["S3Uri"]) == f"${{{parameter}}}/constraints.json"
    assert flat(baseline["StatisticsResource"]["S3Uri"]) == f"${{{parameter}}}/statistics.json"
    assert job["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlops-tabular-prod"
    output = job["DataQualityJobOutputConfig"]
    (s3,) = [o["S3Output"] for o in output["MonitoringOutputs"]]
    assert flat(s3["S3Uri"]).endswith("/monitoring/mlops-tabular-prod/data-quality")
    cluster = job["JobResources"]["ClusterConfig"]
    assert "KmsKeyId" in output and "VolumeKmsKeyId" in cluster
    assert (cluster["InstanceType"], cluster["InstanceCount"]) == ("ml.m5.xlarge", 1)
    network = job["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is True
    assert len(network["VpcConfig"]["Subnets"]) == 2  # prod has a VPC
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3000}


def test_the_hourly_schedule_runs_that_job(prod: dict[str, Any]) -> None:
    job_id, _ = logical(prod, "AWS::SageMaker::DataQualityJobDefinition", "Monitor")
    _, schedule = logical(prod, "AWS::SageMaker::MonitoringSchedule", "Monitor")
    config = schedule["MonitoringScheduleConfig"]
    assert schedule["MonitoringScheduleName"] == "mlops-tabular-prod-data-quality"
    assert schedule["EndpointName"] == "mlops-tabular-prod"
    assert config["MonitoringType"] == "DataQuality"
    assert config["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
    assert config["MonitoringJobDefinitionName"] == {
        "Fn::Select": [1, {"Fn::Split": ["/", {"Fn::GetAtt": [job_id, "JobDefinitionArn"]}]}]
    }


def test_the_monitor_role_reads_captures_and_baselines_and_writes_only_reports(
    prod: dict[str, Any], cdk_outs: dict[str, Path]
) -> None:
    _, role = logical(prod, "AWS::IAM::Role", "MonitorRole")
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "sagemaker.amazonaws.com"
    }
    granted = {s["Sid"]: s for s in statements(prod, "MonitorRole")}
    actions = [
        a
        for s in granted.values()
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert actions and not [a for a in actions if "*" in a]  # no action wildcards
    bucket = "arn:${AWS::Partition}:s3:::mlops-prod-artifacts-${AWS::AccountId}-${AWS::Region}"
    assert flat(granted["ReadCaptures"]["Resource"]) == f"{bucket}/data-capture/*"
    # The baseline is the build stage's (dev), under its key.
    built = "arn:${AWS::Partition}:s3:::mlops-dev-artifacts-${AWS::AccountId}-${AWS::Region}"
    assert flat(granted["ReadBaseline"]["Resource"]) == f"{built}/pipelines/mlops-tabular/*"
    assert granted["DecryptBaseline"]["Resource"] == {"Fn::ImportValue": "mlops-dev-key-arn"}
    assert granted["WriteReports"]["Action"] == "s3:PutObject"
    assert (
        flat(granted["WriteReports"]["Resource"])
        == f"{bucket}/monitoring/mlops-tabular-prod/data-quality/*"
    )
    assert granted["DataMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "aws/sagemaker/Endpoints/data-metrics"}
    }
    # The bucket named in the policy is the foundation stack's artifacts bucket.
    foundation = load_templates(cdk_outs["prod"])["mlops-prod-foundation"]
    names = {flat(b["BucketName"]) for b in resources(foundation, "AWS::S3::Bucket")}
    assert bucket.removeprefix("arn:${AWS::Partition}:s3:::") in names


def demo_schema() -> Schema:
    """The schema preprocess derives from the demo data: its feature order is the baseline's."""
    _, schema = prepare(pd.read_csv(DEMO_DATA), DataSpec(target=DEMO_TARGET))
    return schema


def test_drift_on_a_watched_feature_alarms_and_starts_the_retraining_pipeline(
    prod: dict[str, Any],
) -> None:
    features = load_context()["stages"]["prod"]["endpoint"]["monitoring"]["features"]
    alarm_id, alarm = logical(prod, "AWS::CloudWatch::Alarm", "MonitorDriftAlarm")
    assert alarm["AlarmName"] == "mlops-tabular-prod-data-drift"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        0.1,
        "GreaterThanOrEqualToThreshold",
    )
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    watched = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    assert expression["Expression"] == f"MAX([{', '.join(m['Id'] for m in alarm['Metrics'][1:])}])"
    # Model Monitor names metrics after the baseline's positional column names (_c0, _c1, ...),
    # so the watched list must be the model's features in training order: the demo's here.
    assert features == list(demo_schema().features)
    assert [w["Metric"]["MetricName"] for w in watched] == [
        f"feature_baseline_drift__c{i}" for i in range(len(features))
    ]
    assert {json.dumps(w["Metric"]["Dimensions"]) for w in watched} == {
        json.dumps(
            [
                {"Name": "Endpoint", "Value": "mlops-tabular-prod"},
                {"Name": "MonitoringSchedule", "Value": "mlops-tabular-prod-data-quality"},
            ]
        )
    }
    topic, _ = logical(prod, "AWS::SNS::Topic", "Alarms")
    assert alarm["AlarmActions"] == [{"Ref": topic}]

    _, rule = logical(prod, "AWS::Events::Rule", "MonitorRetrain")
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [{"Fn::GetAtt": [alarm_id, "Arn"]}],
        "detail": {"state": {"value": ["ALARM"]}},
    }
    (target,) = rule["Targets"]
    pipeline = (
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:pipeline/mlops-tabular"
    )
    assert flat(target["Arn"]) == pipeline
    role_id, role = logical(prod, "AWS::IAM::Role", "MonitorRetrainRole")
    assert target["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "events.amazonaws.com"
    }
    (only,) = statements(prod, "MonitorRetrainRole")
    assert (only["Action"], flat(only["Resource"])) == (
        "sagemaker:StartPipelineExecution",
        pipeline,
    )


def test_the_dashboard_answers_the_grafana_questions_from_sagemaker_metrics(
    prod: dict[str, Any], cdk_outs: dict[str, Path]
) -> None:
    (dashboard,) = resources(prod, "AWS::CloudWatch::Dashboard")
    body = flat(dashboard["DashboardBody"])
    for title in (
        "Invocations and errors per minute",
        "Error ratio",
        "Model latency p50 / p90 / p99 (us)",
        "Overhead latency p50 / p99 (us)",
        "CPU, memory and disk (%)",
        "Model Monitor: feature drift from the baseline",
        "Drift alarm",
    ):
        assert f'"title":"{title}"' in body
    for metric in (
        '"Invocations"',
        '"Invocation4XXErrors"',
        '"Invocation5XXErrors"',
        '"ModelLatency"',
        '"OverheadLatency"',
        '"CPUUtilization"',
        '"MemoryUtilization"',
        '"feature_baseline_drift__c0"',
        '"label":"island (_c0)"',
    ):
        assert metric in body
    assert '"stat":"p90"' in body and '"expression":"100 * (e4 + e5) / inv"' in body
    staging = load_templates(cdk_outs["staging"])["mlops-tabular-staging-model-deploy"]
    (serverless,) = resources(staging, "AWS::CloudWatch::Dashboard")
    assert "CPUUtilization" not in flat(serverless["DashboardBody"])
    assert not resources(staging, "AWS::SageMaker::MonitoringSchedule")
    assert not resources(staging, "AWS::Events::Rule")


def test_a_baseline_from_context_is_used_as_given(tmp_path: Path) -> None:
    context = load_context()
    prod = context["stages"]["prod"]
    uri = "s3://mlops-prod-artifacts-1-us-east-1/pipelines/mlops-tabular/x1/preprocess/baseline"
    # prod without its VPC (a lighter synth), and a baseline from context
    stages = {**context["stages"], "prod": {**prod, "vpc": False}}
    build_app(
        {"stage": "prod", "stages": stages, "baseline_uri": uri + "/"},
        outdir=str(tmp_path),
        validate=False,
    ).synth()
    template = json.loads((tmp_path / "mlops-tabular-prod-model-deploy.template.json").read_text())
    _, job = logical(template, "AWS::SageMaker::DataQualityJobDefinition", "Monitor")
    baseline = job["DataQualityBaselineConfig"]
    assert baseline["ConstraintsResource"]["S3Uri"] == f"{uri}/constraints.json"
    assert baseline["StatisticsResource"]["S3Uri"] == f"{uri}/statistics.json"
    assert "VpcConfig" not in job["NetworkConfig"]
    assert not any(
        p.get("Default") == "/mlops/mlops-tabular/prod/baseline-uri"
        for p in template["Parameters"].values()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"serverless": True}, "monitoring needs captured traffic"),
        ({"data_capture_percent": 0}, "monitoring needs captured traffic"),
        ({"monitoring": {"features": []}}, "features"),
        ({"monitoring": {"features": ["x", "x"]}}, "lists a feature twice"),
        ({"monitoring": {"features": ["x"], "schedule": "rate(1 hour)"}}, "schedule"),
        ({"monitoring": {"features": ["x"], "max_runtime_minutes": 90}}, "max_runtime_minutes"),
        ({"context": {"baseline_uri": "my-bucket/baseline"}}, "is not an S3 folder"),
    ],
)
def test_bad_monitoring_settings_are_explained(
    change: dict[str, Any], message: str, tmp_path: Path
) -> None:
    endpoint = {"monitoring": {"features": ["island"]}, **change}
    extra = endpoint.pop("context", {})
    with pytest.raises(MlopsError, match=message):
        stages = {**load_context()["stages"], "dev": {"endpoint": endpoint}}
        build_app({"stages": stages, **extra}, outdir=str(tmp_path))


def test_the_analyzer_image_accounts_match_the_sagemaker_sdk() -> None:
    import importlib.util

    spec = importlib.util.find_spec("sagemaker.core")
    assert spec and spec.submodule_search_locations
    config = Path(spec.submodule_search_locations[0]) / "image_uri_config" / "model-monitor.json"
    registries = json.loads(config.read_text())["versions"][""]["registries"]
    assert {r: a for r, a in registries.items() if not r.startswith("us-iso")} == ANALYZER_ACCOUNTS
    assert analyzer_image("cn-north-1").endswith(
        ".amazonaws.com.cn/sagemaker-model-monitor-analyzer"
    )
    with pytest.raises(MlopsError, match="no analyzer image in us-isof-east-1"):
        analyzer_image("us-isof-east-1")
