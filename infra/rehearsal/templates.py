"""The synthesized templates of every stage, with CloudFormation's intrinsics resolved the way a
deploy into one account and region would resolve them: physical names from the templates (or
CloudFormation-style generated ones), ARNs, exports across stacks, pseudo parameters.

What cannot be known offline (SSM parameter values, generated suffixes) becomes a stand-in
that keeps the shape of the real value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"  # moto's account: the recorded CLI calls name the same resources
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

# What Ref and Fn::GetAtt("Arn") give for the resource types our stacks create.
_ARN_FORMATS = {
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::ECR::Repository": "arn:aws:ecr:{region}:{account}:repository/{name}",
    "AWS::CodeBuild::Project": "arn:aws:codebuild:{region}:{account}:project/{name}",
    "AWS::CloudWatch::Alarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::CodePipeline::Pipeline": "arn:aws:codepipeline:{region}:{account}:{name}",
    "AWS::SageMaker::Endpoint": "arn:aws:sagemaker:{region}:{account}:endpoint/{lower}",
    "AWS::SageMaker::EndpointConfig": "arn:aws:sagemaker:{region}:{account}:endpoint-config/{lower}",
    "AWS::SageMaker::Model": "arn:aws:sagemaker:{region}:{account}:model/{lower}",
    "AWS::SageMaker::Pipeline": "arn:aws:sagemaker:{region}:{account}:pipeline/{lower}",
    "AWS::SageMaker::DataQualityJobDefinition": (
        "arn:aws:sagemaker:{region}:{account}:data-quality-job-definition/{lower}"
    ),
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
}
# Ref gives the ARN for these types, the name for the others.
_REF_IS_ARN = {
    "AWS::SNS::Topic",
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Model",
    "AWS::SageMaker::DataQualityJobDefinition",
}
# The property that names each resource type, when the template sets it.
NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CodePipeline::Pipeline": "Name",
    "AWS::CodeBuild::Project": "Name",
    "AWS::KMS::Alias": "AliasName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::SageMaker::Pipeline": "PipelineName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::SageMaker::MonitoringSchedule": "MonitoringScheduleName",
    "AWS::SageMaker::MlflowTrackingServer": "TrackingServerName",
    "AWS::SageMaker::DataQualityJobDefinition": "JobDefinitionName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Model": "ModelName",
    "AWS::Events::Rule": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::SNS::Topic": "TopicName",
}


@dataclass
class Stack:
    name: str
    stage: str  # the synth it came from
    region: str
    template: dict[str, Any]
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def of_type(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical, resource in self.resources.items():
            if resource["Type"] == kind:
                yield logical, resource


@dataclass
class Deployment:
    """Every stage's stacks as if deployed into one account: resolves their values."""

    stacks: list[Stack]
    _exports: dict[str, tuple[Stack, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for stack in self.stacks:
            for output in stack.template.get("Outputs", {}).values():
                if "Export" in output:
                    name = self.resolve(stack, output["Export"]["Name"])
                    self._exports[name] = (stack, output["Value"])

    @classmethod
    def load(cls, outs: dict[str, Path], regions: dict[str, str]) -> Deployment:
        stacks = [
            Stack(
                p.name.removesuffix(".template.json"),
                stage,
                regions[stage],
                json.loads(p.read_text(encoding="utf-8")),
                out,
            )
            for stage, out in outs.items()
            for p in sorted(out.glob("*.template.json"))
        ]
        return cls(stacks)

    def unique_stacks(self) -> list[Stack]:
        """One of each stack name (a stage-independent stack appears in every synth)."""
        seen: dict[str, Stack] = {}
        for stack in self.stacks:
            seen.setdefault(stack.name, stack)
        return list(seen.values())

    # Resolution --------------------------------------------------------------------------
    def physical_name(self, stack: Stack, logical: str) -> str:
        resource = stack.resources[logical]
        prop = NAME_PROPERTIES.get(resource["Type"])
        given = resource.get("Properties", {}).get(prop) if prop else None
        if given is not None:
            return str(self.resolve(stack, given))
        if resource["Type"] == "AWS::KMS::Key":  # a key id, as KMS makes one up
            return f"key-{stack.name}-{logical}".lower()
        # CloudFormation's generated names: stack name, logical id, a random suffix.
        return f"{stack.name}-{logical}-generated"[:63]

    def arn(self, stack: Stack, logical: str) -> str:
        kind = stack.resources[logical]["Type"]
        name = self.physical_name(stack, logical)
        pattern = _ARN_FORMATS.get(kind, "arn:aws:cloudformation:{region}:{account}:{name}")
        return pattern.format(account=ACCOUNT, region=stack.region, name=name, lower=name.lower())

    def resolve(self, stack: Stack, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(stack, v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self._ref(stack, str(arg))
        if key == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self._get_att(stack, logical, attribute)
        if key == "Fn::Join":
            separator, parts = arg
            return str(separator).join(str(self.resolve(stack, p)) for p in parts)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return self._sub(stack, text, variables)
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(stack, items)[int(self.resolve(stack, index))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self.resolve(stack, text)).split(separator)
        if key == "Fn::ImportValue":
            name = self.resolve(stack, arg)
            if name not in self._exports:
                raise KeyError(f"{stack.name} imports {name!r}, which no stack exports")
            exporter, exported = self._exports[name]
            return self.resolve(exporter, exported)
        if key == "Fn::GetAZs":
            return [f"{stack.region}a", f"{stack.region}b"]
        if key == "Fn::If":
            return self.resolve(stack, arg[1])  # our templates have no conditions that matter
        return {k: self.resolve(stack, v) for k, v in value.items()}

    def _ref(self, stack: Stack, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": stack.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": stack.name,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        parameters = stack.template.get("Parameters", {})
        if name in parameters:  # an SSM parameter: a stand-in named after it
            return f"{{resolve:ssm:{parameters[name].get('Default', name)}}}"
        kind = stack.resources[name]["Type"]
        return self.arn(stack, name) if kind in _REF_IS_ARN else self.physical_name(stack, name)

    def _get_att(self, stack: Stack, logical: str, attribute: str) -> Any:
        if attribute in ("Arn", "JobDefinitionArn", "EndpointArn", "PipelineArn"):
            return self.arn(stack, logical)
        if attribute.endswith("Name"):
            return self.physical_name(stack, logical)
        return f"{logical}.{attribute}"

    def _sub(self, stack: Stack, text: str, variables: dict[str, Any]) -> str:
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name.startswith("!"):  # ${!Literal}
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(self.resolve(stack, variables[name])))
            elif "." in name:
                logical, attribute = name.split(".", 1)
                out.append(str(self._get_att(stack, logical, attribute)))
            else:
                out.append(str(self._ref(stack, name)))
        out.append(rest)
        return "".join(out)
