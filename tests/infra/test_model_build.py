"""The CDK app: the deployed pipeline body is the builder's definition, and settings are checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra import build_app
from mlops.errors import MlopsError
from sagemaker_jobs.pipeline import PipelineSettings, definition_json


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One synth per session, with CDK's built-in CloudFormation validation on."""
    app = build_app({"stage": "dev"}, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    stack = app.node.find_child("mlops-dev-model-build")
    return Template.from_stack(stack).to_json()  # type: ignore[arg-type]


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_pipeline_body_is_the_builders_definition(template: dict[str, Any]) -> None:
    (pipeline,) = _resources(template, "AWS::SageMaker::Pipeline")
    body, variables = pipeline["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert set(variables) == {"ImageUri"}
    expected = definition_json(
        PipelineSettings(
            image_uri="${ImageUri}",
            role_arn="arn:${AWS::Partition}:iam::${AWS::AccountId}:role/mlops-dev-sagemaker",
            bucket="mlops-dev-artifacts-${AWS::AccountId}-${AWS::Region}",
            region="us-east-1",
        )
    )
    assert body == expected
    assert json.loads(body)["Steps"][0]["Name"] == "Preprocess"


def test_model_package_group_and_role(template: dict[str, Any]) -> None:
    (group,) = _resources(template, "AWS::SageMaker::ModelPackageGroup")
    assert group["ModelPackageGroupName"] == "mlops-tabular"
    (role,) = _resources(template, "AWS::IAM::Role")
    assert role["RoleName"] == "mlops-dev-sagemaker"
    policies = json.dumps(_resources(template, "AWS::IAM::Policy"))
    assert "AmazonSageMakerFullAccess" not in json.dumps(template)
    assert '"Action": "*"' not in policies


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "qa"}, "unknown stage 'qa'"),
        ({"stages": {"dev": {"region": "moon-1"}}}, "stage 'dev' in cdk.json: region"),
        ({"stages": {"dev": {"quality_threshold": 2}}}, "quality_threshold"),
        ({"stages": {"dev": {"instance": "big"}}}, "instance: Extra inputs are not permitted"),
    ],
)
def test_bad_stage_settings_are_explained(
    context: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(MlopsError) as caught:
        build_app(context, outdir=str(tmp_path))
    assert message in str(caught.value)
