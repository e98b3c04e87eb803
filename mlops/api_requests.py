"""The SageMaker requests a pipeline definition will send, and their validation against
botocore's service model, including what botocore's own validator skips.

``pipeline_requests(definition, parameters)`` evaluates every job step's ``Arguments`` with the
local executor's expression evaluator (parameters, ``Get``, ``Std:Join``, ``Std:JsonGet``) and
plausible stand-ins for what only exists at run time (job names, execution id, property files).
``validate_request(operation, request)`` checks a request against the model's shapes: required
and unknown fields, types, and also string patterns, lengths, list and map sizes, enums and
numeric ranges, which botocore's ``ParamValidator`` leaves to the service. So a request that
SageMaker would reject after the paid steps before it fails here, before anything runs.

Some SageMaker patterns use ``\\p{L}`` and other Unicode classes that Python's ``re`` rejects;
the ``regex`` package reads them. Patterns match the whole value, as the service applies them.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import regex

from mlops.errors import MlopsError
from mlops.executor.definition import plan, resolve_parameters
from mlops.executor.expressions import Context, ExpressionError

# Which request each step type sends (steps of the other known types send none).
OPERATIONS = {
    "Processing": "CreateProcessingJob",
    "Training": "CreateTrainingJob",
    "Tuning": "CreateHyperParameterTuningJob",
    "Transform": "CreateTransformJob",
    "Model": "CreateModel",
    "RegisterModel": "CreateModelPackage",
}
NO_REQUEST = frozenset({"Condition", "Fail"})
# The field that names the job: SageMaker Pipelines fills it in, so the definition lacks it.
_NAME_FIELDS = {
    "CreateProcessingJob": "ProcessingJobName",
    "CreateTrainingJob": "TrainingJobName",
    "CreateHyperParameterTuningJob": "HyperParameterTuningJobName",
    "CreateTransformJob": "TransformJobName",
    "CreateModel": "ModelName",
}
# Stand-ins for run-time values, shaped like the real ones (lengths, characters).
PLANNED_EXECUTION_ID = "p1a2n3n4e5d6"  # SageMaker's ids are 12 lowercase letters and digits
PLANNED_ACCOUNT = "123456789012"
PLANNED_REGION = "us-east-1"
_SHOWN = 60  # characters of a value a problem line shows


class RequestError(MlopsError):
    """A step's request would be rejected by SageMaker."""


@dataclass(frozen=True)
class PlannedRequest:
    step: str
    operation: str
    request: dict[str, Any]


# Planning -------------------------------------------------------------------------------
class _PlanningContext(Context):
    """The executor's evaluator, with property files answered by stand-ins: no job has run."""

    def json_get(self, spec: Mapping[str, Any]) -> Any:
        reference = self.resolve(spec.get("PropertyFile"))
        path = self.resolve(spec["Path"])
        if not isinstance(reference, dict) or "PropertyFile" not in reference:
            return super().json_get(spec)  # let the evaluator name the mistake
        step, name = reference["PropertyFile"]
        # A sha256-shaped text: what our jobs' property files hold (hashes, metric names,
        # numbers) fits in it, and it is as long as the longest of them.
        return hashlib.sha256(f"{step}/{name}/{path}".encode()).hexdigest()


def pipeline_requests(
    definition: dict[str, Any],
    parameters: Mapping[str, object],
    *,
    pipeline_name: str = "pipeline",
) -> list[PlannedRequest]:
    """Every request the pipeline's steps send to SageMaker, in run order, both branches of
    each condition included. ``parameters`` override the definition's defaults."""
    values = resolve_parameters(definition, {k: _parameter_text(v) for k, v in parameters.items()})
    arn = f"arn:aws:sagemaker:{PLANNED_REGION}:{PLANNED_ACCOUNT}:pipeline/{pipeline_name}"
    context = _PlanningContext(
        parameters=values,
        execution={
            "PipelineExecutionId": PLANNED_EXECUTION_ID,
            "PipelineName": pipeline_name,
            "PipelineExecutionArn": f"{arn}/execution/{PLANNED_EXECUTION_ID}",
            "StartDateTime": "2026-01-01T00:00:00+00:00",
            "CurrentDateTime": "2026-01-01T00:00:00+00:00",
        },
        step_properties={},
        property_files={},
    )
    ordered, _ = plan(definition)
    planned: list[PlannedRequest] = []
    for spec in ordered:
        request = step_request(spec, context)
        if request is not None:
            planned.append(request)
        context.step_properties[spec["Name"]] = _planned_properties(spec, request)
    return planned


def step_request(spec: dict[str, Any], context: Context) -> PlannedRequest | None:
    """The request ``spec`` sends, with its expressions evaluated in ``context`` (the local
    executor's own at run time); None for a step that sends none (Condition, Fail)."""
    kind, name = spec["Type"], spec["Name"]
    if kind in NO_REQUEST:
        return None
    operation = OPERATIONS.get(kind)
    if operation is None:
        raise RequestError(
            f"step {name} has type {kind}, whose SageMaker request is not known here "
            f"(known: {', '.join(OPERATIONS)})"
        )
    request = dict(context.resolve(spec.get("Arguments", {})))
    field = _NAME_FIELDS.get(operation)
    if field and field not in request:
        request[field] = _job_name(name, str(context.execution["PipelineExecutionId"]), operation)
    return PlannedRequest(name, operation, request)


def step_rejection(spec: dict[str, Any], context: Context) -> str | None:
    """Why SageMaker would reject the request ``spec`` is about to send, or None (the local
    executor asks before each step). An expression that cannot be evaluated yet is left to the
    step itself to report."""
    try:
        planned = step_request(spec, context)
    except ExpressionError:
        return None
    problems = validate_request(planned.operation, planned.request) if planned else []
    if not problems:
        return None
    assert planned is not None
    return f"SageMaker would reject its {planned.operation} request: " + "; ".join(problems)


def _job_name(step: str, execution_id: str, operation: str) -> str:
    # Tuning job names are limited to 32 characters, the others to 63.
    limit = 32 if operation == "CreateHyperParameterTuningJob" else 63
    base = f"{step.lower()}-{regex.sub('[^a-z0-9]+', '-', execution_id.lower())}".strip("-")
    return base[:limit].rstrip("-")


def _planned_properties(spec: dict[str, Any], planned: PlannedRequest | None) -> dict[str, Any]:
    """What DescribeXxx would answer once the step succeeded, as far as steps downstream read it."""
    if spec["Type"] == "Condition":
        return {"Outcome": True}
    if planned is None:
        return {}
    request, name = planned.request, planned.request.get(_NAME_FIELDS.get(planned.operation, ""))
    arn = f"arn:aws:sagemaker:{PLANNED_REGION}:{PLANNED_ACCOUNT}"
    if planned.operation == "CreateProcessingJob":
        return {**request, "ProcessingJobArn": f"{arn}:processing-job/{name}"}
    if planned.operation == "CreateTrainingJob":
        output = str(request.get("OutputDataConfig", {}).get("S3OutputPath", "")).rstrip("/")
        return {
            **request,
            "TrainingJobArn": f"{arn}:training-job/{name}",
            "ModelArtifacts": {"S3ModelArtifacts": f"{output}/{name}/output/model.tar.gz"},
        }
    if planned.operation == "CreateHyperParameterTuningJob":
        best = {"TrainingJobName": f"{name}-001-0a1b2c3d"}  # SageMaker's trial names
        return {
            **request,
            "HyperParameterTuningJobArn": f"{arn}:hyper-parameter-tuning-job/{name}",
            "BestTrainingJob": best,
            "TrainingJobSummaries": [best],
        }
    if planned.operation == "CreateModelPackage":
        group = request.get("ModelPackageGroupName", "group")
        return {"ModelPackageArn": f"{arn}:model-package/{group}/1"}
    if planned.operation == "CreateModel":
        return {**request, "ModelArn": f"{arn}:model/{name}"}
    return dict(request)


def _parameter_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# Validation -----------------------------------------------------------------------------
@functools.cache
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def validate_request(operation: str, request: dict[str, Any]) -> list[str]:
    """Every way ``request`` breaks the SageMaker service model's rules for ``operation``:
    one line per problem naming the field path, the value (shortened), the rule and the fix."""
    from botocore.model import OperationNotFoundError

    try:
        shape = _service_model().operation_model(operation).input_shape
    except OperationNotFoundError as exc:
        raise RequestError(f"SageMaker has no operation {operation!r}") from exc
    return list(_check(shape, request, ""))


def check_requests(planned: list[PlannedRequest]) -> list[str]:
    """Validate each planned request; each problem line starts with its step and operation."""
    return [
        f"step {p.step} ({p.operation}): {problem}"
        for p in planned
        for problem in validate_request(p.operation, p.request)
    ]


def check_pipeline(
    definition: dict[str, Any], overrides: Mapping[str, object], pipeline_name: str = "pipeline"
) -> int:
    """Raise before anything runs if SageMaker would reject any request of an execution with
    these parameters (``pipeline run`` and ``pipeline start`` ask); return how many requests
    were checked."""
    planned = pipeline_requests(definition, overrides, pipeline_name=pipeline_name)
    if problems := check_requests(planned):
        raise rejection(problems, overrides)
    return len(planned)


def rejection(problems: list[str], given: Mapping[str, object] = {}) -> RequestError:
    """One error for all problems; a problem whose value holds a given parameter's value says
    which parameter to change."""
    lines = []
    for problem in problems:
        sources = [
            name
            for name, value in given.items()
            if len(text := _parameter_text(value)) >= 3 and text[:40] in problem
        ]
        lines.append(problem + (f" (from parameter {', '.join(sources)})" if sources else ""))
    count = len(lines)
    return RequestError(
        f"SageMaker would reject {count} request field{'s' if count > 1 else ''} of this "
        "execution, so nothing was started:\n  "
        + "\n  ".join(lines)
        + "\nChange the parameter (or rename the data file) and run again."
    )


def _check(shape: Any, value: Any, path: str) -> Iterator[str]:
    kind = shape.type_name
    checker = _CHECKERS.get(kind)
    if checker is None:  # timestamps, blobs, documents: nothing the jobs here send
        return
    yield from checker(shape, value, path)


def _structure(shape: Any, value: Any, path: str) -> Iterator[str]:
    where = path or "the request"
    if not isinstance(value, dict):
        yield f"{where}: {_show(value)} is not a structure; give an object with fields " + (
            ", ".join(shape.members) or "(none)"
        )
        return
    for name in shape.required_members:
        if name not in value:
            yield f"{_join(path, name)}: missing; it is required, add it"
    for name, inner in value.items():
        if name not in shape.members:
            yield (
                f"{_join(path, name)}: not a field of {shape.name}; remove it or use one of "
                f"{', '.join(sorted(shape.members))}"
            )
            continue
        if inner is None:
            continue  # boto3 refuses None too, but the SDK writes it for unset optional fields
        yield from _check(shape.members[name], inner, _join(path, name))


def _list(shape: Any, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, list):
        yield f"{path}: {_show(value)} is not a list; give a list"
        return
    yield from _size(shape, len(value), path, "items", "list")
    for index, item in enumerate(value):
        yield from _check(shape.member, item, f"{path}[{index}]")


def _map(shape: Any, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{path}: {_show(value)} is not a map; give an object of names to values"
        return
    yield from _size(shape, len(value), path, "entries", "map")
    for key, item in value.items():
        where = f"{path}[{key!r}]"
        yield from (f"{p} (the key)" for p in _check(shape.key, key, where))
        yield from _check(shape.value, item, where)


def _size(shape: Any, count: int, path: str, unit: str, what: str) -> Iterator[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and count < low:
        yield f"{path}: {count} {unit}, fewer than {low}; give at least {low}"
    if high is not None and count > high:
        yield f"{path}: {count} {unit}, more than {high}; this {what} takes at most {high}"


def _string(shape: Any, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, str):
        yield f"{path}: {_show(value)} is not a string; give it as text"
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        yield (
            f"{path}: {_show(value)} has {len(value)} characters, fewer than {low}; "
            + ("give a non-empty value" if low == 1 else f"give at least {low} characters")
        )
    if high is not None and len(value) > high:
        yield (
            f"{path}: {_show(value)} has {len(value)} characters, more than {high}; "
            f"shorten it to at most {high}"
        )
    if shape.enum and value not in shape.enum:
        yield f"{path}: {_show(value)} is not one of {shape.enum}; use one of them"
    pattern = shape.metadata.get("pattern")
    if pattern and value and not _compiled(pattern).fullmatch(value):
        yield f"{path}: {_show(value)} does not match the pattern {pattern}; {_fix(pattern, value)}"


def _number(shape: Any, value: Any, path: str) -> Iterator[str]:
    integral = shape.type_name in ("integer", "long")
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integral and not isinstance(value, int))
    ):
        yield f"{path}: {_show(value)} is not {'an integer' if integral else 'a number'}"
        return
    if not math.isfinite(value):
        yield f"{path}: {value} is not a finite number"
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        yield f"{path}: {value} is outside {low} to {high}; give a value in that range"


def _boolean(shape: Any, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, bool):
        yield f"{path}: {_show(value)} is not a boolean; give true or false"


def _timestamp(shape: Any, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, (datetime, str, int, float)):
        yield f"{path}: {_show(value)} is not a timestamp"


_CHECKERS = {
    "structure": _structure,
    "list": _list,
    "map": _map,
    "string": _string,
    "integer": _number,
    "long": _number,
    "float": _number,
    "double": _number,
    "boolean": _boolean,
    "timestamp": _timestamp,
}

# The model writes characters beyond the BMP as Java's UTF-16 surrogate pairs.
_SURROGATE_RANGE = r"\uD800\uDC00-\uDBFF\uDFFF"


@functools.cache
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern.replace(_SURROGATE_RANGE, r"\U00010000-\U0010FFFF"))


def _fix(pattern: str, value: str) -> str:
    """What to change: the characters the pattern refuses, when it is a class of characters
    (a pattern a single character can match); else the pattern is the rule."""
    compiled = _compiled(pattern)
    if not compiled.fullmatch("a") and not compiled.fullmatch("0"):
        return "change it to match"
    refused = sorted({c for c in value if not compiled.fullmatch(c)})
    if not refused:
        return "change it to match"
    shown = " ".join(repr(c) for c in refused)
    return f"remove or replace the characters {shown}"


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters"
    return f"{text[: _SHOWN - 3]}... ({size})"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
