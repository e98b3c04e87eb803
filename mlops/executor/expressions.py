"""Evaluate the expressions of a pipeline definition: ``Get``, ``Std:Join``, ``Std:JsonGet``
and the condition operators the SDK emits. Anything else is an error naming it."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class ExpressionError(MlopsError):
    pass


def split_path(path: str) -> list[str | int]:
    """``Outputs['train'].S3Output.S3Uri`` -> ``["Outputs", "train", "S3Output", "S3Uri"]``."""
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match or match.end() == position:
            raise ExpressionError(f"cannot parse property path {path!r} at {path[position:]!r}")
        name, index, key1, key2 = match.groups()
        parts.append(int(index) if index is not None else (name or key1 or key2 or ""))
        position = match.end()
    return parts


def walk(value: Any, parts: list[str | int], what: str) -> Any:
    for part in parts:
        if isinstance(value, list) and isinstance(part, str):
            # SageMaker indexes lists of named things by name: Outputs['train'], Channels[...]
            named = [v for v in value if isinstance(v, dict) and part in _names(v)]
            if not named:
                raise ExpressionError(f"{what}: no item named {part!r}")
            value = named[0]
        elif isinstance(value, list) and isinstance(part, int):
            if part >= len(value):
                raise ExpressionError(f"{what}: index {part} out of range")
            value = value[part]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise ExpressionError(f"{what}: no field {part!r}")
    return value


def _names(item: dict[str, Any]) -> set[Any]:
    return {v for k, v in item.items() if k.endswith("Name")}


class Context:
    """What an expression can see while an execution runs."""

    def __init__(
        self,
        parameters: Mapping[str, Any],
        execution: dict[str, Any],
        step_properties: dict[str, dict[str, Any]],
        property_files: dict[tuple[str, str], Path],
    ) -> None:
        self.parameters = parameters
        self.execution = execution
        self.step_properties = step_properties
        self.property_files = property_files

    def get(self, reference: str) -> Any:
        scope, _, rest = reference.partition(".")
        if scope == "Parameters":
            if rest not in self.parameters:
                raise ExpressionError(f"unknown parameter {rest!r}")
            return self.parameters[rest]
        if scope == "Execution":
            if rest not in self.execution:
                raise ExpressionError(f"execution variable {rest!r} is not supported locally")
            return self.execution[rest]
        if scope == "Steps":
            step, _, path = rest.partition(".")
            if step not in self.step_properties:
                raise ExpressionError(f"step {step!r} has not run, so {reference} has no value")
            if path.startswith("PropertyFiles."):
                return {"PropertyFile": (step, path.removeprefix("PropertyFiles."))}
            return walk(self.step_properties[step], split_path(path), reference)
        raise ExpressionError(f"cannot resolve {{'Get': {reference!r}}}")

    def json_get(self, spec: Mapping[str, Any]) -> Any:
        reference = self.resolve(spec.get("PropertyFile"))
        if not isinstance(reference, dict) or "PropertyFile" not in reference:
            raise ExpressionError(f"Std:JsonGet needs a step property file, got {reference!r}")
        key = reference["PropertyFile"]
        if key not in self.property_files:
            raise ExpressionError(f"step {key[0]!r} declared no property file {key[1]!r}")
        path = self.property_files[key]
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ExpressionError(f"property file {key[1]} ({path}) is unreadable: {exc}") from exc
        json_path = self.resolve(spec["Path"])
        return walk(document, split_path(json_path), f"{key[1]} path {json_path!r}")

    def resolve(self, value: Any) -> Any:
        """Resolve every expression inside ``value`` (dicts and lists recursively)."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, inner), *_ = value.items()
            if key == "Get":
                return self.get(inner)
            if key == "Std:Join":
                parts = self.resolve(inner["Values"])
                return str(inner.get("On", "")).join(_text(p) for p in parts)
            if key == "Std:JsonGet":
                return self.json_get(inner)
            if key.startswith("Std:"):
                raise ExpressionError(f"function {key} is not supported by the local executor")
        return {k: self.resolve(v) for k, v in value.items()}

    # Conditions -----------------------------------------------------------------------
    def condition(self, spec: Mapping[str, Any]) -> bool:
        kind = spec.get("Type")
        handler = _CONDITIONS.get(str(kind))
        if handler is None:
            raise ExpressionError(f"condition type {kind!r} is not supported by the local executor")
        return handler(self, spec)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _comparison(op: Callable[[Any, Any], bool]) -> Callable[[Context, Mapping[str, Any]], bool]:
    def evaluate(context: Context, spec: Mapping[str, Any]) -> bool:
        left, right = context.resolve(spec["LeftValue"]), context.resolve(spec["RightValue"])
        if isinstance(left, (int, float)) != isinstance(right, (int, float)):
            try:
                left, right = float(left), float(right)
            except (TypeError, ValueError) as exc:
                raise ExpressionError(f"cannot compare {left!r} with {right!r}") from exc
        return bool(op(left, right))

    return evaluate


_CONDITIONS: dict[str, Callable[[Context, Mapping[str, Any]], bool]] = {
    "Equals": _comparison(operator.eq),
    "GreaterThan": _comparison(operator.gt),
    "GreaterThanOrEqualTo": _comparison(operator.ge),
    "LessThan": _comparison(operator.lt),
    "LessThanOrEqualTo": _comparison(operator.le),
    "In": lambda c, s: c.resolve(s["QueryValue"]) in c.resolve(s["Values"]),
    "Not": lambda c, s: not c.condition(s["Condition"]),
    "Or": lambda c, s: any(c.condition(x) for x in s["Conditions"]),
}
