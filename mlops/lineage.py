"""Where a model came from: data -> steps -> model package -> endpoints, locally and in AWS.

The walk starts at a registered version and follows what was recorded, never a guess: the
package's ``PipelineExecutionId`` names the execution; locally its step records hold each
job's image, code hash, inputs and outputs with their sha256 (see ``mlops.executor.cache``);
in AWS ``ListPipelineExecutionSteps`` names the jobs, whose descriptions hold the same, and
S3 gives each object's version id and the sha256 our uploads store in its metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.errors import MlopsError
from mlops.home import Home
from mlops.registry import ModelPackage


@dataclass
class ArtifactRef:
    name: str
    uri: str
    sha256: str | None = None
    version_id: str | None = None  # S3 object version (AWS, versioned buckets)


@dataclass
class StepLineage:
    name: str
    type: str
    status: str
    job: str | None = None  # the job's ARN (AWS)
    image: str | None = None
    code_version: str | None = None  # sha256 of the job code (local) or the image's code version
    cache_hit: str | None = None  # the execution whose results the step reused
    inputs: list[ArtifactRef] = field(default_factory=list)
    outputs: list[ArtifactRef] = field(default_factory=list)


@dataclass
class Lineage:
    package: dict[str, Any]
    data: ArtifactRef
    execution: str
    pipeline_code_version: str
    parameters: dict[str, Any]  # the execution's resolved pipeline parameters
    steps: list[StepLineage]
    endpoints: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The chain as text, data first."""
        version = f", S3 version {self.data.version_id}" if self.data.version_id else ""
        out = [
            f"Data        {self.data.uri}",
            f"            sha256 {self.data.sha256 or '-'}{version}",
            f"Execution   {self.execution}  (code version {self.pipeline_code_version})",
            "Parameters  " + ", ".join(f"{k}={v}" for k, v in self.parameters.items()),
        ]
        for step in self.steps:
            reused = f"  cache hit: reused {step.cache_hit}" if step.cache_hit else ""
            out.append(f"Step        {step.name} ({step.type}, {step.status}){reused}")
            if step.image:
                out.append(f"  image     {step.image}  code {_short(step.code_version)}")
            for label, refs in (("in ", step.inputs), ("out", step.outputs)):
                for ref in refs:
                    out.append(f"  {label}  {ref.name:<10} {ref.uri}  sha256 {_short(ref.sha256)}")
        p = self.package
        out.append(f"Package     {p['group']} version {p['version']} ({p['approval_status']})")
        out.append(f"            {p['arn']}")
        out.append(f"  model     {p['model_data_url']}  sha256 {_short(p.get('model_sha256'))}")
        if not self.endpoints:
            out.append("Endpoints   none serve this version")
        for endpoint in self.endpoints:
            out.append(f"Endpoint    {endpoint['name']} ({endpoint['status']})")
        return out


def _short(sha256: str | None) -> str:
    return sha256[:12] if sha256 else "-"


def _package_summary(package: ModelPackage, model_sha256: str | None) -> dict[str, Any]:
    return {
        "group": package.group,
        "version": package.version,
        "arn": package.arn,
        "approval_status": package.approval_status,
        "created": package.created,
        "model_data_url": package.model_data_url,
        "model_sha256": model_sha256,
        "image": package.image_uri,
    }


def _execution_id(package: ModelPackage) -> str:
    execution = package.metadata.get("PipelineExecutionId")
    if not execution:
        raise MlopsError(
            f"{package.group} version {package.version} has no PipelineExecutionId in its "
            "metadata: it was not registered by the pipeline, so there is no lineage to follow"
        )
    return execution


def _data(package: ModelPackage, steps: list[StepLineage]) -> ArtifactRef:
    """The raw data: the package's DatasetUri, as the step that read it recorded it.

    Without a recorded hash (an S3 prefix, or an object uploaded without our sha256
    metadata) it falls back to DatasetSha256, which the preprocess job computed from the
    bytes it read (the same value for a single file)."""
    uri = package.metadata.get("DatasetUri", "")
    fallback = package.metadata.get("DatasetSha256")
    for step in steps:
        for ref in step.inputs:
            if ref.uri.rstrip("/") == uri.rstrip("/"):
                return ArtifactRef("data", uri, ref.sha256 or fallback, ref.version_id)
    return ArtifactRef("data", uri, fallback)


def _model_sha256(package: ModelPackage, steps: list[StepLineage]) -> str | None:
    for step in steps:
        for ref in step.outputs:
            if ref.uri == package.model_data_url:
                return ref.sha256
    return None


# local ---------------------------------------------------------------------------------
def local_lineage(home: Home, group: str, version: int) -> Lineage:
    from mlops.endpoints import LocalEndpoints
    from mlops.executor.records import find_execution
    from mlops.registry import LocalModelRegistry

    registry = LocalModelRegistry(home.registry)
    package = registry.describe_model_package(group, version)
    record = find_execution(home.runs, _execution_id(package))
    steps = [
        StepLineage(
            name=step.name,
            type=step.type,
            status=step.status,
            image=step.image,
            code_version=step.code_sha256,
            cache_hit=step.cache_hit,
            inputs=[ArtifactRef(**ref) for ref in step.inputs],
            outputs=[ArtifactRef(**ref) for ref in step.output_artifacts],
        )
        for step in record.steps
    ]
    endpoints = [
        {"name": e.name, "status": e.status, "url": e.url}
        for e in LocalEndpoints(home, registry).list()
        if e.model_package_arn == package.arn
    ]
    return Lineage(
        package=_package_summary(package, _model_sha256(package, steps)),
        data=_data(package, steps),
        execution=record.execution_id,
        pipeline_code_version=package.metadata.get("CodeVersion", "unknown"),
        parameters=record.parameters,
        steps=steps,
        endpoints=endpoints,
    )


# AWS -----------------------------------------------------------------------------------
def aws_lineage(aws: Any, group: str, version: int) -> Lineage:
    from mlops.cloud import execution_parameters, raw_execution_steps
    from mlops.registry.sagemaker import SageMakerModelRegistry

    package = SageMakerModelRegistry(aws).describe_model_package(group, version)
    execution = _execution_id(package)
    partition, region, account = package.arn.split(":")[1], *package.arn.split(":")[3:5]
    arn = (
        f"arn:{partition}:sagemaker:{region}:{account}:pipeline/"
        f"{aws.stage.pipeline_name}/execution/{execution}"
    )
    steps = [_cloud_step(aws, step) for step in raw_execution_steps(aws, arn)]
    parameters = execution_parameters(aws, arn)
    code_version = package.metadata.get("CodeVersion", "unknown")
    for step in steps:
        if step.image:
            step.code_version = code_version  # baked into the image the step ran
    return Lineage(
        package=_package_summary(package, _model_sha256(package, steps)),
        data=_data(package, steps),
        execution=execution,
        pipeline_code_version=code_version,
        parameters=parameters,
        steps=steps,
        endpoints=_serving_endpoints(aws, package),
    )


def _cloud_step(aws: Any, step: dict[str, Any]) -> StepLineage:
    from mlops.aws import explained

    metadata = step.get("Metadata", {})
    source = step.get("CacheHitResult", {}).get("SourcePipelineExecutionArn", "")
    lineage = StepLineage(
        name=step["StepName"],
        type=next((k for k in metadata if isinstance(metadata[k], dict)), ""),
        status=step.get("StepStatus", ""),
        cache_hit=source.rsplit("/", 1)[-1] or None,
    )
    sagemaker = aws.client("sagemaker")
    if job := metadata.get("ProcessingJob", {}).get("Arn"):
        with explained("sagemaker:DescribeProcessingJob", job):
            described = sagemaker.describe_processing_job(ProcessingJobName=job.split("/")[-1])
        lineage.type, lineage.job = "Processing", job
        lineage.image = described.get("AppSpecification", {}).get("ImageUri")
        lineage.inputs = [
            _s3_ref(aws, i["InputName"], i["S3Input"]["S3Uri"])
            for i in described.get("ProcessingInputs", [])
            if "S3Input" in i
        ]
        lineage.outputs = [
            _s3_ref(aws, o["OutputName"], o["S3Output"]["S3Uri"])
            for o in described.get("ProcessingOutputConfig", {}).get("Outputs", [])
            if "S3Output" in o
        ]
    elif job := metadata.get("TrainingJob", {}).get("Arn"):
        lineage.type, lineage.job = "Training", job
        _trained(aws, lineage, job.split("/")[-1])
    elif job := metadata.get("TuningJob", {}).get("Arn"):
        # The tuning job's best training job made the model the later steps use.
        with explained("sagemaker:DescribeHyperParameterTuningJob", job):
            tuning = sagemaker.describe_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=job.split("/")[-1]
            )
        lineage.type, lineage.job = "Tuning", job
        if best := tuning.get("BestTrainingJob", {}).get("TrainingJobName"):
            _trained(aws, lineage, best)
    elif package := metadata.get("RegisterModel", {}).get("Arn"):
        lineage.type, lineage.job = "RegisterModel", package
    return lineage


def _trained(aws: Any, lineage: StepLineage, training_job: str) -> None:
    """A training job's image, channels and model artifact."""
    from mlops.aws import explained

    with explained("sagemaker:DescribeTrainingJob", training_job):
        described = aws.client("sagemaker").describe_training_job(TrainingJobName=training_job)
    lineage.image = described.get("AlgorithmSpecification", {}).get("TrainingImage")
    lineage.inputs = [
        _s3_ref(aws, c["ChannelName"], c["DataSource"]["S3DataSource"]["S3Uri"])
        for c in described.get("InputDataConfig", [])
        if "S3DataSource" in c.get("DataSource", {})
    ]
    if model := described.get("ModelArtifacts", {}).get("S3ModelArtifacts"):
        lineage.outputs = [_s3_ref(aws, "model", model)]


def _s3_ref(aws: Any, name: str, uri: str) -> ArtifactRef:
    """An S3 object's sha256 (our uploads keep it in the metadata) and version id; a prefix
    (no object at the URI) has neither."""
    from botocore.exceptions import ClientError

    from mlops.aws import explained, split_s3_uri

    bucket, key = split_s3_uri(uri)
    with explained("s3:HeadObject", uri):
        try:
            head = aws.client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return ArtifactRef(name, uri)  # a prefix, not an object
            raise
    version = head.get("VersionId")
    return ArtifactRef(
        name,
        uri,
        head.get("Metadata", {}).get("sha256"),
        None if version in (None, "null") else version,
    )


def _serving_endpoints(aws: Any, package: ModelPackage) -> list[dict[str, str]]:
    """Endpoints whose config's model is this package (or its model data)."""
    from mlops.aws import explained

    sagemaker = aws.client("sagemaker")
    found: list[dict[str, str]] = []
    with explained("sagemaker:ListEndpoints"):
        endpoints = [
            e
            for page in sagemaker.get_paginator("list_endpoints").paginate()
            for e in page["Endpoints"]
        ]
    for endpoint in endpoints:
        name = endpoint["EndpointName"]
        with explained("sagemaker:DescribeEndpoint", name):
            config_name = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        with explained("sagemaker:DescribeEndpointConfig", config_name):
            config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        for variant in config.get("ProductionVariants", []):
            with explained("sagemaker:DescribeModel", variant["ModelName"]):
                model = sagemaker.describe_model(ModelName=variant["ModelName"])
            containers = [model.get("PrimaryContainer", {}), *model.get("Containers", [])]
            if any(
                c.get("ModelPackageName") == package.arn
                or c.get("ModelDataUrl") == package.model_data_url
                for c in containers
            ):
                found.append(
                    {
                        "name": name,
                        "status": endpoint.get("EndpointStatus", ""),
                        "variant": variant["VariantName"],
                        "model": variant["ModelName"],
                    }
                )
    return found
