"""The CDK app: what each stack creates, the pipeline body, hardening, determinism, settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app
from infra.model_build import definition_body
from mlops.errors import MlopsError
from mlops.stages import load_context, names, stage_settings

from .conftest import resources

FOUNDATION, BUILD = "mlops-dev-foundation", "mlops-tabular-model-build"
ROOT = Path(__file__).resolve().parents[2]


def test_the_stage_has_its_stacks(templates: dict[str, dict[str, Any]]) -> None:
    assert set(templates) == {FOUNDATION, BUILD, "mlops-cicd"}


def test_key_buckets_and_repository_are_hardened(templates: dict[str, dict[str, Any]]) -> None:
    foundation = templates[FOUNDATION]
    (key,) = resources(foundation, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    buckets = resources(foundation, "AWS::S3::Bucket")
    assert len(buckets) == 3
    for bucket in buckets:
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert bucket["LifecycleConfiguration"]["Rules"]
    encrypted = [b for b in buckets if "LoggingConfiguration" in b]
    assert len(encrypted) == 2  # data and artifacts, logged to the access-log bucket
    for bucket in encrypted:
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    policies = json.dumps(resources(foundation, "AWS::S3::BucketPolicy"))
    assert policies.count('"aws:SecureTransport": "false"') == 3  # SSL enforced on every bucket
    (repository,) = resources(foundation, "AWS::ECR::Repository")
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert (
        "LifecyclePolicy" in repository
        and repository["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    )


def test_roles_are_least_privilege(templates: dict[str, dict[str, Any]]) -> None:
    everything = json.dumps(templates)
    assert "AmazonSageMakerFullAccess" not in everything
    statements = [
        s
        for p in resources(templates[FOUNDATION], "AWS::IAM::Policy")
        for s in p["PolicyDocument"]["Statement"]
    ]
    assert all(s["Action"] != "*" for s in statements)
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert not any(
        m
        for r in resources(templates[FOUNDATION], "AWS::IAM::Role")
        for m in r.get("ManagedPolicyArns", [])
    )


def test_pipeline_body_is_the_locally_executed_definition(
    templates: dict[str, dict[str, Any]],
) -> None:
    build = templates[BUILD]
    (pipeline,) = resources(build, "AWS::SageMaker::Pipeline")
    body, variables = pipeline["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    _, dev = stage_settings({**load_context(), "stage": "dev"})
    assert body == definition_body(dev, names=names())
    assert set(variables) == {"ImageUri", "JobRoleName", "ArtifactsBucket"}
    assert "Fn::ImportValue" in json.dumps(
        variables["JobRoleName"]
    )  # a CDK reference to the foundation role
    # Apart from the account values CloudFormation fills in, it is the local definition.
    from mlops.local import LOCAL_BUCKET, LOCAL_IMAGE, LOCAL_ROLE, local_settings
    from sagemaker_jobs.pipeline import definition_json

    filled = (
        body.replace("${ImageUri}", LOCAL_IMAGE)
        .replace("${ArtifactsBucket}", LOCAL_BUCKET)
        .replace("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${JobRoleName}", LOCAL_ROLE)
    )
    local_run = local_settings(code_version="unknown", tuning=dev.tuning)
    local = json.loads(
        definition_json(local_run.model_copy(update={"quality_threshold": dev.quality_threshold}))
    )
    assert json.loads(filled) == local
    (group,) = resources(build, "AWS::SageMaker::ModelPackageGroup")
    assert group["ModelPackageGroupName"] == "mlops-tabular"


def test_templates_of_every_stage_pass_cfn_lint(cdk_outs: dict[str, Path]) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    every = sorted(p for out in cdk_outs.values() for p in out.glob("*.template.json"))
    assert len(every) == 9  # every stage: foundation, cicd; dev: + build; staging, prod: + deploy
    # mlops-cicd is the same template in every stage's synth (test_rehearsal checks it): lint
    # each distinct template once.
    files = list({p.read_bytes(): str(p) for p in every}.values())
    assert len(files) == 7
    # Run from the repository root so cfn-lint reads .cfnlintrc.yaml (its ignore list, with reasons).
    result = subprocess.run([str(cfn_lint), *files], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# CloudFormation validation and determinism: tests/infra/test_cli_synth.py (the CLI's synth).


def test_an_unacknowledged_finding_fails_the_synth(tmp_path: Path) -> None:
    from aws_cdk import aws_s3 as s3

    app = build_app({"stage": "dev"}, outdir=str(tmp_path), validate=False)
    s3.Bucket(app.node.find_child(FOUNDATION), "Careless")  # no SSL rule, no logs, no KMS
    with pytest.raises(Exception, match=r"ValidationFailed(.|\n)*AwsSolutions-S10"):
        app.synth()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "qa"}, "unknown stage 'qa'"),
        ({"stages": {"dev": {"region": "moon-1"}}}, "stage 'dev' in cdk.json: region"),
        ({"stages": {"dev": {"quality_threshold": 2}}}, "quality_threshold"),
        (
            {"stage": "prod", "stages": {"dev": {}, "prod": {"tuning": {}}}},
            "stage 'prod' in cdk.json sets tuning, but models are built only in the build stage",
        ),
        ({"build_stage": "qa"}, "build_stage 'qa' in cdk.json is not a stage"),
        ({"stages": {"dev": {"instance": "big"}}}, "instance: Extra inputs are not permitted"),
    ],
)
def test_bad_stage_settings_are_explained(
    context: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(MlopsError) as caught:
        build_app(context, outdir=str(tmp_path))
    assert message in str(caught.value)
