"""The AWS calls the release's CodeBuild role really makes: the CI targets' CLI commands
(Makefile ci-deploy and ci-smoke) run in-process against moto, with a botocore hook on every
session recording each operation and its parameters. Each call then becomes the IAM action and
resource it needs, for the simulator.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

from infra.rehearsal.templates import ACCOUNT
from mlops.stages import Names


@dataclass(frozen=True)
class ApiCall:
    service: str  # botocore's service id, as in the event name (sagemaker, s3, ...)
    operation: str
    params: dict[str, Any]


def ci_commands(stage: Names, smoke: bool, plan: bool) -> list[list[str]]:
    """What `make ci-deploy STAGE=<stage>` (and, for the smoke-tested stage, `make ci-smoke`;
    for the last stage, `make ci-plan`) run through the CLI: the Makefile's recipes minus `cdk
    deploy`, whose calls the CDK bootstrap roles make."""
    where = ["--target", "aws", "--stage", stage.stage]
    commands = [["models", "release-plan", "--stage", stage.stage]] if plan else []
    wait = ["endpoint", "wait", stage.endpoint, "--stage", stage.stage, "--version", "1"]
    commands += [
        ["models", "latest-approved", *where],
        ["monitor", "baseline", "1", "--uri", *where],
        [*wait, "--timeout", "5"],
    ]
    if smoke:
        commands.append(["endpoint", "invoke", stage.endpoint, "--file", "{rows}", *where])
    return commands


@contextlib.contextmanager
def _recording(calls: list[ApiCall]) -> Iterator[None]:
    import boto3

    original = boto3.Session.__init__

    def record(params: dict[str, Any], event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        calls.append(ApiCall(service, operation, dict(params)))

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.events.register("provide-client-params.*.*", record)

    with mock.patch.object(boto3.Session, "__init__", init):
        yield


def record_ci_calls(build: Names, release: list[Names], region: str) -> dict[str, list[ApiCall]]:
    """Run the CI commands for each release stage against a moto account that holds what a real
    one would after the first pipeline run: an approved version with its baseline and metrics in
    the build stage's bucket, and each stage's endpoint serving it."""
    import os
    import tempfile
    from pathlib import Path

    import boto3
    from moto import mock_aws

    from mlops.cli import main

    bucket = build.bucket("artifacts", ACCOUNT, region)
    prefix = f"s3://{bucket}/pipelines/{build.pipeline}/run1"
    recorded: dict[str, list[ApiCall]] = {}
    environment = {
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    botocore_log = logging.getLogger("botocore")
    level = botocore_log.level
    botocore_log.setLevel(logging.WARNING)  # not the credential lookups of every command
    with (
        mock.patch.dict(os.environ, environment),
        mock_aws(),
        tempfile.TemporaryDirectory() as scratch,
        contextlib.ExitStack() as restore,
    ):
        restore.callback(botocore_log.setLevel, level)
        rows = Path(scratch) / "rows.csv"
        rows.write_text("Torgersen,39.1,18.7,181,3750,male,2007\n", encoding="utf-8")
        _account(build, release, region, bucket, prefix, boto3)
        for stage in release:
            calls: list[ApiCall] = []
            with _recording(calls), mock.patch.dict(os.environ, {"MLOPS_HOME": scratch}):
                for argv in ci_commands(
                    stage, smoke=stage == release[0], plan=stage == release[-1]
                ):
                    argv = [a.replace("{rows}", str(rows)) for a in argv]
                    out, err = io.StringIO(), io.StringIO()
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                        code = main(argv)
                    if code != 0:
                        raise RuntimeError(
                            f"`mlops {' '.join(argv)}` failed against the rehearsal account "
                            f"(exit {code}): {err.getvalue().strip()}"
                        )
            recorded[stage.stage] = calls
    return recorded


def _account(
    build: Names, release: list[Names], region: str, bucket: str, prefix: str, boto3: Any
) -> None:
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(Bucket=bucket)
    key = prefix.removeprefix(f"s3://{bucket}/")
    for name in ("statistics.json", "constraints.json", "schema.json"):
        s3.put_object(Bucket=bucket, Key=f"{key}/preprocess/baseline/{name}", Body=b"{}")
    sagemaker = boto3.client("sagemaker", region_name=region)
    sagemaker.create_model_package_group(ModelPackageGroupName=build.model_package_group)
    image = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{build.repository}:rehearsal"
    package = sagemaker.create_model_package(
        ModelPackageGroupName=build.model_package_group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": image, "ModelDataUrl": f"{prefix}/train/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"{prefix}/preprocess/baseline/statistics.json",
                },
                "Constraints": {
                    "ContentType": "application/json",
                    "S3Uri": f"{prefix}/preprocess/baseline/constraints.json",
                },
            }
        },
    )
    for stage in release:
        model = f"{stage.endpoint}-model"
        sagemaker.create_model(
            ModelName=model,
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{stage.role('endpoint')}",
            Containers=[{"ModelPackageName": package["ModelPackageArn"]}],
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{stage.endpoint}-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(
            EndpointName=stage.endpoint, EndpointConfigName=f"{stage.endpoint}-config"
        )


def needs(call: ApiCall, region: str) -> list[tuple[str, str, dict[str, str]]]:
    """The IAM (action, resource, context) a recorded call needs."""
    arn = f"arn:aws:sagemaker:{region}:{ACCOUNT}"
    p = call.params
    if call.service == "s3":
        if call.operation in ("GetObject", "HeadObject"):
            return [("s3:GetObject", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}", {})]
        if call.operation in ("ListObjectsV2", "ListObjects"):
            return [
                ("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", {"s3:prefix": p.get("Prefix", "")})
            ]
        return [(f"s3:{call.operation}", f"arn:aws:s3:::{p.get('Bucket', '*')}", {})]
    resource = "*"
    if "ModelPackageName" in p:
        name = str(p["ModelPackageName"])
        resource = name if name.startswith("arn:") else f"{arn}:model-package/{name}"
    elif "ModelPackageGroupName" in p and call.operation != "ListModelPackages":
        resource = f"{arn}:model-package-group/{p['ModelPackageGroupName']}"
    elif "EndpointConfigName" in p:
        resource = f"{arn}:endpoint-config/{str(p['EndpointConfigName']).lower()}"
    elif "EndpointName" in p:
        resource = f"{arn}:endpoint/{str(p['EndpointName']).lower()}"
    elif "ModelName" in p:
        resource = f"{arn}:model/{str(p['ModelName']).lower()}"
    service = "sagemaker" if call.service.startswith("sagemaker") else call.service
    return [(f"{service}:{call.operation}", resource, {})]
