"""The optional managed MLflow tracking server: off by default, and when a stage turns it on,
a server on the artifacts bucket with a least-privilege role that passes cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app
from mlops.errors import MlopsError
from mlops.stages import MlflowSettings, load_context

from .conftest import load_templates, resources

TRACKING = "AWS::SageMaker::MlflowTrackingServer"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The dev stage with a Medium tracking server; cdk-nag runs, so a finding fails this."""
    stages = load_context()["stages"]
    dev = {**stages["dev"], "mlflow": {"tracking_server": True, "size": "Medium"}}
    outdir = tmp_path_factory.mktemp("cdk.out-mlflow")
    build_app(
        {"stage": "dev", "stages": {**stages, "dev": dev}}, outdir=str(outdir), validate=False
    ).synth()
    return load_templates(outdir)["mlops-dev-foundation"]


def test_no_stage_runs_a_tracking_server_by_default(cdk_outs: dict[str, Path]) -> None:
    """A tracking server bills every hour it exists, so cdk.json leaves it off everywhere."""
    for outdir in cdk_outs.values():
        for template in load_templates(outdir).values():
            assert not resources(template, TRACKING)


def test_server_stores_artifacts_in_the_encrypted_artifacts_bucket(tracked: dict[str, Any]) -> None:
    (server,) = resources(tracked, TRACKING)
    artifacts = next(
        name
        for name, r in tracked["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket" and "mlops-dev-artifacts" in json.dumps(r)
    )
    assert server["ArtifactStoreUri"] == {
        "Fn::Join": ["", ["s3://", {"Ref": artifacts}, "/mlflow"]]
    }
    assert server["TrackingServerName"] == MlflowSettings.server_name("dev")
    assert server["TrackingServerSize"] == "Medium"
    assert server["AutomaticModelRegistration"] is False
    role = server["RoleArn"]["Fn::GetAtt"][0]
    assert tracked["Resources"][role]["Properties"]["RoleName"] == "mlops-dev-sagemaker-mlflow"
    # Its ARN is the tracking URI: an output, and the same name the CLI builds from cdk.json.
    (output,) = [o for k, o in tracked["Outputs"].items() if k.startswith("MlflowTrackingUri")]
    server_id = next(k for k, r in tracked["Resources"].items() if r["Type"] == TRACKING)
    assert output["Value"] == {"Fn::GetAtt": [server_id, "TrackingServerArn"]}
    assert MlflowSettings().server_arn("dev", "us-east-1", "123456789012") == (
        "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/mlops-dev"
    )
    assert (
        MlflowSettings()
        .server_arn("dev", "cn-north-1", "123456789012")
        .startswith("arn:aws-cn:sagemaker:cn-north-1:")
    )


def test_server_role_reaches_its_prefix_and_the_key_only(tracked: dict[str, Any]) -> None:
    (policy,) = [
        p
        for p in resources(tracked, "AWS::IAM::Policy")
        if p["PolicyName"].startswith("MlflowRole")
    ]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {
        "ArtifactObjects",
        "ArtifactListing",
        "BucketLocation",
        "ArtifactEncryption",
    }
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in statement["Action"])
    assert statements["ArtifactObjects"]["Resource"]["Fn::Join"][1][1] == "/mlflow/*"
    assert statements["ArtifactListing"]["Condition"] == {
        "StringLike": {"s3:prefix": ["mlflow/*", "mlflow"]}
    }
    # GetBucketLocation carries no s3:prefix: under the listing's condition it would be denied.
    assert statements["BucketLocation"]["Action"] == "s3:GetBucketLocation"
    assert "Condition" not in statements["BucketLocation"]
    assert statements["ArtifactEncryption"]["Resource"]["Fn::GetAtt"][0].startswith("Key")


def test_bad_tracking_settings_are_explained(tmp_path: Path) -> None:
    with pytest.raises(
        MlopsError, match=r"mlflow\.size: Input should be 'Small', 'Medium' or 'Large'"
    ):
        build_app(
            {"stages": {"dev": {"mlflow": {"tracking_server": True, "size": "Huge"}}}},
            outdir=str(tmp_path),
        )
