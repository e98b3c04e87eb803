"""The deploy rehearsal on the session's synth of every stage: it passes, and it fails with the
right line when any one of the defects of issue 11 is put back into a template or a setting."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.rehearsal import Report, rehearse
from infra.rehearsal.checks import distribution
from infra.rehearsal.templates import Deployment, Stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def check(
    cdk_outs: dict[str, Path], ci_calls: dict[str, list[Any]]
) -> Callable[[Callable[[Deployment], None] | None], Report]:
    def run(edit: Callable[[Deployment], None] | None = None) -> Report:
        return rehearse(cdk_outs, ci_calls=ci_calls, edit=edit)

    return run


def stack(deployment: Deployment, name: str, stage: str | None = None) -> Stack:
    return next(
        s for s in deployment.stacks if s.name == name and (stage is None or s.stage == stage)
    )


def drop(deployment: Deployment, name: str, sid: str) -> None:
    """Remove the policy statements ``sid`` from stack ``name`` (every copy of it)."""
    found = 0
    for s in deployment.stacks:
        if s.name != name:
            continue
        for _, policy in s.of_type("AWS::IAM::Policy"):
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            kept = [st for st in statements if st.get("Sid") != sid]
            found += len(statements) - len(kept)
            policy["Properties"]["PolicyDocument"]["Statement"] = kept
    assert found, f"no statement {sid} in {name}"


def failures(report: Report, family: str) -> list[str]:
    return report.family(family).failures


def test_every_stage_passes_the_rehearsal(check: Callable[..., Report]) -> None:
    report = check()
    assert report.ok, "\n".join(report.lines())
    counts = {f.name: f.count for f in report.families}
    assert counts["API requests"] >= 4  # Preprocess, Train (tuning), Evaluate, Register
    assert counts["IAM sufficiency"] > 100 and counts["cross-stage names"] > 40
    assert counts["feature exclusions"] > 10 and counts["alarm semantics"] == 3


def test_defect_1_stages_collide(check: Callable[..., Report]) -> None:
    def edit(d: Deployment) -> None:  # prod creates the build's group and pipeline again
        build = stack(d, "mlops-tabular-model-build")
        prod = stack(d, "mlops-prod-foundation")
        for logical, resource in build.resources.items():
            if resource["Type"] in ("AWS::SageMaker::ModelPackageGroup",):
                prod.template["Resources"][logical] = resource

    (line,) = failures(check(edit), "cross-stage names")
    assert line.startswith("AWS::SageMaker::ModelPackageGroup 'mlops-tabular' is created by 2")


def test_defect_2_promotion_cannot_read_what_it_promotes(check: Callable[..., Report]) -> None:
    def edit(d: Deployment) -> None:
        drop(d, "mlops-staging-foundation", "ReadModelData")
        drop(d, "mlops-staging-foundation", "PullModelImage")
        drop(d, "mlops-tabular-prod-model-deploy", "ReadBaseline")

    lines = failures(check(edit), "IAM sufficiency")
    assert any(
        re.search(
            r"staging model role .* cannot s3:GetObject on arn:aws:s3:::mlops-dev-artifacts-"
            r"123456789012-us-east-1/pipelines/mlops-tabular/.*model.tar.gz",
            line,
        )
        for line in lines
    )
    assert any(
        "cannot ecr:BatchGetImage on arn:aws:ecr:us-east-1:123456789012:repository/"
        "cdk-hnb659fds-container-assets-123456789012-us-east-1" in line
        for line in lines
    )
    assert any("prod Model Monitor role" in line and "statistics.json" in line for line in lines)


def test_defect_3_the_release_role_is_too_narrow(check: Callable[..., Report]) -> None:
    def edit(d: Deployment) -> None:
        drop(d, "mlops-cicd", "WatchEndpoints")
        drop(d, "mlops-cicd", "ReadRegistry")

    lines = failures(check(edit), "IAM sufficiency")
    for action in ("DescribeEndpoint", "DescribeEndpointConfig", "DescribeModel"):
        assert any(
            "CodeBuild role (prod release)" in line and f"sagemaker:{action} " in line
            for line in lines
        )
    assert any("sagemaker:DescribeModelPackageGroup on" in line for line in lines)


def test_defect_4_prod_in_a_vpc_has_no_network_interfaces(check: Callable[..., Report]) -> None:
    def edit(d: Deployment) -> None:
        drop(d, "mlops-prod-foundation", "VpcNetworkInterfaces")

    lines = failures(check(edit), "IAM sufficiency")
    assert len(lines) == 9  # the model role's nine EC2 actions, unscoped
    assert all("prod model role" in line and " on * " in line for line in lines)
    assert any("cannot ec2:CreateNetworkInterfacePermission on *" in line for line in lines)


def test_defect_5_prod_tuning_cannot_start(check: Callable[..., Report]) -> None:
    def edit(d: Deployment) -> None:
        drop(d, "mlops-dev-foundation", "PipelineTuning")

    lines = failures(check(edit), "IAM sufficiency")
    assert any(
        "pipeline role mlops-dev-sagemaker-pipeline cannot sagemaker:CreateHyperParameterTuningJob"
        " on arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/" in line
        for line in lines
    )
    assert any("ListTrainingJobsForHyperParameterTuningJob" in line for line in lines)


def test_defect_6_serverless_network_isolation_and_no_guardrails(
    check: Callable[..., Report],
) -> None:
    def edit(d: Deployment) -> None:
        deploy = stack(d, "mlops-tabular-staging-model-deploy")
        for _, model in deploy.of_type("AWS::SageMaker::Model"):
            model["Properties"]["EnableNetworkIsolation"] = True
        for _, endpoint in deploy.of_type("AWS::SageMaker::Endpoint"):
            del endpoint["Properties"]["DeploymentConfig"]

    lines = failures(check(edit), "feature exclusions")
    assert lines == [
        "endpoint mlops-tabular-staging (mlops-tabular-staging-model-deploy) uses an excluded "
        "feature: serverless: network isolation",
        "endpoint mlops-tabular-staging (mlops-tabular-staging-model-deploy) uses an excluded "
        "feature: deployment guardrails: no auto-rollback alarms (every endpoint deploys with "
        "guardrails)",
    ]


def test_defect_7_correctness_risks(check: Callable[..., Report]) -> None:
    def edit(d: Deployment) -> None:
        drop(d, "mlops-prod-foundation", "WriteDataCapture")
        deploy = stack(d, "mlops-tabular-prod-model-deploy")
        for logical, _ in list(deploy.of_type("AWS::IAM::Policy")):
            if logical.startswith("RollbackAlarmsRead"):
                del deploy.template["Resources"][logical]
        for _, alarm in deploy.of_type("AWS::CloudWatch::Alarm"):
            props = alarm["Properties"]
            if props.get("MetricName") == "Invocation5XXErrors":
                props.update(Period=60, EvaluationPeriods=5)
            if props.get("MetricName") == "CPUUtilization":
                props["Threshold"] = 80
        cicd = stack(d, "mlops-cicd", "prod")  # the release stack tagged with -c stage
        cicd.template["Resources"]["Key961B73FD"]["Properties"]["Tags"] = [
            {"Key": "stage", "Value": "prod"}
        ]

    report = check(edit)
    iam = failures(report, "IAM sufficiency")
    assert any(
        "prod model role" in line
        and "cannot s3:PutObject on arn:aws:s3:::mlops-prod-artifacts-" in line
        and "data-capture" in line
        for line in iam
    )
    assert any(
        "cannot cloudwatch:DescribeAlarms on" in line and "mlops-tabular-prod-Cpu" in line
        for line in iam
    )
    alarms = failures(report, "alarm semantics")
    assert any(
        "mlops-tabular-prod-Errors5xx: fires on 5 5xx errors in each of 5 periods" in line
        for line in alarms
    )
    assert any(
        "mlops-tabular-prod-Cpu: threshold 80% of CPUUtilization, which is summed over 2" in line
        for line in alarms
    )
    names = failures(report, "cross-stage names")
    assert names == [
        "stack mlops-cicd differs between the synths of dev, prod, staging: it depends on "
        "-c stage, so deploying one stage changes the others' copy"
    ]


def test_defect_7_a_metadata_edit_releases_again(check: Callable[..., Report]) -> None:
    """SageMaker's state-change event does not say what changed: without the Plan action's
    gate every edit of an approved version asks for the prod approval again."""

    def edit(d: Deployment) -> None:
        cicd = stack(d, "mlops-cicd", "dev")
        ((_, pipeline),) = cicd.of_type("AWS::CodePipeline::Pipeline")
        for stage in pipeline["Properties"]["Stages"]:
            stage.pop("BeforeEntry", None)
            for action in stage["Actions"]:  # the deploys take whatever is newest
                config = action.get("Configuration", {})
                if "MODEL_PACKAGE_ARN" in config.get("EnvironmentVariables", ""):
                    kept = [
                        v
                        for v in json.loads(config["EnvironmentVariables"])
                        if v["name"] != "MODEL_PACKAGE_ARN"
                    ]
                    config["EnvironmentVariables"] = json.dumps(kept)

    lines = failures(check(edit), "release gate")
    assert len(lines) == 7  # five gated stages, two deploys
    assert (
        "mlops-release stage Prod is not skipped when #{Plan.MLOPS_RELEASE} is not yes: "
        "a metadata edit of the released version would run it again"
    ) in lines
    assert any(
        line.startswith("mlops-release stage Prod deploys without MODEL_PACKAGE_ARN=")
        for line in lines
    )


def test_the_release_pipelines_own_roles_are_simulated(check: Callable[..., Report]) -> None:
    """CodePipeline's role, its action roles, the build's role and the approval rule's role."""

    def edit(d: Deployment) -> None:
        cicd = stack(d, "mlops-cicd", "dev")
        for logical, policy in list(cicd.of_type("AWS::IAM::Policy")):
            roles = json.dumps(policy["Properties"]["Roles"])
            if "PipelineSourceCodePipelineActionRole" in roles or "PipelineEventsRole" in roles:
                del cicd.template["Resources"][logical]

    lines = failures(check(edit), "IAM sufficiency")
    source = [line for line in lines if "release Source/Source action role" in line]
    assert {line.split(" cannot ")[1].split(" on ")[0] for line in source} == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetBucketVersioning",
        "kms:Decrypt",
        "s3:PutObject",
        "kms:GenerateDataKey",
    }
    assert any(
        "approval rule role (EventBridge)" in line
        and "cannot codepipeline:StartPipelineExecution on "
        "arn:aws:codepipeline:us-east-1:123456789012:mlops-release"
        in line
        for line in lines
    )


def test_the_rehearsal_reads_the_project_from_the_context(
    cdk_outs: dict[str, Path], ci_calls: dict[str, list[Any]]
) -> None:
    """cdk.json's project names the stacks the rehearsal expects (here: not what was built)."""
    report = rehearse(cdk_outs, context={"project": "churn"}, ci_calls=ci_calls)
    assert "no stack churn-model-build: the build stage was not synthesized" in failures(
        report, "IAM sufficiency"
    )


def test_defect_8_codebuild_image_and_chromium_disagree(check: Callable[..., Report]) -> None:
    def edit(d: Deployment) -> None:  # back to CodeBuild's Ubuntu standard image
        for s in d.stacks:
            for _, project in s.of_type("AWS::CodeBuild::Project"):
                project["Properties"]["Environment"]["Image"] = "aws/codebuild/standard:7.0"

    (line,) = failures(check(edit), "CI build image")
    assert line.startswith("CodeBuild image aws/codebuild/standard:7.0 is ubuntu: the Makefile")


def test_the_codebuild_image_is_debian_with_the_makefiles_chromium() -> None:
    """Not run in CodeBuild (docs/deploy.md): the stack's image and the Makefile agree."""
    dockerfile = (ROOT / "docker" / "codebuild" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert distribution(base) == "debian"
    makefile = (ROOT / "Makefile").read_text()
    packages = re.findall(r"^CHROM\w+_PACKAGE\s*:=\s*(\S+)", makefile, re.MULTILINE)
    assert packages == ["chromium", "chromium-driver"]  # the browser and its WebDriver
    for package in packages:
        assert re.search(rf"apt-get install[^\n]*(\\\n[^\n]*)*\s{package}\s", dockerfile)


def test_make_rehearse_prints_a_line_per_family_and_fails_on_a_defect(
    cdk_outs: dict[str, Path],
    ci_calls: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import infra.rehearsal.__main__ as entry

    monkeypatch.setattr(entry, "synth_all", lambda _: cdk_outs)
    monkeypatch.setattr(entry, "rehearse", lambda outs: rehearse(outs, ci_calls=ci_calls))
    assert entry.main() == 0
    shown = capsys.readouterr()
    assert len(shown.out.splitlines()) == 7 and "rehearsal passed" in shown.err
    monkeypatch.setattr(
        entry,
        "rehearse",
        lambda outs: rehearse(
            outs, ci_calls=ci_calls, edit=lambda d: drop(d, "mlops-cicd", "SmokeTest")
        ),
    )
    assert entry.main() == 1
    shown = capsys.readouterr()
    assert "FAIL IAM sufficiency: ImplicitlyDenied: CodeBuild role (staging release)" in shown.out
    assert "cannot sagemaker:InvokeEndpoint on" in shown.out and "rehearsal FAILED" in shown.err
