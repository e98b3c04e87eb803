"""Pipeline-definition expressions: property paths, Get, Std:Join, Std:JsonGet, conditions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.errors import MlopsError
from mlops.executor.expressions import _CONDITIONS, Context, ExpressionError, split_path

TRAIN_URI = "s3://bucket/run-1/preprocess/train"
STEP_PROPERTIES: dict[str, dict[str, Any]] = {
    "Preprocess": {
        "ProcessingJobName": "preprocess-abc",
        "ProcessingOutputConfig": {
            "Outputs": [
                {"OutputName": "train", "S3Output": {"S3Uri": TRAIN_URI}},
                {"OutputName": "test", "S3Output": {"S3Uri": "s3://bucket/run-1/test"}},
            ]
        },
    },
    "Train": {
        "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/run-1/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "accuracy", "Value": 0.9}],
    },
    "Evaluate": {"ProcessingJobName": "evaluate-abc"},
}


def _context(tmp_path: Path, document: object | None = None) -> Context:
    report = tmp_path / "evaluation.json"
    if document is not None:
        report.write_text(json.dumps(document), encoding="utf-8")
    return Context(
        parameters={"Threshold": 0.7, "Bucket": "bucket", "Enabled": True},
        execution={"PipelineExecutionId": "exec-123"},
        step_properties=STEP_PROPERTIES,
        property_files={("Evaluate", "EvaluationReport"): report},
    )


@pytest.fixture
def context(tmp_path: Path) -> Context:
    return _context(
        tmp_path,
        {"metrics": {"accuracy": {"value": 0.83}}, "classes": ["a", "b"]},
    )


def _report(path: str) -> dict[str, Any]:
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": path,
        }
    }


# split_path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        (
            "ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri",
            ["ProcessingOutputConfig", "Outputs", "train", "S3Output", "S3Uri"],
        ),
        ("a[0].b", ["a", 0, "b"]),
        ('Outputs["model"].Uri', ["Outputs", "model", "Uri"]),
        ("metrics.accuracy.value", ["metrics", "accuracy", "value"]),
        ("list[12][3]", ["list", 12, 3]),
        ("Outputs['with.dot']", ["Outputs", "with.dot"]),
        ("", []),
    ],
)
def test_split_path(path: str, parts: list[str | int]) -> None:
    assert split_path(path) == parts


@pytest.mark.parametrize("path", ["a..b", "a[x]", "a b", "a['open", "9lives"])
def test_split_path_rejects_what_it_cannot_parse(path: str) -> None:
    with pytest.raises(ExpressionError, match="cannot parse property path"):
        split_path(path)


# Get ----------------------------------------------------------------------------------------


def test_get_reads_parameters_and_execution_variables(context: Context) -> None:
    assert context.resolve({"Get": "Parameters.Threshold"}) == 0.7
    assert context.resolve({"Get": "Execution.PipelineExecutionId"}) == "exec-123"


def test_get_indexes_lists_of_named_items_by_name(context: Context) -> None:
    reference = "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"

    assert context.resolve({"Get": reference}) == TRAIN_URI
    assert context.resolve(
        {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs[1].S3Output"}
    ) == {"S3Uri": "s3://bucket/run-1/test"}
    assert context.resolve({"Get": "Steps.Train.FinalMetricDataList['accuracy'].Value"}) == 0.9


def test_get_returns_a_whole_step_property_object(context: Context) -> None:
    assert context.resolve({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}) == (
        "s3://bucket/run-1/model.tar.gz"
    )
    assert context.resolve({"Get": "Steps.Preprocess.ProcessingJobName"}) == "preprocess-abc"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("Parameters.Nope", "unknown parameter 'Nope'"),
        ("Execution.StartDateTime", "'StartDateTime' is not supported locally"),
        ("Steps.Missing.Foo", "step 'Missing' has not run"),
        ("Steps.Preprocess.ProcessingOutputConfig.Outputs['validation']", "no item named"),
        ("Steps.Preprocess.ProcessingOutputConfig.Outputs[5]", "index 5 out of range"),
        ("Steps.Train.ModelArtifacts.Nope", "no field 'Nope'"),
        ("Properties.Foo", "cannot resolve"),
    ],
)
def test_get_errors_name_what_is_missing(context: Context, reference: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        context.resolve({"Get": reference})


def test_expression_error_is_an_mlops_error() -> None:
    assert issubclass(ExpressionError, MlopsError)


# Std:Join -----------------------------------------------------------------------------------


def test_join_resolves_its_values_and_formats_numbers_and_booleans(context: Context) -> None:
    joined = context.resolve(
        {
            "Std:Join": {
                "On": "/",
                "Values": [
                    "s3:/",
                    {"Get": "Parameters.Bucket"},
                    {"Get": "Execution.PipelineExecutionId"},
                    3,
                    {"Get": "Parameters.Threshold"},
                    {"Get": "Parameters.Enabled"},
                ],
            }
        }
    )

    assert joined == "s3://bucket/exec-123/3/0.7/true"


def test_join_without_a_separator_concatenates(context: Context) -> None:
    assert context.resolve({"Std:Join": {"Values": ["a", 1, "b"]}}) == "a1b"


# Std:JsonGet --------------------------------------------------------------------------------


def test_json_get_reads_a_property_file(context: Context) -> None:
    assert context.resolve(_report("metrics.accuracy.value")) == 0.83
    assert context.resolve(_report("classes[1]")) == "b"


def test_json_get_path_may_itself_be_an_expression(tmp_path: Path) -> None:
    context = _context(tmp_path, {"metrics": {"f1": {"value": 0.5}}})
    path = {"Std:Join": {"On": ".", "Values": ["metrics", "f1", "value"]}}

    assert context.resolve(_report(path)) == 0.5  # type: ignore[arg-type]


def test_property_file_reference_resolves_to_its_key(context: Context) -> None:
    assert context.resolve({"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}) == {
        "PropertyFile": ("Evaluate", "EvaluationReport")
    }


def test_json_get_errors_on_a_missing_json_path(context: Context) -> None:
    with pytest.raises(ExpressionError, match="no field 'rmse'") as caught:
        context.resolve(_report("metrics.rmse.value"))
    assert "EvaluationReport" in str(caught.value)


def test_json_get_errors_on_an_unreadable_file(tmp_path: Path) -> None:
    context = _context(tmp_path)  # the report file is never written

    with pytest.raises(ExpressionError, match="unreadable"):
        context.resolve(_report("metrics.accuracy.value"))


def test_json_get_errors_on_invalid_json(tmp_path: Path) -> None:
    context = _context(tmp_path)
    (tmp_path / "evaluation.json").write_text("{not json", encoding="utf-8")

    with pytest.raises(ExpressionError, match="unreadable"):
        context.resolve(_report("metrics"))


def test_json_get_errors_on_an_undeclared_property_file(context: Context) -> None:
    spec = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Train.PropertyFiles.Other"},
            "Path": "a",
        }
    }

    with pytest.raises(ExpressionError, match="step 'Train' declared no property file 'Other'"):
        context.resolve(spec)


def test_json_get_errors_when_not_given_a_property_file(context: Context) -> None:
    spec = {"Std:JsonGet": {"PropertyFile": "evaluation.json", "Path": "a"}}

    with pytest.raises(ExpressionError, match="needs a step property file"):
        context.resolve(spec)


# resolve ------------------------------------------------------------------------------------


def test_resolve_walks_nested_dicts_and_lists(context: Context) -> None:
    value = {
        "Arguments": ["--threshold", {"Get": "Parameters.Threshold"}],
        "Inputs": {
            "train": {
                "S3Uri": {
                    "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
                },
                "Mode": "File",
            }
        },
        "Plain": [1, None, "x", [{"Get": "Execution.PipelineExecutionId"}]],
    }

    assert context.resolve(value) == {
        "Arguments": ["--threshold", 0.7],
        "Inputs": {"train": {"S3Uri": TRAIN_URI, "Mode": "File"}},
        "Plain": [1, None, "x", ["exec-123"]],
    }


def test_resolve_leaves_literals_and_multi_key_dicts_alone(context: Context) -> None:
    assert context.resolve("text") == "text"
    assert context.resolve(4.5) == 4.5
    assert context.resolve(None) is None
    assert context.resolve({"Get": "x", "Other": 1}) == {"Get": "x", "Other": 1}


def test_resolve_rejects_an_unsupported_function(context: Context) -> None:
    with pytest.raises(ExpressionError, match="function Std:Foo is not supported"):
        context.resolve({"Std:Foo": {"Values": []}})


def test_resolve_rejects_an_unsupported_function_nested_in_a_list(context: Context) -> None:
    with pytest.raises(ExpressionError, match="Std:Concat"):
        context.resolve({"Args": [1, {"Std:Concat": ["a"]}]})


# conditions ---------------------------------------------------------------------------------

ACCURACY = _report("metrics.accuracy.value")  # 0.83 in the fixture's report
TRUE = {"Type": "Equals", "LeftValue": 1, "RightValue": 1}
FALSE = {"Type": "Equals", "LeftValue": 1, "RightValue": 2}

CASES: list[tuple[dict[str, Any], bool]] = [
    ({"Type": "Equals", "LeftValue": {"Get": "Parameters.Bucket"}, "RightValue": "bucket"}, True),
    ({"Type": "Equals", "LeftValue": {"Get": "Parameters.Bucket"}, "RightValue": "other"}, False),
    ({"Type": "Equals", "LeftValue": "0.7", "RightValue": {"Get": "Parameters.Threshold"}}, True),
    ({"Type": "GreaterThan", "LeftValue": ACCURACY, "RightValue": 0.8}, True),
    ({"Type": "GreaterThan", "LeftValue": ACCURACY, "RightValue": 0.83}, False),
    ({"Type": "GreaterThanOrEqualTo", "LeftValue": ACCURACY, "RightValue": 0.83}, True),
    ({"Type": "GreaterThanOrEqualTo", "LeftValue": ACCURACY, "RightValue": 0.9}, False),
    ({"Type": "LessThan", "LeftValue": {"Get": "Parameters.Threshold"}, "RightValue": 1}, True),
    ({"Type": "LessThan", "LeftValue": {"Get": "Parameters.Threshold"}, "RightValue": 0.7}, False),
    ({"Type": "LessThanOrEqualTo", "LeftValue": 0.7, "RightValue": "0.7"}, True),
    ({"Type": "LessThanOrEqualTo", "LeftValue": 0.71, "RightValue": 0.7}, False),
    ({"Type": "In", "QueryValue": {"Get": "Parameters.Bucket"}, "Values": ["a", "bucket"]}, True),
    ({"Type": "In", "QueryValue": "c", "Values": ["a", {"Get": "Parameters.Bucket"}]}, False),
    ({"Type": "Not", "Condition": FALSE}, True),
    ({"Type": "Not", "Condition": TRUE}, False),
    ({"Type": "Or", "Conditions": [FALSE, TRUE]}, True),
    ({"Type": "Or", "Conditions": [FALSE, FALSE]}, False),
]


def test_every_condition_type_has_a_true_and_a_false_case() -> None:
    covered = {(spec["Type"], expected) for spec, expected in CASES}
    assert covered == {(kind, value) for kind in _CONDITIONS for value in (True, False)}


@pytest.mark.parametrize(
    ("spec", "expected"),
    CASES,
    ids=[f"{spec['Type']}-{expected}-{i}" for i, (spec, expected) in enumerate(CASES)],
)
def test_condition(context: Context, spec: dict[str, Any], expected: bool) -> None:
    assert context.condition(spec) is expected


def test_condition_rejects_an_unknown_type(context: Context) -> None:
    with pytest.raises(ExpressionError, match="condition type 'And' is not supported"):
        context.condition({"Type": "And", "Conditions": [TRUE]})


def test_condition_without_a_type_is_an_error(context: Context) -> None:
    with pytest.raises(ExpressionError, match="condition type None"):
        context.condition({"LeftValue": 1, "RightValue": 1})


def test_comparison_of_a_number_with_text_that_is_no_number_is_an_error(
    context: Context,
) -> None:
    spec = {"Type": "GreaterThan", "LeftValue": ACCURACY, "RightValue": "high"}

    with pytest.raises(ExpressionError, match=r"cannot compare 0\.83 with 'high'"):
        context.condition(spec)


def test_json_get_of_a_step_that_has_not_run_is_an_error(tmp_path: Path) -> None:
    context = Context({}, {}, {}, {("Evaluate", "EvaluationReport"): tmp_path / "e.json"})

    with pytest.raises(ExpressionError, match="step 'Evaluate' has not run"):
        context.resolve(_report("metrics"))
