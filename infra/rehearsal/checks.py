"""The rehearsal's checks that need no simulator: physical names across stages, SageMaker's
documented feature exclusions, what the rollback alarms mean, and the CI build image."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from infra.rehearsal.templates import NAME_PROPERTIES, Deployment
from mlops.stages import StageSettings, vcpus

# Names CloudFormation generates are unique by construction; these types must not be named twice.
UNIQUE_TYPES = {
    kind: prop
    for kind, prop in NAME_PROPERTIES.items()
    if kind not in ("AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Model")
}


def unique_names(deployment: Deployment) -> tuple[int, list[str]]:
    """No physical name is created by two different stacks, across all stages; a stack that
    every stage synthesizes (the release) must be the same template in each."""
    failures: list[str] = []
    by_stack: dict[str, dict[str, str]] = {}  # stack name -> stage -> template text
    for stack in deployment.stacks:
        text = json.dumps(stack.template, sort_keys=True)
        by_stack.setdefault(stack.name, {})[stack.stage] = text
    for name, texts in sorted(by_stack.items()):
        if len(set(texts.values())) > 1:
            failures.append(
                f"stack {name} differs between the synths of {', '.join(sorted(texts))}: it "
                "depends on -c stage, so deploying one stage changes the others' copy"
            )
    owners: dict[tuple[str, str], set[str]] = {}
    for stack in deployment.unique_stacks():
        owners.setdefault(("CloudFormation stack", stack.name), set()).add(stack.name)
        for resource in stack.resources.values():
            prop = UNIQUE_TYPES.get(resource["Type"])
            given = resource.get("Properties", {}).get(prop) if prop else None
            if given is None:
                continue
            name = str(deployment.resolve(stack, given))
            owners.setdefault((resource["Type"], name), set()).add(stack.name)
        for output in stack.template.get("Outputs", {}).values():
            if "Export" in output:
                export = str(deployment.resolve(stack, output["Export"]["Name"]))
                owners.setdefault(("export", export), set()).add(stack.name)
    for (kind, name), stacks in sorted(owners.items()):
        if len(stacks) > 1:
            failures.append(
                f"{kind} {name!r} is created by {len(stacks)} stacks ({', '.join(sorted(stacks))}): "
                "names are unique per account and region, the second deploy fails"
            )
    return len(owners), failures


def feature_exclusions(deployment: Deployment) -> tuple[int, list[str]]:
    """SageMaker's documented exclusions against each endpoint's configuration.

    Serverless (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html,
    "Feature exclusions"): no GPUs (a serverless variant names no instance type), Marketplace packages, private registries, multi-model
    endpoints, VPC configuration, network isolation, data capture, multiple production variants,
    Model Monitor, inference pipelines; and no KMS key on the config. Deployment guardrails
    (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html):
    Marketplace containers and Inf1 instances fall back to all at once; rolling updates exclude
    serverless and multi-variant endpoints. Model Monitor needs data capture. Our own rule on
    top: every endpoint deploys with guardrails (auto-rollback on alarms); a serverless one all
    at once, since no AWS page shows canary or linear traffic shifting on serverless."""
    checked, failures = 0, []
    for stack in deployment.unique_stacks():
        r = deployment.resolve
        models = {
            deployment.physical_name(stack, logical): r(stack, m["Properties"])
            for logical, m in stack.of_type("AWS::SageMaker::Model")
        }
        configs = {
            deployment.physical_name(stack, logical): r(stack, c["Properties"])
            for logical, c in stack.of_type("AWS::SageMaker::EndpointConfig")
        }
        schedules = [
            r(stack, s["Properties"])
            for _, s in stack.of_type("AWS::SageMaker::MonitoringSchedule")
        ]
        for _, resource in stack.of_type("AWS::SageMaker::Endpoint"):
            endpoint = r(stack, resource["Properties"])
            name = endpoint["EndpointName"]
            config = configs[endpoint["EndpointConfigName"]]
            variants = config["ProductionVariants"]
            serverless = any("ServerlessConfig" in v for v in variants)
            variant_models = [models[v["ModelName"]] for v in variants if v["ModelName"] in models]
            monitored = [s for s in schedules if s.get("EndpointName") == name]
            rules: list[tuple[bool, str]] = []
            if serverless:
                rules += [
                    (len(variants) == 1, "serverless: multiple production variants"),
                    ("DataCaptureConfig" not in config, "serverless: data capture"),
                    ("KmsKeyId" not in config, "serverless: a KMS key on the endpoint config"),
                    (not monitored, "serverless: Model Monitor"),
                ]
                for model in variant_models:
                    containers = model.get("Containers") or [model.get("PrimaryContainer", {})]
                    rules += [
                        (not model.get("EnableNetworkIsolation"), "serverless: network isolation"),
                        ("VpcConfig" not in model, "serverless: VPC configuration"),
                        (len(containers) == 1, "serverless: an inference pipeline"),
                        (
                            all(c.get("Mode") != "MultiModel" for c in containers),
                            "serverless: a multi-model endpoint",
                        ),
                        (
                            all(
                                c.get("ImageConfig", {}).get("RepositoryAccessMode") != "Vpc"
                                for c in containers
                            ),
                            "serverless: a private Docker registry",
                        ),
                    ]
            policy = endpoint.get("DeploymentConfig", {})
            blue_green = policy.get("BlueGreenUpdatePolicy", {})
            shifting = blue_green.get("TrafficRoutingConfiguration", {}).get("Type")
            rules += [
                (
                    bool(policy.get("AutoRollbackConfiguration", {}).get("Alarms")),
                    "deployment guardrails: no auto-rollback alarms (every endpoint deploys "
                    "with guardrails)",
                ),
                (
                    not ("RollingUpdatePolicy" in policy and (serverless or len(variants) > 1)),
                    "deployment guardrails: a rolling update on a serverless or multi-variant "
                    "endpoint",
                ),
                (
                    not (serverless and shifting in ("CANARY", "LINEAR")),
                    f"deployment guardrails: {shifting} traffic shifting on serverless (no AWS "
                    "page shows it; use ALL_AT_ONCE with a bake)",
                ),
                (
                    not (
                        policy
                        and any(
                            str(v.get("InstanceType", "")).startswith("ml.inf1") for v in variants
                        )
                    ),
                    "deployment guardrails: Inf1 instances (falls back to all at once)",
                ),
                (
                    not monitored or bool(config.get("DataCaptureConfig", {}).get("EnableCapture")),
                    "Model Monitor: the endpoint captures no data",
                ),
            ]
            checked += len(rules)
            failures += [
                f"endpoint {name} ({stack.name}) uses an excluded feature: {what}"
                for ok, what in rules
                if not ok
            ]
    return checked, failures


def alarm_semantics(
    deployment: Deployment, settings: dict[str, StageSettings]
) -> tuple[int, list[str]]:
    """The rollback alarms mean what their settings say: the 5xx alarm counts errors within 5
    minutes (one 300 s period), not in each of 5 minutes; the CPU alarm's threshold is the
    per-vCPU percent times the vCPUs (CPUUtilization is summed over cores)."""
    checked, failures = 0, []
    for stack in deployment.unique_stacks():
        endpoint = settings.get(stack.stage) and settings[stack.stage].endpoint
        if not endpoint or not list(stack.of_type("AWS::SageMaker::Endpoint")):
            continue
        for _, resource in stack.of_type("AWS::CloudWatch::Alarm"):
            alarm = deployment.resolve(stack, resource["Properties"])
            metric, name = alarm.get("MetricName"), alarm["AlarmName"]
            if metric == "Invocation5XXErrors":
                checked += 1
                window = alarm["Period"] * alarm["EvaluationPeriods"]
                if (alarm["Period"], alarm["EvaluationPeriods"]) != (300, 1) or alarm[
                    "Threshold"
                ] != endpoint.alarm_5xx_per_5_minutes:
                    failures.append(
                        f"alarm {name}: fires on {alarm['Threshold']:g} 5xx errors in each of "
                        f"{alarm['EvaluationPeriods']} periods of {alarm['Period']} s ({window} s), "
                        f"not on alarm_5xx_per_5_minutes={endpoint.alarm_5xx_per_5_minutes} "
                        "within 5 minutes"
                    )
            elif metric == "CPUUtilization" and not endpoint.serverless:
                checked += 1
                cores = vcpus(endpoint.instance_type)
                expected = endpoint.alarm_cpu_percent * cores
                if alarm["Threshold"] != expected:
                    failures.append(
                        f"alarm {name}: threshold {alarm['Threshold']:g}% of CPUUtilization, "
                        f"which is summed over {cores} vCPUs on {endpoint.instance_type} "
                        f"(0-{100 * cores}%): alarm_cpu_percent={endpoint.alarm_cpu_percent} "
                        f"means {expected}"
                    )
    return checked, failures


# The CI build image: the Makefile's `apt-get install <package>` must exist where CodeBuild runs.
DEBIAN = {"debian", "buster", "bullseye", "bookworm", "trixie"}
UBUNTU_IMAGES = re.compile(r"^aws/codebuild/standard:")  # CodeBuild's Ubuntu images
AMAZON_LINUX_IMAGES = re.compile(r"^aws/codebuild/amazonlinux")


def distribution(image_from: str) -> str:
    words = set(re.split(r"[:/@.-]", image_from.lower()))
    if words & DEBIAN:
        return "debian"
    if words & {"ubuntu", "jammy", "noble", "focal"}:
        return "ubuntu"
    if "amazonlinux" in words:
        return "amazon linux"
    return f"unknown ({image_from})"


def build_image(deployment: Deployment, root: Path) -> tuple[int, list[str]]:
    """CodeBuild's image and the Makefile's Chromium install agree: the image is Debian (where
    Debian's package exists; on CodeBuild's Ubuntu images chromium-browser is a snap shim that
    does not run in a container), and it ships that package; buildspec.yml asks for no
    runtime-versions, which CodeBuild supports on its own images only."""
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    package = re.search(r"^CHROMIUM_PACKAGE\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    wanted = package.group(1) if package else "chromium"
    failures, checked = [], 0
    for stack in deployment.unique_stacks():
        for _, project in stack.of_type("AWS::CodeBuild::Project"):
            checked += 3
            image = str(deployment.resolve(stack, project["Properties"]["Environment"]["Image"]))
            dockerfile = _asset_dockerfile(stack.outdir, stack.name, image)
            if dockerfile is None:
                family = (
                    "ubuntu"
                    if UBUNTU_IMAGES.match(image)
                    else "amazon linux"
                    if AMAZON_LINUX_IMAGES.match(image)
                    else f"unknown ({image})"
                )
                installs: set[str] = set()
            else:
                text = dockerfile.read_text(encoding="utf-8")
                froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
                family = distribution(froms[-1]) if froms else "unknown (no FROM)"
                installs = set(re.findall(r"[\w.+-]+", " ".join(_apt_installs(text))))
            if family != "debian":
                failures.append(
                    f"CodeBuild image {image} is {family}: the Makefile installs Debian's "
                    f"'{wanted}' package with apt, which it does not have (Ubuntu's "
                    "chromium-browser is a snap shim that does not run in a container)"
                )
            elif wanted not in installs:
                failures.append(
                    f"CodeBuild image ({dockerfile}) does not install '{wanted}', the package "
                    "the Makefile's browser test needs"
                )
            spec = yaml.safe_load((root / "buildspec.yml").read_text(encoding="utf-8"))
            install = spec.get("phases", {}).get("install", {})
            if dockerfile is not None and "runtime-versions" in install:
                failures.append(
                    "buildspec.yml asks for runtime-versions, which CodeBuild supports only on "
                    "its own images, not on this custom one"
                )
    return checked, failures


def _apt_installs(dockerfile: str) -> Iterator[str]:
    joined = dockerfile.replace("\\\n", " ")
    for line in joined.splitlines():
        for part in line.split("&&"):
            if "apt-get" in part and " install" in part:
                yield " ".join(w for w in part.split() if not w.startswith("-"))


def _asset_dockerfile(outdir: Path, stack: str, image: str) -> Path | None:
    """The Dockerfile of a CDK image asset the template refers to, in cdk.out."""
    manifest = outdir / f"{stack}.assets.json"
    if not manifest.exists():
        return None
    for asset_hash, asset in json.loads(manifest.read_text()).get("dockerImages", {}).items():
        if asset_hash in image:
            directory = outdir / asset["source"]["directory"]
            return directory / asset["source"].get("dockerFile", "Dockerfile")
    return None


def _ci_target(action: dict[str, Any]) -> str:
    variables = json.loads(action.get("Configuration", {}).get("EnvironmentVariables", "[]"))
    return next((v["value"] for v in variables if v["name"] == "CI_TARGET"), "")


def release_gate(deployment: Deployment, root: Path) -> tuple[int, list[str]]:
    """The release runs once per approved version: SageMaker's state-change event fires on any
    change of an approved version (a metadata edit too) without saying what changed, so a Plan
    action decides, every later stage is skipped unless it said to release (CodePipeline's
    entry conditions support SKIP with the VariableCheck rule), and each deploy takes the
    planned version. buildspec.yml must export the variables the conditions read."""
    spec = yaml.safe_load((root / "buildspec.yml").read_text(encoding="utf-8"))
    exported = set(spec.get("env", {}).get("exported-variables", []))
    failures, checked = [], 0
    for stack in deployment.unique_stacks():
        for _, pipeline in stack.of_type("AWS::CodePipeline::Pipeline"):
            name = deployment.resolve(stack, pipeline["Properties"]["Name"])
            stages = pipeline["Properties"]["Stages"]
            plans = [
                (i, a)
                for i, s in enumerate(stages)
                for a in s["Actions"]
                if _ci_target(a) == "ci-plan"
            ]
            checked += 2
            if not plans or "Namespace" not in plans[0][1]:
                failures.append(
                    f"{name} has no Plan action (ci-plan with a variables namespace): every "
                    "state change of an approved version, a metadata edit too, releases it again"
                )
                continue
            missing = {"MLOPS_RELEASE", "MODEL_PACKAGE_ARN"} - exported
            if missing:
                failures.append(
                    f"buildspec.yml does not export {sorted(missing)} (env.exported-variables)"
                )
            index, plan = plans[0]
            release = f"#{{{plan['Namespace']}.MLOPS_RELEASE}}"
            for stage in stages[index + 1 :]:
                checked += 1
                conditions = stage.get("BeforeEntry", {}).get("Conditions", [])
                if not any(
                    c.get("Result") == "SKIP"
                    and any(
                        r["RuleTypeId"]["Provider"] == "VariableCheck"
                        and r["Configuration"]
                        == {"Variable": release, "Operator": "EQ", "Value": "yes"}
                        for r in c.get("Rules", [])
                    )
                    for c in conditions
                ):
                    failures.append(
                        f"{name} stage {stage['Name']} is not skipped when {release} is not yes: "
                        "a metadata edit of the released version would run it again"
                    )
                for action in stage["Actions"]:
                    if _ci_target(action) != "ci-deploy":
                        continue
                    checked += 1
                    config = action["Configuration"]["EnvironmentVariables"]
                    planned = f"#{{{plan['Namespace']}.MODEL_PACKAGE_ARN}}"
                    if planned not in config:
                        failures.append(
                            f"{name} stage {stage['Name']} deploys without MODEL_PACKAGE_ARN="
                            f"{planned}: a version approved while the run waits would reach "
                            "this stage untested"
                        )
    return checked, failures
