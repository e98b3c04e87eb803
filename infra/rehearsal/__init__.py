"""The deploy rehearsal: every stage synthesized, then checked offline for what AWS needs at run
time and a green synth does not show (docs/deploy.md, "What the rehearsal proves").

- API requests: every request the deployed pipeline sends, validated against botocore's
  service model with patterns, lengths and enums (mlops.api_requests);
- IAM sufficiency: each principal's calls simulated against the synthesized policies;
- names: no physical name created by two stacks across stages;
- feature exclusions and alarm semantics of each stage's endpoint;
- the CI build image against the Makefile's browser install;
- the release gate: one release per approved version, deploying the version it planned.

``python -m infra.rehearsal`` (``make rehearse``) synthesizes and prints one line per family;
tests call ``rehearse`` on the session's synth (tests/infra/conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.rehearsal import checks
from infra.rehearsal.iam import Need, Policies, Requirements, simulate
from infra.rehearsal.templates import Deployment, Stack
from mlops.stages import (
    StageSettings,
    all_stages,
    build_stage,
    load_context,
    names,
    project_name,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Family:
    name: str
    unit: str  # what the count counts
    count: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        verdict = "ok" if not self.failures else f"{len(self.failures)} FAILED"
        return f"{self.name}: {self.count} {self.unit}, {verdict}"


@dataclass
class Report:
    families: list[Family]

    @property
    def ok(self) -> bool:
        return not any(f.failures for f in self.families)

    def lines(self) -> list[str]:
        out = [f.line() for f in self.families]
        out += [f"FAIL {f.name}: {failure}" for f in self.families for failure in f.failures]
        return out

    def family(self, name: str) -> Family:
        (found,) = [f for f in self.families if f.name == name]
        return found


def rehearse(
    outs: dict[str, Path],
    context: dict[str, Any] | None = None,
    ci_calls: dict[str, list[Any]] | None = None,
    edit: Callable[[Deployment], None] | None = None,
) -> Report:
    """Check the synthesized stages in ``outs`` (stage -> cdk.out folder). ``ci_calls`` are the
    CodeBuild role's recorded calls (recorded here when not given); ``edit`` changes the loaded
    templates first (the tests put each known defect back this way)."""
    from infra.cicd import RELEASE_STAGES
    from infra.rehearsal.ci_calls import record_ci_calls

    context = {**load_context(), **(context or {})}
    settings = all_stages(context)
    project = project_name(context)  # cdk.json's, as the stacks were synthesized with
    build = names(project, build_stage(context))
    release = [names(project, s) for s in RELEASE_STAGES]
    deployment = Deployment.load(outs, {s: settings[s].region for s in outs})
    if edit:
        edit(deployment)
        deployment = Deployment(deployment.stacks)  # exports again, from the edited templates
    policies = Policies.of(deployment)

    requests = Family("API requests", "requests validated")
    planned, promoted = _planned(deployment, build.build_stack, build.pipeline, requests)
    requirements = Requirements(deployment, policies)
    needs: list[Need] = []
    build_stacks = [s for s in deployment.unique_stacks() if s.name == build.build_stack]
    for stack in build_stacks:
        needs += requirements.build(stack, planned, build.model_package_group)
    for stack in deployment.unique_stacks():
        if list(stack.of_type("AWS::SageMaker::Endpoint")) and promoted:
            needs += requirements.deploy(stack, promoted)
    region = settings[build.stage].region
    for stack in deployment.unique_stacks():
        if list(stack.of_type("AWS::CodeBuild::Project")):
            if ci_calls is None:
                ci_calls = record_ci_calls(build, release, region)
            needs += requirements.release(stack, ci_calls, region)
        needs += requirements.pipeline(stack)
    iam = Family("IAM sufficiency", "principal x call pairs simulated")
    iam.count = len(needs)
    for need, verdict in zip(needs, simulate(needs, policies), strict=True):
        if verdict != "Allowed":
            context_text = f" with {dict(need.context)}" if need.context else ""
            iam.failures.append(
                f"{verdict}: {need.principal} {need.role_arn.rsplit('/', 1)[-1]} cannot "
                f"{need.action} on {need.resource}{context_text} ({need.why})"
            )
    if not build_stacks:
        iam.failures.append(f"no stack {build.build_stack}: the build stage was not synthesized")

    unique = Family("cross-stage names", "physical names checked")
    unique.count, unique.failures = checks.unique_names(deployment)
    exclusions = Family("feature exclusions", "endpoint rules checked")
    exclusions.count, exclusions.failures = checks.feature_exclusions(deployment)
    alarms = Family("alarm semantics", "rollback alarms checked")
    alarms.count, alarms.failures = checks.alarm_semantics(deployment, settings)
    image = Family("CI build image", "checks")
    image.count, image.failures = checks.build_image(deployment, ROOT)
    gate = Family("release gate", "checks")
    gate.count, gate.failures = checks.release_gate(deployment, ROOT)
    return Report([requests, iam, unique, exclusions, alarms, image, gate])


def _planned(
    deployment: Deployment, build_stack: str, pipeline_name: str, family: Family
) -> tuple[list[Any], dict[str, Any] | None]:
    """The deployed pipeline's requests (filled from the definition's defaults and the stage's
    values), validated; and the model package request, whose image, model data and baseline
    are what the other stages' roles read."""
    from mlops.api_requests import pipeline_requests, validate_request

    planned: list[Any] = []
    for stack in deployment.unique_stacks():
        if stack.name != build_stack:
            continue
        for _, pipeline in stack.of_type("AWS::SageMaker::Pipeline"):
            body = _definition(deployment, stack, pipeline)
            planned = pipeline_requests(body, {}, pipeline_name=pipeline_name)
    for p in planned:
        family.count += 1
        family.failures += [
            f"step {p.step} ({p.operation}): {problem}"
            for problem in validate_request(p.operation, p.request)
        ]
    promoted = next((p.request for p in planned if p.operation == "CreateModelPackage"), None)
    return planned, promoted


def _definition(deployment: Deployment, stack: Stack, pipeline: dict[str, Any]) -> dict[str, Any]:
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    return dict(json.loads(deployment.resolve(stack, body)))


def synth_all(outdir: Path, context: dict[str, Any] | None = None) -> dict[str, Path]:
    """Synthesize every stage in-process (cdk-nag on, CloudFormation validation off)."""
    from infra.app import build_app

    merged = {**load_context(), **(context or {})}
    outs = {}
    for stage in merged["stages"]:
        outs[stage] = outdir / stage
        build_app({**merged, "stage": stage}, outdir=str(outs[stage]), validate=False).synth()
    return outs


__all__ = ["Report", "StageSettings", "rehearse", "synth_all"]
