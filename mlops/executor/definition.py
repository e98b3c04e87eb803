"""Reading a pipeline definition: its parameters' values and the order its steps run in.

Pure functions of the definition's JSON (no files, no processes), so the cloud commands and
tracking resolve parameters exactly as the local executor does without importing it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from mlops.errors import MlopsError
from sagemaker_jobs.feature_selection import check_feature_selection
from sagemaker_jobs.metric_directions import check_gate_parameters

_CASTS: dict[str, Callable[[str], Any]] = {
    "String": str,
    "Integer": int,
    "Float": float,
    "Boolean": lambda v: {"true": True, "false": False}[v.strip().lower()],
}


def resolve_parameters(definition: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Defaults plus ``Name=Value`` overrides, each checked against its declared type."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise MlopsError(f"unknown parameter(s) {unknown}; the pipeline has {sorted(declared)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name not in overrides:
            if "DefaultValue" not in spec:
                raise MlopsError(f"parameter {name} has no default: pass --param {name}=VALUE")
            values[name] = spec["DefaultValue"]
            continue
        raw = overrides[name]
        try:
            values[name] = _CASTS[spec["Type"]](raw)
        except (KeyError, ValueError) as exc:
            raise MlopsError(f"parameter {name} is {spec['Type']}; {raw!r} is not one") from exc
        if isinstance(values[name], float) and not math.isfinite(values[name]):
            raise MlopsError(f"parameter {name} must be a finite number; got {raw!r}")
        allowed = spec.get("EnumValues")
        if allowed and values[name] not in allowed:
            raise MlopsError(f"parameter {name} must be one of {allowed}; got {raw!r}")
    try:  # a gate or a selection that cannot apply fails here, before any job runs
        check_gate_parameters(values)
        check_feature_selection(values)
    except ValueError as exc:
        raise MlopsError(str(exc)) from exc
    return values


def all_steps(
    steps: list[dict[str, Any]], parent: str | None = None
) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every step with the Condition step whose branch holds it (None at the top level)."""
    for step in steps:
        yield step, parent
        if step.get("Type") == "Condition":
            branches = step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", [])
            yield from all_steps(branches, step["Name"])


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            yield get.split(".")[1]
        for key, inner in value.items():
            if key not in ("IfSteps", "ElseSteps"):
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def plan(definition: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    """Order the steps by data and explicit dependencies (stable in definition order)."""
    found = list(all_steps(definition.get("Steps", [])))
    specs = {step["Name"]: step for step, _ in found}
    needs: dict[str, set[str]] = {}
    for step, parent in found:
        deps = set(_references(step.get("Arguments", {}))) | set(step.get("DependsOn", []))
        deps |= set(_references(step.get("PropertyFiles", [])))
        if parent:
            deps.add(parent)
        missing = deps - set(specs)
        if missing:
            raise MlopsError(f"step {step['Name']} depends on unknown step(s) {sorted(missing)}")
        needs[step["Name"]] = deps
    ordered: list[dict[str, Any]] = []
    done: set[str] = set()
    while len(ordered) < len(specs):
        ready = [n for n in specs if n not in done and needs[n] <= done]
        if not ready:
            raise MlopsError(f"steps {sorted(set(specs) - done)} form a dependency cycle")
        ordered.append(specs[ready[0]])
        done.add(ready[0])
    return ordered, needs
