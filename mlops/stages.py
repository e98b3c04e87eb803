"""Stage settings from ``cdk.json`` context, validated once into typed objects.

CDK-free on purpose: the CLI reads the same settings as the stacks without loading the CDK
runtime (``infra`` imports this module, never the other way round)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops.errors import MlopsError
from sagemaker_jobs.tuning import TuningSettings

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = ROOT / "cdk.json"


class MonitoringSettings(BaseModel):
    """A Model Monitor data-quality schedule on the endpoint's captured traffic, checked against
    the pipeline's baseline; drift on the listed features raises an alarm that starts retraining."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str = Field(
        "cron(0 * ? * * *)",
        pattern=r"^cron\(.+\)$",
        description="when the job runs; Model Monitor takes hourly or daily cron expressions",
    )
    instance_type: str = Field("ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(1, ge=1, le=10)
    volume_size_gb: int = Field(20, ge=1, le=512)
    max_runtime_minutes: int = Field(
        50, ge=1, le=60, description="an hourly schedule allows at most 60 minutes per run"
    )
    # Model Monitor names header-less CSV columns by position (_c0, _c1, ...), and so does our
    # baseline: the i-th feature's metric is feature_baseline_drift__c<i>, so order matters.
    features: list[str] = Field(
        min_length=1,
        description="the model's feature columns in training order (the baseline's schema.json)",
    )
    drift_threshold: float = Field(
        0.1, gt=0, le=1, description="the baseline distance that fires the alarm (as constraints)"
    )

    @field_validator("features")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a feature twice; give each feature once, in training order")
        return value

    retrain: bool = Field(True, description="the alarm starts the stage's SageMaker pipeline")
    retrain_parameters: dict[str, str] = Field(
        default_factory=dict, description="pipeline parameters for a retraining execution"
    )


class EndpointSettings(BaseModel):
    """The stage's real-time endpoint: an instance variant with guardrails, or serverless."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    serverless: bool = False
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    initial_instance_count: int = Field(1, ge=1, le=100)
    min_capacity: int = Field(1, ge=1, le=100)
    max_capacity: int = Field(2, ge=1, le=100)
    # Sizing rule: a worker handles about 1 / (p50 latency) requests per second; target about
    # half of what one instance sustains in bench/serving.py, times 60, so scaling starts early.
    invocations_per_instance_per_minute: int = Field(6000, ge=1, le=1_000_000)
    serverless_memory_mb: int = Field(2048, ge=1024, le=6144)
    serverless_max_concurrency: int = Field(10, ge=1, le=200)
    data_capture_percent: int = Field(20, ge=0, le=100)
    deployment: Literal["canary", "linear", "all_at_once"] = "canary"
    canary_percent: int = Field(10, ge=1, le=50)
    bake_minutes: int = Field(
        10, ge=0, le=60, description="watch the alarms this long before shifting more traffic"
    )
    alarm_latency_ms: int = Field(
        500, ge=1, description="p99 model latency that rolls a deployment back"
    )
    alarm_5xx_per_5_minutes: int = Field(
        5, ge=1, description="5xx errors within any 5 minutes that roll a deployment back"
    )
    alarm_cpu_percent: int = Field(
        80, ge=1, le=100, description="average CPU per vCPU (the alarm scales it by the vCPUs)"
    )
    alarm_memory_percent: int = Field(80, ge=1, le=100)
    monitoring: MonitoringSettings | None = Field(None, description="no Model Monitor when absent")

    @model_validator(mode="after")
    def _consistent(self) -> EndpointSettings:
        if self.min_capacity > self.max_capacity:
            raise ValueError(
                f"min_capacity {self.min_capacity} is above max_capacity {self.max_capacity}"
            )
        if not self.min_capacity <= self.initial_instance_count <= self.max_capacity:
            raise ValueError("initial_instance_count must be between min_capacity and max_capacity")
        if self.serverless_memory_mb % 1024:
            raise ValueError(
                f"serverless_memory_mb {self.serverless_memory_mb} must be a 1024 MB step (1024 to 6144)"
            )
        if not self.serverless:
            vcpus(self.instance_type)  # an unknown type fails here, saying what to do
        if self.monitoring and (self.serverless or not self.data_capture_percent):
            raise ValueError(
                "monitoring needs captured traffic: an instance endpoint (not serverless) with "
                "data_capture_percent above 0"
            )
        if self.serverless and self.deployment != "all_at_once":
            # Guardrails exclude only rolling updates for serverless, but no AWS page shows
            # canary or linear traffic shifting on one: blue/green all at once, with a bake.
            raise ValueError(
                f"deployment {self.deployment!r} on a serverless endpoint: use all_at_once "
                "(blue/green with a baking period and auto-rollback)"
            )
        return self


DEFAULT_PROJECT = "mlops-tabular"


@dataclass(frozen=True)
class Names:
    """Every physical name of the platform, in one place: the stacks, the CLI and the deploy
    rehearsal all read them here. Names are unique per account and region, so each carries the
    scope its resource exists in (docs/deploy.md, "Topology"):

    - once per account and region: the release (CI/CD) stack and its pipeline;
    - once per project: the model build (pipeline, model package group), in the build stage;
    - once per stage, shared by its projects: the foundation (key, buckets, repository, roles);
    - once per project and stage: the deploy stack, its endpoint and what watches it.

    Account and region are parameters of the names that contain them, so CDK can pass its
    tokens and the CLI and the rehearsal real values."""

    project: str
    stage: str

    # Once per account and region.
    cicd_stack: str = "mlops-cicd"
    release_pipeline: str = "mlops-release"
    cicd_key_alias: str = "alias/mlops-cicd"

    # Once per stage (the foundation stack).
    @property
    def foundation_stack(self) -> str:
        return f"mlops-{self.stage}-foundation"

    @property
    def key_alias(self) -> str:
        return f"alias/mlops-{self.stage}"

    @property
    def key_export(self) -> str:
        """The CloudFormation export of the stage key's ARN: other stages' roles read models
        and baselines built here (same account), and need the key ARN in their policies."""
        return f"mlops-{self.stage}-key-arn"

    def bucket(self, purpose: str, account: str, region: str) -> str:
        """``purpose`` is data, artifacts or access-logs."""
        return f"mlops-{self.stage}-{purpose}-{account}-{region}"

    @property
    def repository(self) -> str:
        return f"mlops-{self.stage}"

    def role(self, purpose: str) -> str:
        """``purpose`` is jobs, pipeline, endpoint or mlflow (SageMaker execution roles)."""
        return f"mlops-{self.stage}-sagemaker-{purpose}"

    @property
    def mlflow_server(self) -> str:
        return f"mlops-{self.stage}"

    @staticmethod
    def cdk_assets_repository(account: str, region: str) -> str:
        """Where `cdk deploy` pushes a DockerImageAsset (the bootstrap stack's repository, default
        qualifier): the project image the pipeline registers with each model lives there."""
        return f"cdk-hnb659fds-container-assets-{account}-{region}"

    # Once per project (built in the build stage).
    @property
    def build_stack(self) -> str:
        return f"{self.project}-model-build"

    @property
    def pipeline(self) -> str:
        return self.project

    @property
    def model_package_group(self) -> str:
        return self.project

    # Once per project and stage.
    @property
    def deploy_stack(self) -> str:
        return f"{self.project}-{self.stage}-model-deploy"

    @property
    def endpoint(self) -> str:
        return f"{self.project}-{self.stage}"

    def alarm(self, purpose: str) -> str:
        return f"{self.endpoint}-{purpose}"

    @property
    def monitoring_schedule(self) -> str:
        return f"{self.endpoint}-data-quality"

    @property
    def monitor_role(self) -> str:
        return f"{self.project}-{self.stage}-monitor"

    def parameter(self, purpose: str) -> str:
        """SSM parameters the deploy stack reads when no context value is given
        (``model-package-arn``, ``baseline-uri``)."""
        return f"/mlops/{self.project}/{self.stage}/{purpose}"


def names(project: str = DEFAULT_PROJECT, stage: str = "dev") -> Names:
    return Names(project, stage)


_PROJECT = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # a model package group's name


def project_name(context: dict[str, Any]) -> str:
    """cdk.json's ``project`` (context): the pipeline's and model package group's name."""
    project = str(context.get("project", DEFAULT_PROJECT))
    if not _PROJECT.fullmatch(project):
        raise MlopsError(
            f"project {project!r} in cdk.json must match {_PROJECT.pattern} (it names the "
            "model package group, the pipeline and the stacks)"
        )
    return project


class MlflowSettings(BaseModel):
    """An optional SageMaker managed MLflow tracking server; it bills by the hour while it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_server: bool = False
    size: Literal["Small", "Medium", "Large"] = "Small"
    mlflow_version: str | None = Field(None, pattern=r"^\d+\.\d+(\.\d+)?$")

    @staticmethod
    def server_name(stage: str) -> str:
        return names(stage=stage).mlflow_server

    def server_arn(self, stage: str, region: str, account: str) -> str:
        """The tracking URI the CLI and the pipeline use (the sagemaker-mlflow plugin signs it)."""
        partition = "aws-cn" if region.startswith("cn-") else "aws"  # China regions differ
        return (
            f"arn:{partition}:sagemaker:{region}:{account}:mlflow-tracking-server/"
            f"{self.server_name(stage)}"
        )


class StageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str | None = Field(None, pattern=r"^\d{12}$")
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    quality_threshold: float = Field(
        0.7, ge=0, le=1, description="the pipeline's quality gate (build stage only)"
    )
    endpoint: EndpointSettings | None = Field(
        None, description="no endpoint in this stage when absent"
    )
    vpc: bool = Field(False, description="jobs and models in private isolated subnets")
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    tuning: TuningSettings | None = Field(
        None,
        description="the Train step as a hyperparameter tuning job (sagemaker_jobs/tuning.py); "
        "build stage only",
    )


# CPUUtilization of an endpoint is summed over its vCPUs (0 to 100 x vCPUs percent), so the CPU
# rollback alarm's threshold is the setting times this count. From the instance types page of
# SageMaker's pricing; add a row when a stage uses another type.
VCPUS = {
    "ml.t2.medium": 2,
    "ml.t2.large": 2,
    "ml.m5.large": 2,
    "ml.m5.xlarge": 4,
    "ml.m5.2xlarge": 8,
    "ml.m5.4xlarge": 16,
    "ml.c5.large": 2,
    "ml.c5.xlarge": 4,
    "ml.c5.2xlarge": 8,
    "ml.c5.4xlarge": 16,
    "ml.r5.large": 2,
    "ml.r5.xlarge": 4,
    "ml.r5.2xlarge": 8,
}


def vcpus(instance_type: str) -> int:
    if instance_type not in VCPUS:
        raise ValueError(
            f"{instance_type} has no vCPU count in mlops/stages.py VCPUS (the CPU alarm needs "
            "it: CPUUtilization is summed over cores); add it or pick one of "
            + ", ".join(sorted(VCPUS))
        )
    return VCPUS[instance_type]


def explain(exc: ValidationError, where: str) -> MlopsError:
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
    )
    return MlopsError(f"{where} in cdk.json: {problems}")


def load_context(path: Path = CDK_JSON) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("context", {}))
    except (OSError, json.JSONDecodeError) as exc:
        raise MlopsError(f"cannot read CDK context from {path}: {exc}") from exc


def stage_settings(context: dict[str, Any]) -> tuple[str, StageSettings]:
    stage = str(context.get("stage", "dev"))
    stages = context.get("stages", {})
    if stage not in stages:
        raise MlopsError(
            f"unknown stage {stage!r}: cdk.json defines {sorted(stages)}; pass -c stage=NAME"
        )
    build = build_stage(context)
    if stage != build:
        misplaced = sorted(BUILD_ONLY & set(stages[stage]))
        if misplaced:
            raise MlopsError(
                f"stage {stage!r} in cdk.json sets {', '.join(misplaced)}, but models are built "
                f"only in the build stage {build!r} (build_stage) and promoted from there: "
                f"move {', '.join(misplaced)} to stages.{build}"
            )
    try:
        return stage, StageSettings.model_validate(stages[stage])
    except ValidationError as exc:
        raise explain(exc, f"stage {stage!r}") from exc


# Settings of the model build, which exists once (in the build stage): elsewhere they would be
# silently ignored, so they are refused.
BUILD_ONLY = frozenset({"quality_threshold", "tuning"})


def build_stage(context: dict[str, Any]) -> str:
    """The stage whose account resources build and register every model (docs/deploy.md)."""
    stage = str(context.get("build_stage", "dev"))
    stages = context.get("stages", {})
    if stage not in stages:
        raise MlopsError(
            f"build_stage {stage!r} in cdk.json is not a stage: pick one of {sorted(stages)}"
        )
    return stage


def all_stages(context: dict[str, Any]) -> dict[str, StageSettings]:
    """Every stage's settings, validated (the release and the rehearsal see all of them)."""
    return {
        name: stage_settings({**context, "stage": name})[1] for name in context.get("stages", {})
    }
