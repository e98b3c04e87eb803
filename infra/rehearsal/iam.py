"""IAM sufficiency: the calls each principal must be able to make, evaluated against the
synthesized policies (identity policies, and bucket and key policies where they apply) by
@cloud-copilot/iam-simulate in one Node process.

Who needs what comes from AWS's "SageMaker roles" page
(https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html): the pipeline's role
creates each step's job and passes the job role; a job's, a model's or a monitoring job's
execution role pulls its image, reads its inputs and writes its outputs (and uses their KMS
keys), writes logs and metrics and, with a VpcConfig, manages network interfaces; the CreateModel
role reads the rollback alarms of a guarded deployment. The requests themselves come from the
deployed definition (mlops.api_requests fills in every step's arguments) and the deploy
templates; the CodeBuild role's from the CLI calls recorded in ci_calls. This list is written
from the page on purpose, not shared with the stacks: it is the specification they are checked
against.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.rehearsal.templates import ACCOUNT, Deployment, Stack

SIMULATOR = Path(__file__).with_name("simulate.mjs")
ROOT = Path(__file__).resolve().parents[2]

# "SageMaker roles": with a VpcConfig, unscoped (Resource "*"). Written here apart from
# infra/foundation.py on purpose: the rehearsal checks what the stacks grant against the docs,
# so it must not read the list it checks.
NETWORK_INTERFACES = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)
IMAGE_PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
# What SageMaker Pipelines does with each job it starts, beyond creating it.
JOB_ACTIONS = {
    "CreateProcessingJob": ("processing-job", ("Describe", "Stop"), "ProcessingJob"),
    "CreateTrainingJob": ("training-job", ("Describe", "Stop"), "TrainingJob"),
    "CreateHyperParameterTuningJob": (
        "hyper-parameter-tuning-job",
        ("Describe", "Stop"),
        "HyperParameterTuningJob",
    ),
}
CDK_ROLES = ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")


@dataclass(frozen=True)
class Need:
    principal: str  # what the role is for, as a reader would say it
    role_arn: str
    action: str
    resource: str
    why: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass
class Policies:
    """Identity policies per role ARN, and resource policies per bucket, key and repository."""

    identity: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)  # bucket name -> policy
    bucket_keys: dict[str, str] = field(default_factory=dict)  # bucket name -> key ARN
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # key ARN -> key policy

    @classmethod
    def of(cls, deployment: Deployment) -> Policies:
        found = cls()
        for stack in deployment.unique_stacks():
            r = deployment.resolve
            for logical, role in stack.of_type("AWS::IAM::Role"):
                arn = deployment.arn(stack, logical)
                inline = role.get("Properties", {}).get("Policies", [])
                found.identity.setdefault(arn, []).extend(
                    r(stack, p["PolicyDocument"]) for p in inline
                )
            for _, policy in stack.of_type("AWS::IAM::Policy"):
                document = r(stack, policy["Properties"]["PolicyDocument"])
                for role_name in r(stack, policy["Properties"].get("Roles", [])):
                    arn = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
                    found.identity.setdefault(arn, []).append(document)
            for _, policy in stack.of_type("AWS::S3::BucketPolicy"):
                props = policy["Properties"]
                found.buckets[r(stack, props["Bucket"])] = r(stack, props["PolicyDocument"])
            for logical, bucket in stack.of_type("AWS::S3::Bucket"):
                rules = (
                    bucket.get("Properties", {})
                    .get("BucketEncryption", {})
                    .get("ServerSideEncryptionConfiguration", [])
                )
                for rule in rules:
                    key = rule.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
                    if key:
                        name = deployment.physical_name(stack, logical)
                        found.bucket_keys[name] = r(stack, key)
            for logical, key in stack.of_type("AWS::KMS::Key"):
                found.keys[deployment.arn(stack, logical)] = r(
                    stack, key["Properties"]["KeyPolicy"]
                )
        return found

    def resource_policy(self, action: str, resource: str) -> dict[str, Any] | None:
        if action.startswith("s3:"):
            return self.buckets.get(resource.removeprefix("arn:aws:s3:::").split("/", 1)[0])
        if action.startswith("kms:"):
            return self.keys.get(resource)
        return None


def simulate(needs: list[Need], policies: Policies) -> list[str]:
    """The simulator's verdict for each need, in order (Allowed, ImplicitlyDenied, ...)."""
    cases = [
        {
            "identityPolicies": [
                {"name": f"policy{i}", "policy": p}
                for i, p in enumerate(policies.identity.get(n.role_arn, []))
            ],
            "resourcePolicy": policies.resource_policy(n.action, n.resource),
            "principal": n.role_arn,
            "action": n.action,
            "resource": n.resource,
            "accountId": ACCOUNT,
            "context": {"aws:SecureTransport": "true", **dict(n.context)},
        }
        for n in needs
    ]
    answer = subprocess.run(
        ["node", str(SIMULATOR)],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        cwd=ROOT,  # node_modules/@cloud-copilot/iam-simulate (`make install`)
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"the IAM simulator failed: {answer.stderr.strip()[-2000:]}")
    return list(json.loads(answer.stdout)["results"])


# What each principal must do --------------------------------------------------------------
def s3_arn(uri: str) -> str:
    return "arn:aws:s3:::" + uri.removeprefix("s3://")


def _object(uri: str) -> str:
    """An object a job reads or writes under ``uri`` (a key itself when it names a file)."""
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    return s3_arn(uri) if "." in last else s3_arn(uri.rstrip("/") + "/part-0")


def _repository(image: str, region: str) -> str:
    """arn of the ECR repository an image URI lives in."""
    host, _, path = image.partition("/")
    account = host.split(".", 1)[0]
    name = path.split("@", 1)[0].rsplit(":", 1)[0]
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


class Requirements:
    def __init__(self, deployment: Deployment, policies: Policies) -> None:
        self.deployment, self.policies = deployment, policies

    def _key_of(self, uri: str) -> str | None:
        return self.policies.bucket_keys.get(uri.removeprefix("s3://").split("/", 1)[0])

    def _read(self, who: str, role: str, uri: str, why: str) -> Iterator[Need]:
        yield Need(who, role, "s3:GetObject", _object(uri), why)
        key = self._key_of(uri)
        if key:
            yield Need(who, role, "kms:Decrypt", key, f"{why} (SSE-KMS)")

    def _write(
        self, who: str, role: str, uri: str, why: str, key: str | None = None
    ) -> Iterator[Need]:
        yield Need(who, role, "s3:PutObject", _object(uri), why)
        key = key or self._key_of(uri)
        if key:
            yield Need(who, role, "kms:GenerateDataKey", key, f"{why} (SSE-KMS)")

    def _runtime(
        self, who: str, role: str, image: str, region: str, logs: str, vpc: bool
    ) -> Iterator[Need]:
        for action in IMAGE_PULL:
            yield Need(who, role, action, _repository(image, region), f"pull {image}")
        yield Need(who, role, "ecr:GetAuthorizationToken", "*", "log in to ECR")
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            yield Need(
                who,
                role,
                action,
                f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/sagemaker/{logs}:log-stream:x",
                "container logs",
            )
        if vpc:
            for action in NETWORK_INTERFACES:
                yield Need(who, role, action, "*", "VpcConfig: network interfaces")

    # The build: pipeline role and job role, from the deployed definition's requests.
    def build(self, stack: Stack, planned: list[Any], group: str) -> Iterator[Need]:
        region = stack.region
        ((_, pipeline),) = stack.of_type("AWS::SageMaker::Pipeline")
        pipeline_role = self.deployment.resolve(stack, pipeline["Properties"]["RoleArn"])
        arn = f"arn:aws:sagemaker:{region}:{ACCOUNT}"
        who = "pipeline role"
        for p in planned:
            request, step = p.request, f"step {p.step}"
            if p.operation in JOB_ACTIONS:
                kind, verbs, noun = JOB_ACTIONS[p.operation]
                name = next(v for k, v in request.items() if k.endswith("JobName"))
                job = f"{arn}:{kind}/{name.lower()}"
                yield Need(who, pipeline_role, f"sagemaker:{p.operation}", job, step)
                for verb in verbs:
                    yield Need(who, pipeline_role, f"sagemaker:{verb}{noun}", job, step)
                if p.operation == "CreateHyperParameterTuningJob":
                    yield Need(
                        who,
                        pipeline_role,
                        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                        job,
                        step,
                    )
                yield from self._job(p, region)
            elif p.operation == "CreateModelPackage":
                yield Need(
                    who,
                    pipeline_role,
                    "sagemaker:CreateModelPackage",
                    f"{arn}:model-package/{group}/1",
                    step,
                )
            definition = request.get("RoleArn") or request.get("TrainingJobDefinition", {}).get(
                "RoleArn"
            )
            if definition:
                yield Need(
                    who,
                    pipeline_role,
                    "iam:PassRole",
                    definition,
                    f"{step}: pass the job role",
                    (("iam:PassedToService", "sagemaker.amazonaws.com"),),
                )

    def _job(self, p: Any, region: str) -> Iterator[Need]:
        request = p.request
        spec = request.get("TrainingJobDefinition", request)
        role = spec["RoleArn"]
        who, step = "job role", f"step {p.step}"
        vpc = bool(spec.get("VpcConfig") or request.get("NetworkConfig", {}).get("VpcConfig"))
        if p.operation == "CreateProcessingJob":
            image, logs = request["AppSpecification"]["ImageUri"], "ProcessingJobs"
            inputs = [i["S3Input"]["S3Uri"] for i in request.get("ProcessingInputs", [])]
            outputs = [o["S3Output"]["S3Uri"] for o in request["ProcessingOutputConfig"]["Outputs"]]
        else:
            image, logs = spec["AlgorithmSpecification"]["TrainingImage"], "TrainingJobs"
            inputs = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in spec["InputDataConfig"]]
            outputs = [spec["OutputDataConfig"]["S3OutputPath"]]
        yield from self._runtime(who, role, image, region, logs, vpc)
        for uri in inputs:
            yield from self._read(who, role, uri, f"{step} reads {uri}")
        for uri in outputs:
            yield from self._write(who, role, uri, f"{step} writes {uri}")

    # A stage's endpoint: the CreateModel role and Model Monitor's role.
    def deploy(self, stack: Stack, promoted: dict[str, Any]) -> Iterator[Need]:
        r, region = self.deployment.resolve, stack.region
        ((_, model),) = stack.of_type("AWS::SageMaker::Model")
        ((_, config),) = stack.of_type("AWS::SageMaker::EndpointConfig")
        ((_, endpoint),) = stack.of_type("AWS::SageMaker::Endpoint")
        props = r(stack, model["Properties"])
        role, who = props["ExecutionRoleArn"], f"{stack.stage} model role (CreateModel)"
        name = r(stack, endpoint["Properties"]["EndpointName"])
        container = promoted["InferenceSpecification"]["Containers"][0]
        yield from self._runtime(
            who, role, container["Image"], region, f"Endpoints/{name}", "VpcConfig" in props
        )
        yield from self._read(who, role, container["ModelDataUrl"], "the promoted model's data")
        deployment = r(stack, endpoint["Properties"]).get("DeploymentConfig", {})
        for alarm in deployment.get("AutoRollbackConfiguration", {}).get("Alarms", []):
            yield Need(
                who,
                role,
                "cloudwatch:DescribeAlarms",
                f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{alarm['AlarmName']}",
                "deployment guardrails watch the rollback alarms",
            )
        capture = r(stack, config["Properties"]).get("DataCaptureConfig")
        if capture:
            yield from self._write(
                who,
                role,
                f"{capture['DestinationS3Uri']}/{name}/AllTraffic/2026/01/01/00/capture.jsonl",
                "data capture (inferred: the CreateModel role, as for TransformOutput)",
                capture.get("KmsKeyId"),
            )
        for _, job in stack.of_type("AWS::SageMaker::DataQualityJobDefinition"):
            yield from self._monitor(stack, r(stack, job["Properties"]), promoted, capture)
        for _, rule in stack.of_type("AWS::Events::Rule"):
            for target in r(stack, rule["Properties"]).get("Targets", []):
                if ":pipeline/" in target["Arn"]:
                    yield Need(
                        f"{stack.stage} retraining rule role (EventBridge)",
                        target["RoleArn"],
                        "sagemaker:StartPipelineExecution",
                        target["Arn"],
                        "the drift alarm starts the build stage's pipeline",
                    )

    def _monitor(
        self, stack: Stack, job: dict[str, Any], promoted: dict[str, Any], capture: Any
    ) -> Iterator[Need]:
        role, who = job["RoleArn"], f"{stack.stage} Model Monitor role"
        vpc = "VpcConfig" in job.get("NetworkConfig", {})
        app = job["DataQualityAppSpecification"]
        yield from self._runtime(who, role, app["ImageUri"], stack.region, "ProcessingJobs", vpc)
        baseline = promoted["DriftCheckBaselines"]["ModelDataQuality"]
        for part in ("Statistics", "Constraints"):
            uri = baseline[part]["S3Uri"]
            yield from self._read(
                who, role, uri, "the baseline `mlops monitor baseline --uri` gives"
            )
        if capture:
            yield from self._read(
                who,
                role,
                f"{capture['DestinationS3Uri']}/x/AllTraffic/2026/01/01/00/c.jsonl",
                "captures",
            )
        output = job["DataQualityJobOutputConfig"]
        for item in output["MonitoringOutputs"]:
            yield from self._write(
                who, role, item["S3Output"]["S3Uri"], "monitoring reports", output.get("KmsKeyId")
            )

    # The release: the CodeBuild role's recorded calls, and `cdk deploy`'s bootstrap roles.
    def release(self, stack: Stack, calls: dict[str, list[Any]], region: str) -> Iterator[Need]:
        from infra.rehearsal.ci_calls import needs

        ((_, project),) = stack.of_type("AWS::CodeBuild::Project")
        role = self.deployment.resolve(stack, project["Properties"]["ServiceRole"])
        for stage, recorded in calls.items():
            who = f"CodeBuild role ({stage} release)"
            for call in recorded:
                for action, resource, context in needs(call, region):
                    yield Need(
                        who,
                        role,
                        action,
                        resource,
                        f"{call.service}.{call.operation} from the CI targets",
                        tuple(context.items()),
                    )
            for cdk_role in CDK_ROLES:
                yield Need(
                    who,
                    role,
                    "sts:AssumeRole",
                    f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-{cdk_role}-{ACCOUNT}-{region}",
                    "cdk deploy acts through the bootstrap roles",
                )

    # The release pipeline's own principals: CodePipeline's role assumes each action's role;
    # the source action reads the source object and writes the artifact; the CodeBuild actions
    # start and watch builds; the project's role reads the artifact, pulls its build image and
    # writes its logs; the approval rule's role starts the pipeline. From CodePipeline's
    # "Manage the CodePipeline service role" (S3: GetObject, GetObjectVersion,
    # GetBucketVersioning; CodeBuild: StartBuild, BatchGetBuilds) and CodeBuild's "Create a
    # CodeBuild service role" (logs, the input artifact, ECR pull of a private image).
    def pipeline(self, stack: Stack) -> Iterator[Need]:
        r, region = self.deployment.resolve, stack.region
        for logical, resource in stack.of_type("AWS::CodePipeline::Pipeline"):
            props = r(stack, resource["Properties"])
            name, role = props["Name"], props["RoleArn"]
            store = props["ArtifactStore"]
            artifacts = f"s3://{store['Location']}/{name}/artifact.zip"
            store_key = store.get("EncryptionKey", {}).get("Id")
            built: set[str] = set()  # projects whose own role is checked (once, not per action)
            for stage in props["Stages"]:
                for action in stage["Actions"]:
                    who = f"release {stage['Name']}/{action['Name']} action role"
                    if "RoleArn" in action:
                        yield Need(
                            "CodePipeline role",
                            role,
                            "sts:AssumeRole",
                            action["RoleArn"],
                            f"run {stage['Name']}/{action['Name']}",
                        )
                    yield from self._action(who, action, artifacts, store_key, region, built)
            arn = self.deployment.arn(stack, logical)
            for _, rule in stack.of_type("AWS::Events::Rule"):
                for target in r(stack, rule["Properties"]).get("Targets", []):
                    if target["Arn"] == arn:
                        yield Need(
                            "approval rule role (EventBridge)",
                            target["RoleArn"],
                            "codepipeline:StartPipelineExecution",
                            arn,
                            "an approved version starts the release",
                        )

    def _action(
        self,
        who: str,
        action: dict[str, Any],
        artifacts: str,
        key: str | None,
        region: str,
        built: set[str],
    ) -> Iterator[Need]:
        kind, config = action["ActionTypeId"], action.get("Configuration", {})
        role = action.get("RoleArn", "")
        if kind["Provider"] == "S3" and kind["Category"] == "Source":
            source = f"s3://{config['S3Bucket']}/{config['S3ObjectKey']}"
            yield from self._read(who, role, source, "read the source zip")
            yield Need(who, role, "s3:GetObjectVersion", s3_arn(source), "read the source zip")
            bucket = s3_arn(f"s3://{config['S3Bucket']}")
            yield Need(who, role, "s3:GetBucketVersioning", bucket, "an S3 source is versioned")
            yield from self._write(who, role, artifacts, "write the source artifact", key)
        elif kind["Provider"] == "CodeStarSourceConnection":
            connection = config["ConnectionArn"]
            yield Need(who, role, "codestar-connections:UseConnection", connection, "the source")
            yield from self._write(who, role, artifacts, "write the source artifact", key)
        elif kind["Provider"] == "CodeBuild":
            stack, logical = self._project(config["ProjectName"])
            project_arn = self.deployment.arn(stack, logical)
            for verb in ("StartBuild", "BatchGetBuilds"):
                yield Need(who, role, f"codebuild:{verb}", project_arn, "run the build")
            if project_arn not in built:
                built.add(project_arn)
                yield from self._build(stack, logical, artifacts, key, region)

    def _project(self, name: str) -> tuple[Stack, str]:
        for stack in self.deployment.unique_stacks():
            for logical, _ in stack.of_type("AWS::CodeBuild::Project"):
                if self.deployment.physical_name(stack, logical) == name:
                    return stack, logical
        raise LookupError(f"no CodeBuild project {name} in the templates")

    def _build(
        self, stack: Stack, logical: str, artifacts: str, key: str | None, region: str
    ) -> Iterator[Need]:
        props = self.deployment.resolve(stack, stack.resources[logical]["Properties"])
        role, name = props["ServiceRole"], self.deployment.physical_name(stack, logical)
        who = "CodeBuild role (its own build)"
        yield Need(who, role, "s3:GetObject", s3_arn(artifacts), "read the input artifact")
        if key:
            yield Need(who, role, "kms:Decrypt", key, "read the input artifact (SSE-KMS)")
        group = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/codebuild/{name}"
        yield Need(who, role, "logs:CreateLogGroup", group, "build logs")
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            yield Need(who, role, action, f"{group}:log-stream:x", "build logs")
        environment = props["Environment"]
        if environment.get("ImagePullCredentialsType") == "SERVICE_ROLE":
            image = environment["Image"]
            for action in IMAGE_PULL:
                yield Need(who, role, action, _repository(image, region), f"pull {image}")
            yield Need(who, role, "ecr:GetAuthorizationToken", "*", "log in to ECR")
