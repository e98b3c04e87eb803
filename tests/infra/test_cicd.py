"""The release pipeline stack, and the CI files: YAML that parses and only real make targets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.app import build_app
from mlops.errors import MlopsError

from .conftest import resources

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cicd(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates["mlops-cicd"]


def test_release_goes_plan_build_staging_smoke_approval_prod(cicd: dict[str, Any]) -> None:
    (pipeline,) = resources(cicd, "AWS::CodePipeline::Pipeline")
    stages = [
        (s["Name"], [a["ActionTypeId"]["Provider"] for a in s["Actions"]])
        for s in pipeline["Stages"]
    ]
    assert stages == [
        ("Source", ["S3"]),
        ("Plan", ["CodeBuild"]),
        ("Build", ["CodeBuild"]),
        ("Staging", ["CodeBuild"]),
        ("SmokeTest", ["CodeBuild"]),
        ("Approve", ["Manual"]),
        ("Prod", ["CodeBuild"]),
    ]
    targets = [
        json.loads(a["Configuration"]["EnvironmentVariables"])
        for s in pipeline["Stages"]
        for a in s["Actions"]
        if a["ActionTypeId"]["Provider"] == "CodeBuild"
    ]
    planned = "#{Plan.MODEL_PACKAGE_ARN}"
    assert [{v["name"]: v["value"] for v in t} for t in targets] == [
        {"CI_TARGET": "ci-plan", "STAGE": "prod"},
        {"CI_TARGET": "ci-build", "STAGE": "dev"},
        {"CI_TARGET": "ci-deploy", "STAGE": "staging", "MODEL_PACKAGE_ARN": planned},
        {"CI_TARGET": "ci-smoke", "STAGE": "staging"},
        {"CI_TARGET": "ci-deploy", "STAGE": "prod", "MODEL_PACKAGE_ARN": planned},
    ]
    # Every stage after Plan is skipped unless it found something to release.
    for stage in pipeline["Stages"][2:]:
        ((condition,),) = [stage["BeforeEntry"]["Conditions"]]
        assert condition["Result"] == "SKIP"
        ((rule,),) = [condition["Rules"]]
        assert rule["RuleTypeId"]["Provider"] == "VariableCheck"
        assert rule["Configuration"] == {
            "Variable": "#{Plan.MLOPS_RELEASE}",
            "Operator": "EQ",
            "Value": "yes",
        }


def test_an_approved_model_starts_the_release(cicd: dict[str, Any]) -> None:
    (rule,) = resources(cicd, "AWS::Events::Rule")
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["mlops-tabular"], "ModelApprovalStatus": ["Approved"]},
    }


def test_build_project_runs_the_buildspec_encrypted(cicd: dict[str, Any]) -> None:
    (project,) = resources(cicd, "AWS::CodeBuild::Project")
    assert project["Source"]["BuildSpec"] == "buildspec.yml"
    assert project["Environment"]["PrivilegedMode"] is False and "EncryptionKey" in project


def test_the_release_stack_is_the_same_whatever_the_stage(cdk_outs: dict[str, Path]) -> None:
    texts = {(out / "mlops-cicd.template.json").read_text() for out in cdk_outs.values()}
    assert len(texts) == 1  # no stage tag, no stage setting leaks into it


def test_codestar_source_needs_a_connection(tmp_path: Path) -> None:
    with pytest.raises(MlopsError, match="needs connection_arn and repository"):
        build_app({"cicd": {"source": "codestar"}}, outdir=str(tmp_path))


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([a-z][\w-]*):", makefile, re.MULTILINE)}


def _make_calls(commands: list[str]) -> list[str]:
    return [word for command in commands for word in re.findall(r"\bmake\s+([$\w-]+)", command)]


def test_buildspec_parses_and_runs_only_real_make_targets() -> None:
    spec = yaml.safe_load((ROOT / "buildspec.yml").read_text())
    commands = [c for phase in spec["phases"].values() for c in phase["commands"]]
    calls = _make_calls(commands)
    assert calls == ["install", "$CI_TARGET"]
    ci_targets = set(
        re.findall(r'run\(\s*"\w+",\s*"(ci-[\w-]+)"', (ROOT / "infra/cicd.py").read_text())
    )
    ci_targets.add(spec["env"]["variables"]["CI_TARGET"])
    assert ci_targets == {"ci-plan", "ci-build", "ci-deploy", "ci-smoke"}
    assert ci_targets | {"install"} <= _make_targets()


def test_github_workflow_parses_and_runs_only_real_make_targets() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    steps = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    calls = _make_calls(steps)
    assert calls == ["check", "test", "synth"]
    assert set(calls) <= _make_targets()
