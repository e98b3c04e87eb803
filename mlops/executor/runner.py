"""The local executor: runs a SageMaker pipeline definition's JSON step by step, no AWS, no Docker.

Each job step runs the project image's entry point as a child process with its ``/opt/ml``
tree laid out in the run directory; ``s3://`` URIs map to the local object store; the
registration step writes to the local registry. Step types are dispatched through a table.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import secrets
import sys
import tarfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sagemaker_jobs
from mlops import api_requests
from mlops.errors import ExecutionFailed, MlopsError
from mlops.executor import cache, container
from mlops.executor.container import IMAGE_COMMANDS, opt_ml, sigterm_as_interrupt
from mlops.executor.definition import all_steps, plan, resolve_parameters
from mlops.executor.expressions import Context, ExpressionError
from mlops.executor.outcomes import (
    ExecutionStopped,
    Outcome,
    Reporter,
    SilentReporter,
    StepFailed,
)
from mlops.executor.records import ExecutionRecord, StepRecord, now
from mlops.executor.tuning import run_tuning
from mlops.home import Home
from mlops.registry import ModelRegistry
from mlops.registry.local import LOCAL_ACCOUNT
from mlops.store import LocalObjectStore
from sagemaker_jobs.contract import JobError

# Re-exported: callers import the executor's public names from here.
__all__ = [
    "ExecutionStopped",
    "LocalPipelineExecutor",
    "Outcome",
    "Reporter",
    "StepFailed",
    "plan",
    "resolve_parameters",
]


# The executor --------------------------------------------------------------------------
class LocalPipelineExecutor:
    def __init__(
        self,
        home: Home,
        registry: ModelRegistry,
        *,
        image_uri: str,
        reporter: Reporter | None = None,
        python: str = sys.executable,
        use_cache: bool = True,
    ) -> None:
        self.home = home
        self.store = LocalObjectStore(home.store)
        # Without the cache (--no-cache) every step runs; its results still refresh the cache.
        self.cache = cache.StepCache(home.root / "cache", self.store)
        self.use_cache = use_cache
        self.registry = registry
        self.image_uri = image_uri
        self.reporter = reporter or SilentReporter()
        self.python = python
        self._handlers: dict[str, Callable[[dict[str, Any], Context, Path], Outcome]] = {
            "Processing": self._processing,
            "Training": self._training,
            "Tuning": self._tuning,
            "Condition": self._condition,
            "Fail": self._fail,
            "RegisterModel": self._register_model,
        }

    def run(
        self, definition: dict[str, Any], overrides: dict[str, str], pipeline_name: str = "pipeline"
    ) -> ExecutionRecord:
        """Run one execution to its end and return its record; raise if it failed or stopped.

        The name is given apart, as SageMaker keeps it outside the definition body.
        SIGTERM (a CI cancel, `kill`, `timeout`) stops it the way Ctrl-C does."""
        with sigterm_as_interrupt():
            return self._run(definition, overrides, pipeline_name)

    def _run(
        self, definition: dict[str, Any], overrides: dict[str, str], pipeline_name: str
    ) -> ExecutionRecord:
        ordered, needs = plan(definition)
        for candidate in ordered:
            if candidate["Type"] not in self._handlers:
                raise MlopsError(
                    f"step {candidate['Name']} has type {candidate['Type']}, which the local executor "
                    f"cannot run (it runs {', '.join(self._handlers)})"
                )
        parameters = resolve_parameters(definition, overrides)
        started = datetime.now(UTC)
        execution_id = f"{started:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        record = ExecutionRecord(
            execution_id=execution_id,
            pipeline_name=pipeline_name,
            run_dir=str(self.home.runs / execution_id),
            parameters=parameters,
        )
        record.save()
        context = Context(
            parameters=parameters,
            execution={
                "PipelineExecutionId": execution_id,
                "PipelineName": pipeline_name,
                "PipelineExecutionArn": f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:pipeline/"
                f"{pipeline_name}/execution/{execution_id}",
                "StartDateTime": started.isoformat(),
                "CurrentDateTime": started.isoformat(),
            },
            step_properties={},
            property_files={},
        )
        properties, files = context.step_properties, context.property_files
        skipped: set[str] = set()
        for spec in ordered:
            name = spec["Name"]
            if name in skipped or not needs[name] <= set(properties):
                skipped.add(name)  # a branch not taken, or downstream of one
                continue
            step = StepRecord(name=name, type=spec["Type"])
            step_dir = Path(record.run_dir) / "steps" / name
            step.log_file = str(step_dir / "log.txt")
            record.steps.append(step)
            record.save()
            self.reporter.step_started(step)
            context.execution["CurrentDateTime"] = now()
            try:
                # SageMaker refuses a bad request when the step starts: so does this executor.
                if rejected := api_requests.step_rejection(spec, context):
                    raise StepFailed(name, rejected)
                outcome = self._run_or_reuse(spec, context, step_dir, step)
            except StepFailed as exc:
                step.trials = exc.trials
                step.finish("Failed", exc.reason)
                record.finish("Failed", f"Step {name} failed: {exc.reason}")
                self.reporter.step_finished(step)
                raise ExecutionFailed(str(record.failure_reason), record.run_dir) from exc
            except KeyboardInterrupt as exc:
                step.finish("Stopped", "stopped by the user (Ctrl-C or SIGTERM)")
                record.finish("Stopped", f"stopped by the user during step {name}")
                self.reporter.step_finished(step)
                raise ExecutionStopped(str(record.failure_reason), record.run_dir) from exc
            except (
                Exception
            ) as exc:  # the executor's own fault (disk full, ...): record, then report
                reason = f"{type(exc).__name__}: {exc}"
                step.finish("Failed", reason)
                record.finish("Failed", f"Step {name} failed: {reason}")
                self.reporter.step_finished(step)
                raise ExecutionFailed(str(record.failure_reason), record.run_dir) from exc
            properties[name] = outcome.properties
            files.update(outcome.property_files)
            skipped.update(outcome.skip)
            step.outputs = outcome.outputs
            step.trials = outcome.trials
            step.finish("Succeeded")
            record.save()
            self.reporter.step_finished(step)
        record.finish("Succeeded")
        return record

    def _run_or_reuse(
        self, spec: dict[str, Any], context: Context, step_dir: Path, step: StepRecord
    ) -> Outcome:
        """Run the step's handler, or reuse a cached run; record its lineage either way."""
        handler = self._handlers[spec["Type"]]
        if spec["Type"] not in cache.CACHEABLE_TYPES:  # not a job step: nothing to cache or trace
            return handler(spec, context, step_dir)
        try:
            identity = cache.identify(
                spec,
                self._resolve(spec["Name"], spec.get("Arguments", {}), context),
                pipeline=context.execution["PipelineName"],
                store=self.store,
                code_sha256=self._code_sha256,
            )
        except cache.CacheConfigError as exc:
            raise StepFailed(spec["Name"], str(exc)) from exc
        step.image, step.code_sha256 = identity.image, self._code_sha256
        step.inputs = [asdict(a) for a in identity.inputs]
        hit = self.cache.lookup(identity) if self.use_cache else None
        if hit:
            step.cache_hit, step.cache_note = hit.execution_id, hit.note
            outcome = Outcome(**hit.outcome, property_files=hit.property_files)
        else:
            outcome = handler(spec, context, step_dir)
            self.cache.save(
                identity,
                context.execution["PipelineExecutionId"],
                # every field but the local file paths, so new Outcome fields round-trip too
                {
                    f.name: getattr(outcome, f.name)
                    for f in dataclasses.fields(outcome)
                    if f.name != "property_files"
                },
                outcome.property_files,
            )
        step.output_artifacts = [
            asdict(a) for a in cache.output_artifacts(self.store, outcome.outputs)
        ]
        return outcome

    @functools.cached_property
    def _code_sha256(self) -> str:
        return cache.code_digest(Path(sagemaker_jobs.__file__).resolve().parent)

    # helpers ------------------------------------------------------------------------
    def _resolve(self, name: str, value: Any, context: Context) -> Any:
        try:
            return context.resolve(value)
        except ExpressionError as exc:
            raise StepFailed(name, str(exc)) from exc

    def _check_image(self, name: str, image: str) -> None:
        if image != self.image_uri:
            raise StepFailed(
                name,
                f"image {image!r} is not the project image {self.image_uri!r}; the local "
                "executor runs only the project image's entry points",
            )

    def _command(self, name: str, argv: list[Any]) -> list[str]:
        return container.command(name, argv, self.python)

    def _download(self, name: str, uri: str, destination: Path) -> None:
        try:
            self.store.get(uri, destination)
        except MlopsError as exc:  # NotFound included
            raise StepFailed(name, f"input {uri}: {exc}") from exc

    def _run_container(
        self,
        name: str,
        argv: list[str],
        step_dir: Path,
        env: dict[str, str],
        started: container.Started | None = None,
    ) -> None:
        container.run_container(name, argv, step_dir, env, self.reporter.log_line, started)

    # step types ---------------------------------------------------------------------
    def _processing(self, spec: dict[str, Any], context: Context, step_dir: Path) -> Outcome:
        name = spec["Name"]
        args = self._resolve(name, spec["Arguments"], context)
        app = args["AppSpecification"]
        self._check_image(name, app["ImageUri"])
        paths = opt_ml(step_dir)
        try:
            for item in args.get("ProcessingInputs", []):
                if "S3Input" not in item:
                    raise StepFailed(
                        name,
                        f"input {item['InputName']} is not an S3Input; only S3 inputs run locally",
                    )
                self._download(
                    name, item["S3Input"]["S3Uri"], paths.map(item["S3Input"]["LocalPath"])
                )
            outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
            local_outputs = {
                o["OutputName"]: paths.map(o["S3Output"]["LocalPath"]) for o in outputs
            }
        except JobError as exc:
            raise StepFailed(name, str(exc)) from exc
        for directory in local_outputs.values():
            directory.mkdir(parents=True, exist_ok=True)
        job_name = f"{name.lower()}-{context.execution['PipelineExecutionId']}"
        config = paths.root / "config" / "processingjobconfig.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            json.dumps({"ProcessingJobName": job_name, **args}, indent=2), encoding="utf-8"
        )
        argv = self._command(
            name, [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        )
        self._run_container(name, argv, step_dir, args.get("Environment", {}))
        uploaded = {}
        for output in outputs:
            uri = output["S3Output"]["S3Uri"]
            self.store.put(local_outputs[output["OutputName"]], uri)
            uploaded[output["OutputName"]] = uri
        property_files = {
            (name, pf["PropertyFileName"]): local_outputs[pf["OutputName"]] / pf["FilePath"]
            for pf in spec.get("PropertyFiles", [])
        }
        return Outcome(
            properties={**args, "ProcessingJobName": job_name, "ProcessingJobStatus": "Completed"},
            outputs=uploaded,
            property_files=property_files,
        )

    def _training(self, spec: dict[str, Any], context: Context, step_dir: Path) -> Outcome:
        name = spec["Name"]
        args = self._resolve(name, spec["Arguments"], context)
        job_name = f"{name.lower()}-{context.execution['PipelineExecutionId']}"
        uri = self.run_training_job(name, args, step_dir, job_name)
        return Outcome(
            properties={
                **args,
                "TrainingJobName": job_name,
                "TrainingJobStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": uri},
            },
            outputs={"ModelArtifacts": uri},
        )

    def _tuning(self, spec: dict[str, Any], context: Context, step_dir: Path) -> Outcome:
        args = self._resolve(spec["Name"], spec["Arguments"], context)
        return run_tuning(self, spec["Name"], args, context, step_dir)

    def run_training_job(
        self,
        name: str,
        args: dict[str, Any],
        step_dir: Path,
        job_name: str,
        started: container.Started | None = None,
    ) -> str:
        """Run one training job (CreateTrainingJob arguments) in ``step_dir``; return the
        S3 URI of its model.tar.gz."""
        self._check_image(name, args["AlgorithmSpecification"]["TrainingImage"])
        paths = opt_ml(step_dir)
        config = paths.root / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        hyperparameters = {k: _as_text(v) for k, v in args.get("HyperParameters", {}).items()}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
        channels = args.get("InputDataConfig", [])
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {
                    c["ChannelName"]: {"TrainingInputMode": c.get("InputMode", "File")}
                    for c in channels
                }
            ),
            encoding="utf-8",
        )
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}), encoding="utf-8"
        )
        for channel in channels:
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            self._download(name, uri, paths.channel(channel["ChannelName"], env={}))
        model_dir = paths.model_dir(env={})
        model_dir.mkdir(parents=True, exist_ok=True)
        paths.output_data_dir(env={}).mkdir(parents=True, exist_ok=True)
        argv = [self.python, *IMAGE_COMMANDS["train"]]
        self._run_container(name, argv, step_dir, args.get("Environment", {}), started)
        archive = step_dir / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:  # SageMaker packs /opt/ml/model the same way
            for item in sorted(model_dir.iterdir()):
                tar.add(item, arcname=item.name)
        uri = (
            f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job_name}/output/model.tar.gz"
        )
        self.store.put(archive, uri)
        return uri

    def _condition(self, spec: dict[str, Any], context: Context, step_dir: Path) -> Outcome:
        name = spec["Name"]
        args = spec["Arguments"]
        try:
            outcome = all(context.condition(c) for c in args.get("Conditions", []))
        except ExpressionError as exc:
            raise StepFailed(name, str(exc)) from exc
        not_taken = args.get("ElseSteps" if outcome else "IfSteps", [])
        return Outcome(
            properties={"Outcome": outcome},
            outputs={"Outcome": outcome},
            skip=[s["Name"] for s, _ in all_steps(not_taken)],
        )

    def _fail(self, spec: dict[str, Any], context: Context, step_dir: Path) -> Outcome:
        name = spec["Name"]
        message = self._resolve(name, spec.get("Arguments", {}).get("ErrorMessage", ""), context)
        raise StepFailed(name, str(message) or "the pipeline reached a Fail step")

    def _register_model(self, spec: dict[str, Any], context: Context, step_dir: Path) -> Outcome:
        name = spec["Name"]
        args = self._resolve(name, spec["Arguments"], context)
        inference = args["InferenceSpecification"]
        container = inference["Containers"][0]
        self._check_image(name, container["Image"])
        if not self.store.exists(container["ModelDataUrl"]):
            raise StepFailed(name, f"model data {container['ModelDataUrl']} does not exist")
        statistics = args.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics")
        metrics: dict[str, Any] = {}
        if statistics:
            try:
                metrics = json.loads(
                    self.store.path_for(statistics["S3Uri"]).read_text(encoding="utf-8")
                )
            except (OSError, json.JSONDecodeError) as exc:
                raise StepFailed(name, f"model metrics {statistics['S3Uri']}: {exc}") from exc
        try:
            package = self.registry.create_model_package(
                args["ModelPackageGroupName"],
                model_data_url=container["ModelDataUrl"],
                image_uri=container["Image"],
                approval_status=args.get("ModelApprovalStatus", "PendingManualApproval"),
                metrics=metrics,
                metadata={
                    k: _as_text(v) for k, v in args.get("CustomerMetadataProperties", {}).items()
                },
                content_types=inference.get("SupportedContentTypes", []),
                response_types=inference.get("SupportedResponseMIMETypes", []),
                drift_baseline={
                    kind.lower(): source["S3Uri"]
                    for kind, source in args.get("DriftCheckBaselines", {})
                    .get("ModelDataQuality", {})
                    .items()
                },
            )
        except MlopsError as exc:
            raise StepFailed(name, str(exc)) from exc
        return Outcome(
            properties={"ModelPackageArn": package.arn},
            outputs={"ModelPackageArn": package.arn, "ModelPackageVersion": package.version},
        )


def _as_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)
