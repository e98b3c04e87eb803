"""The local executor on hand-made definitions: parameters, ordering, unsupported input, Ctrl-C."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mlops.errors import ExecutionFailed, MlopsError
from mlops.executor.definition import plan, resolve_parameters
from mlops.executor.outcomes import ExecutionStopped
from mlops.executor.records import StepRecord, find_execution
from mlops.executor.runner import LocalPipelineExecutor
from mlops.home import Home
from mlops.local import LOCAL_IMAGE
from mlops.registry import LocalModelRegistry

DEFINITION = {
    "Parameters": [
        {"Name": "Count", "Type": "Integer", "DefaultValue": 1},
        {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5},
        {"Name": "Mode", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]},
        {"Name": "Flag", "Type": "Boolean", "DefaultValue": False},
    ]
}


def test_parameters_take_defaults_and_typed_overrides() -> None:
    values = resolve_parameters(DEFINITION, {"Count": "3", "Threshold": "0.9", "Flag": "true"})
    assert values == {"Count": 3, "Threshold": 0.9, "Mode": "a", "Flag": True}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Count": "three"}, "parameter Count is Integer"),
        ({"Mode": "c"}, "must be one of ['a', 'b']"),
        ({"Flag": "maybe"}, "parameter Flag is Boolean"),
        ({"Nope": "1"}, "unknown parameter(s) ['Nope']"),
    ],
)
def test_bad_parameters_are_named(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(MlopsError) as caught:
        resolve_parameters(DEFINITION, overrides)
    assert message in str(caught.value)


def _fail(name: str, message: Any = "stop", depends_on: list[str] | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": message}}
    if depends_on:
        step["DependsOn"] = depends_on
    return step


def test_plan_orders_by_data_and_explicit_dependencies() -> None:
    steps = [
        _fail("C", {"Get": "Steps.B.Outcome"}),
        _fail("B", depends_on=["A"]),
        _fail("A"),
    ]
    ordered, needs = plan({"Steps": steps})
    assert [s["Name"] for s in ordered] == ["A", "B", "C"]
    assert needs == {"A": set(), "B": {"A"}, "C": {"B"}}


def test_plan_rejects_cycles_and_unknown_steps() -> None:
    with pytest.raises(MlopsError, match="cycle"):
        plan({"Steps": [_fail("A", depends_on=["B"]), _fail("B", depends_on=["A"])]})
    with pytest.raises(MlopsError, match="unknown step"):
        plan({"Steps": [_fail("A", depends_on=["Ghost"])]})


def _executor(home: Home, reporter: Any = None) -> LocalPipelineExecutor:
    return LocalPipelineExecutor(
        home, LocalModelRegistry(home.registry), image_uri=LOCAL_IMAGE, reporter=reporter
    )


def test_a_step_type_it_cannot_run_is_named_before_anything_runs(home: Home) -> None:
    definition = {"Steps": [_fail("A"), {"Name": "Notify", "Type": "Lambda", "Arguments": {}}]}
    with pytest.raises(
        MlopsError, match="step Notify has type Lambda, which the local executor cannot run"
    ):
        _executor(home).run(definition, {})
    assert not home.runs.exists()


def test_an_expression_it_cannot_evaluate_fails_the_step_naming_it(home: Home) -> None:
    definition = {"Steps": [_fail("A", {"Std:Base64": "x"})]}
    with pytest.raises(ExecutionFailed, match="function Std:Base64 is not supported"):
        _executor(home).run(definition, {})
    assert find_execution(home.runs, "latest").status == "Failed"


def test_condition_picks_a_branch_and_fail_step_message_is_the_reason(home: Home) -> None:
    condition = {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": {"Get": "Parameters.Threshold"},
                    "RightValue": 0.8,
                }
            ],
            "IfSteps": [_fail("High", "never")],
            "ElseSteps": [
                _fail(
                    "Low",
                    {
                        "Std:Join": {
                            "On": " ",
                            "Values": ["threshold", {"Get": "Parameters.Threshold"}, "too low"],
                        }
                    },
                )
            ],
        },
    }
    with pytest.raises(ExecutionFailed, match=r"threshold 0\.5 too low"):
        _executor(home).run({**DEFINITION, "Steps": [condition]}, {})
    record = find_execution(home.runs, "latest")
    assert [(s.name, s.status) for s in record.steps] == [("Gate", "Succeeded"), ("Low", "Failed")]
    assert record.steps[0].outputs == {"Outcome": False}


class _InterruptOnFirstLine:
    """Stands in for a user pressing Ctrl-C while a job is running."""

    def step_started(self, record: StepRecord) -> None:
        pass

    def step_finished(self, record: StepRecord) -> None:
        pass

    def log_line(self, step: str, line: str) -> None:
        raise KeyboardInterrupt


# What CreateProcessingJob requires besides the app: the executor validates every request.
REQUIRED = {
    "RoleArn": "arn:aws:iam::000000000000:role/mlops-local",
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
    },
}


def test_ctrl_c_stops_the_running_job_and_marks_the_execution_stopped(home: Home) -> None:
    sleeper = {
        "Name": "Sleep",
        "Type": "Processing",
        "Arguments": {
            **REQUIRED,
            "AppSpecification": {
                "ImageUri": LOCAL_IMAGE,
                "ContainerEntrypoint": [
                    "python3",
                    "-c",
                    "print('up', flush=True); import time; time.sleep(120)",
                ],
            },
        },
    }
    started = time.monotonic()
    with pytest.raises(ExecutionStopped):
        _executor(home, _InterruptOnFirstLine()).run({"Steps": [sleeper]}, {})
    assert time.monotonic() - started < 60  # the child was stopped, not waited for
    record = find_execution(home.runs, "latest")
    assert record.status == "Stopped"
    assert record.steps[0].status == "Stopped"


def test_a_foreign_image_is_refused(home: Home) -> None:
    step = {
        "Name": "Other",
        "Type": "Processing",
        "Arguments": {
            **REQUIRED,
            "AppSpecification": {"ImageUri": "someone/else:1", "ContainerEntrypoint": ["python3"]},
        },
    }
    with pytest.raises(ExecutionFailed, match="is not the project image"):
        _executor(home).run({"Steps": [step]}, {})
