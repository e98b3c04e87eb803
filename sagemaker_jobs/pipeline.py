"""The SageMaker Pipeline definition: preprocess -> train -> evaluate -> quality gate -> register.

``build_pipeline(settings)`` is the one builder that CDK deploys and the local executor runs.
It makes no AWS call and uploads no code: every step runs the project image, whose code is
baked in, and account values (image, role, bucket) are inputs. Two builds with the same
settings give byte-identical JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sagemaker_jobs.metric_directions import GATE_CHOICES
from sagemaker_jobs.tuning import TuningSettings, tuning_step

if TYPE_CHECKING:
    from sagemaker.mlops.workflow.pipeline import Pipeline

PROCESSING_ROOT = "/opt/ml/processing"
_ARN_ROLE = re.compile(
    r"^arn:[^/]+:iam::[^/]*:role/[^/].*$"
)  # placeholders like ${AWS::AccountId} pass


class PipelineSettings(BaseModel):
    """Build-time inputs; run-time choices are pipeline parameters instead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline_name: str = Field("mlops-tabular", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
    model_package_group: str = Field("mlops-tabular", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    image_uri: str = Field(min_length=1)
    role_arn: str
    bucket: str = Field(min_length=3)
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    code_version: str = Field("unknown", description="git commit of the code baked into the image")
    default_input_uri: str | None = Field(
        None, pattern=r"^s3://", description="default s3://BUCKET/datasets/demo/penguins.csv"
    )
    default_target: str = "species"
    quality_threshold: float = Field(0.7, ge=0, le=1)
    processing_instance_type: str = Field("ml.m5.large", pattern=r"^ml\.")
    training_instance_type: str = Field("ml.m5.large", pattern=r"^ml\.")
    inference_instance_type: str = Field("ml.m5.large", pattern=r"^ml\.")
    cache_steps: bool = True
    # A VPC (private subnets) makes every job run there with network isolation.
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    # With tuning, the Train step is a hyperparameter tuning job whose best model goes on.
    tuning: TuningSettings | None = None

    @field_validator("role_arn")
    @classmethod
    def _arn_shaped(cls, value: str) -> str:
        # A bare role name makes the SDK call IAM to resolve it; an ARN passes through.
        if not _ARN_ROLE.match(value):
            raise ValueError("must be an IAM role ARN such as arn:aws:iam::123456789012:role/NAME")
        return value

    @property
    def input_uri(self) -> str:
        return self.default_input_uri or f"s3://{self.bucket}/datasets/demo/penguins.csv"

    @property
    def prefix(self) -> str:
        return f"s3://{self.bucket}/pipelines/{self.pipeline_name}"


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """Silence what the SDK says while it builds: one stray print and many notices that say
    job names are filled in at run time. Our CLI prints the definition on stdout."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the SDK sets its own logger levels, so mute globally
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # Every PipelineSession call warns that no job is started: that is the point here.
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        logging.disable(previous)


def _session(settings: PipelineSettings) -> Any:
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    # No sagemaker_config: any config (file or dict) is re-validated on every SDK call and
    # makes a build about 8 times slower.
    session = PipelineSession(
        boto_session=boto3.Session(region_name=settings.region), default_bucket=settings.bucket
    )
    session._default_bucket = settings.bucket  # known bucket: no S3 lookup or creation
    return session


def build_pipeline(settings: PipelineSettings) -> Pipeline:
    """Return the SDK v3 ``Pipeline``; call ``.definition()`` for its JSON."""
    with _quiet_sdk():
        return _build(settings)


def _build(settings: PipelineSettings) -> Pipeline:
    # The SDK creates a boto3 client when these modules are imported, so a region must be set,
    # and it checks roles with IAM unless told not to: neither may need credentials here.
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.region)
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        OutputDataConfig,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.training.configs import Compute, InputData, Networking
    from sagemaker.core.workflow import (
        ConditionGreaterThanOrEqualTo,
        ExecutionVariables,
        Join,
        JsonGet,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
        PropertyFile,
    )
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import (
        CacheConfig,
        ProcessingStep,
        TrainingStep,
        TuningStep,
    )
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import ModelTrainer

    s = settings
    session = _session(s)
    input_uri = ParameterString("InputDataUri", default_value=s.input_uri)
    target = ParameterString("TargetColumn", default_value=s.default_target)
    problem_type = ParameterString(
        "ProblemType", default_value="auto", enum_values=["auto", "classification", "regression"]
    )
    column_types = ParameterString("ColumnTypes", default_value="")
    estimator = ParameterString(
        "Estimator",
        default_value="gradient_boosting",
        enum_values=["gradient_boosting", "random_forest", "linear"],
    )
    # rules | importance:K (sagemaker_jobs.feature_selection); checked before any job runs.
    feature_selection = ParameterString("FeatureSelection", default_value="rules")
    processing_type = ParameterString(
        "ProcessingInstanceType", default_value=s.processing_instance_type
    )
    processing_count = ParameterInteger("ProcessingInstanceCount", default_value=1)
    training_type = ParameterString("TrainingInstanceType", default_value=s.training_instance_type)
    quality_metric = ParameterString(
        "QualityMetric",
        default_value="auto",
        enum_values=list(GATE_CHOICES),
    )
    threshold = ParameterFloat("QualityThreshold", default_value=s.quality_threshold)
    approval = ParameterString(
        "ModelApprovalStatus",
        default_value="PendingManualApproval",
        enum_values=["PendingManualApproval", "Approved", "Rejected"],
    )
    parameters = [
        input_uri,
        target,
        problem_type,
        column_types,
        estimator,
        feature_selection,
        processing_type,
        processing_count,
        training_type,
        quality_metric,
        threshold,
        approval,
    ]
    cache = CacheConfig(enable_caching=s.cache_steps, expire_after="P30D")

    def output_uri(step: str, name: str) -> Join:
        return Join(on="/", values=[s.prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name])

    def processor(module: str) -> Processor:
        return Processor(
            role=s.role_arn,
            image_uri=s.image_uri,
            instance_count=processing_count,
            instance_type=processing_type,
            entrypoint=["python3", "-m", f"sagemaker_jobs.{module}"],
            sagemaker_session=session,
            network_config=NetworkConfig(
                enable_network_isolation=True,
                subnets=list(s.subnets),
                security_group_ids=list(s.security_group_ids),
            )
            if s.subnets
            else None,
        )

    def s3_input(name: str, uri: Any, local: str) -> ProcessingInput:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri, local_path=local, s3_data_type="S3Prefix", s3_input_mode="File"
            ),
        )

    def s3_output(step: str, name: str, local: str) -> ProcessingOutput:
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=output_uri(step, name), local_path=local, s3_upload_mode="EndOfJob"
            ),
        )

    # Uncached on purpose: SageMaker's step cache compares argument values, not the bytes behind
    # InputDataUri, so the data's own hash must become an argument of the cached steps
    # (see sagemaker_jobs/fingerprint.py). It runs in every execution; the rest stay cached
    # while the data is the same.
    fingerprint_file = PropertyFile(
        name="DataFingerprint", output_name="fingerprint", path="fingerprint.json"
    )
    fingerprint = ProcessingStep(
        name="Fingerprint",
        step_args=processor("fingerprint").run(
            inputs=[s3_input("raw", input_uri, f"{PROCESSING_ROOT}/input/raw")],
            outputs=[
                s3_output("fingerprint", "fingerprint", f"{PROCESSING_ROOT}/output/fingerprint")
            ],
        ),
        property_files=[fingerprint_file],
    )
    profile_file = PropertyFile(name="DataProfile", output_name="profile", path="profile.json")
    preprocess = ProcessingStep(
        name="Preprocess",
        step_args=processor("preprocess").run(
            inputs=[s3_input("raw", input_uri, f"{PROCESSING_ROOT}/input/raw")],
            outputs=[
                s3_output("preprocess", name, f"{PROCESSING_ROOT}/output/{name}")
                for name in ("train", "validation", "test", "profile", "baseline")
            ],
            arguments=[
                "--target",
                target,
                "--problem-type",
                problem_type,
                "--column-types",
                column_types,
                "--dataset-sha256",
                JsonGet(
                    step_name=fingerprint.name,
                    property_file=fingerprint_file,
                    json_path="dataset.sha256",
                ),
            ],
        ),
        property_files=[profile_file],
        cache_config=cache,
    )

    def split_uri(name: str) -> Any:
        return preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    trainer = ModelTrainer(
        training_image=s.image_uri,
        role=s.role_arn,
        sagemaker_session=session,
        base_job_name="train",
        compute=Compute(instance_type=training_type, instance_count=1, volume_size_in_gb=30),
        output_data_config=OutputDataConfig(
            s3_output_path=Join(
                on="/", values=[s.prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, "train"]
            )
        ),
        hyperparameters={"estimator": estimator, "feature_selection": feature_selection},
        networking=Networking(
            enable_network_isolation=True,
            subnets=list(s.subnets),
            security_group_ids=list(s.security_group_ids),
        )
        if s.subnets
        else None,
    )
    channels = [
        InputData(channel_name=name, data_source=split_uri(name))
        for name in ("train", "validation")
    ]
    train: TrainingStep | TuningStep
    if s.tuning is None:
        train = TrainingStep(
            name="Train", step_args=trainer.train(input_data_config=channels), cache_config=cache
        )
        model_data = train.properties.ModelArtifacts.S3ModelArtifacts
    else:
        train, model_data = tuning_step(
            s.tuning, trainer, channels, cache, s.bucket, f"pipelines/{s.pipeline_name}/tuning"
        )

    evaluation_file = PropertyFile(
        name="EvaluationReport", output_name="evaluation", path="evaluation.json"
    )
    evaluate = ProcessingStep(
        name="Evaluate",
        step_args=processor("evaluate").run(
            inputs=[
                s3_input("model", model_data, f"{PROCESSING_ROOT}/model"),
                s3_input("test", split_uri("test"), f"{PROCESSING_ROOT}/test"),
                s3_input("profile", split_uri("profile"), f"{PROCESSING_ROOT}/profile"),
            ],
            outputs=[s3_output("evaluate", "evaluation", f"{PROCESSING_ROOT}/evaluation")],
            # Job arguments must be strings: a ParameterFloat goes in through to_string().
            arguments=["--quality-metric", quality_metric, "--threshold", threshold.to_string()],
        ),
        property_files=[evaluation_file],
        cache_config=cache,
    )

    def gate(field: str) -> JsonGet:
        return JsonGet(
            step_name=evaluate.name,
            property_file=evaluation_file,
            json_path=f"quality_gate.{field}",
        )

    evaluation_uri = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
            "evaluation.json",
        ],
    )

    def baseline_uri(name: str) -> Join:
        return Join(on="/", values=[split_uri("baseline"), name])

    register = ModelStep(
        name="RegisterModel",
        step_args=ModelBuilder(
            s3_model_data_url=model_data,
            image_uri=s.image_uri,
            role_arn=s.role_arn,
            sagemaker_session=session,
        ).register(
            model_package_group_name=s.model_package_group,
            content_types=["text/csv", "application/json", "application/jsonlines"],
            response_types=["application/json", "text/csv"],
            inference_instances=[s.inference_instance_type],
            transform_instances=[s.inference_instance_type],
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    s3_uri=evaluation_uri, content_type="application/json"
                )
            ),
            # Model Monitor's baseline of the training data, registered as SageMaker pipelines
            # do: a monitoring schedule (or `mlops monitor drift`) finds it on the package.
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=MetricsSource(
                    s3_uri=baseline_uri("statistics.json"), content_type="application/json"
                ),
                model_data_constraints=MetricsSource(
                    s3_uri=baseline_uri("constraints.json"), content_type="application/json"
                ),
            ),
            approval_status=approval,
            customer_metadata_properties={
                "DatasetSha256": JsonGet(
                    step_name=preprocess.name,
                    property_file=profile_file,
                    json_path="dataset.sha256",
                ),
                "DatasetUri": input_uri,
                "PipelineExecutionId": ExecutionVariables.PIPELINE_EXECUTION_ID,
                "CodeVersion": s.code_version,
            },
        ),
    )
    # The metric is a run-time parameter but a condition's operator is fixed here: Evaluate
    # writes a signed margin (value - threshold, or threshold - value for lower-is-better
    # metrics), so ">= 0" is right for every gate metric, and a message naming the direction.
    gate_failed = FailStep(name="QualityGateFailed", error_message=gate("message"))
    quality_gate = ConditionStep(
        name="QualityGate",
        conditions=[ConditionGreaterThanOrEqualTo(left=gate("margin"), right=0.0)],
        if_steps=[register],
        else_steps=[gate_failed],
    )
    return Pipeline(
        name=s.pipeline_name,
        parameters=parameters,
        steps=[fingerprint, preprocess, train, evaluate, quality_gate],
        sagemaker_session=session,
    )


# A build takes over a second (the SDK's session and step objects) and equal settings give equal
# bytes (tests/sagemaker_jobs/test_pipeline.py), so a process builds each settings once.
_built: dict[str, str] = {}


def definition_json(settings: PipelineSettings, cache: Path | None = None) -> str:
    """The definition as canonical JSON: sorted keys, so equal inputs give equal bytes.

    With ``cache`` (a folder; the local commands pass one in their home), a definition built
    before from the same settings, this package's same code and the same SDK is read from there:
    a build imports the SDK and took about 4 s of every local run."""
    key = settings.model_dump_json()
    if key in _built:
        return _built[key]
    path = cache / f"{_cache_key(key)}.json" if cache is not None else None
    body = _cached_definition(path) if path is not None else None
    if body is None:
        body = render_definition(settings)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            partial.write_text(body, encoding="utf-8")
            partial.replace(path)  # whole or absent, whoever else builds it at the same time
    _built[key] = body
    return body


def _cached_definition(path: Path) -> str | None:
    """The definition cached at ``path``, or None when there is none or it is not one (a file
    truncated or edited by hand is built again and replaced, not handed to the executor)."""
    if not path.is_file():
        return None
    body = path.read_text(encoding="utf-8", errors="replace")
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        return body
    logging.getLogger(__name__).warning("%s is not a pipeline definition: building it again", path)
    return None


def _cache_key(settings_json: str) -> str:
    """What a definition depends on: the settings, the code of this package (the builder and
    the modules it reads) and the SDK's version."""
    from importlib.metadata import version

    digest = hashlib.sha256(settings_json.encode())
    digest.update(version("sagemaker").encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:32]


def render_definition(settings: PipelineSettings) -> str:
    """Build the definition now, uncached (``definition_json`` is the one to call)."""
    pipeline = build_pipeline(settings)
    with _quiet_sdk():
        body = pipeline.definition()
    return json.dumps(json.loads(body), indent=2, sort_keys=True)
