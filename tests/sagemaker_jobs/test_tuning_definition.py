"""The Train step as a tuning job: its JSON against SageMaker's own API model, the best model
feeding Evaluate and RegisterModel, determinism, per-stage settings, and clear errors."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape
from botocore.validate import ParamValidator
from pydantic import ValidationError

from sagemaker_jobs.pipeline import PipelineSettings, definition_json
from sagemaker_jobs.tuning import METRIC_DIRECTIONS, TuningSettings, metric_definitions

from .test_pipeline import SETTINGS, steps_by_name

TUNING = {
    "strategy": "Random",
    "max_jobs": 8,
    "max_parallel_jobs": 2,
    "ranges": {
        "learning_rate": {
            "type": "continuous",
            "min_value": 0.01,
            "max_value": 0.3,
            "scaling": "Logarithmic",
        },
        "max_depth": {"type": "integer", "min_value": 2, "max_value": 6},
        "estimator": {"type": "categorical", "values": ["gradient_boosting", "random_forest"]},
    },
}


@pytest.fixture(scope="module")
def tuned_text() -> str:
    return definition_json(_tuned_settings())


@pytest.fixture(scope="module")
def tuned(tuned_text: str) -> dict[str, Any]:
    return json.loads(tuned_text)


def _tuned_settings() -> PipelineSettings:
    return PipelineSettings(**SETTINGS, tuning=TuningSettings.model_validate(TUNING))


@pytest.fixture(scope="module")
def sagemaker_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def _placeholders(value: Any, shape: Shape, enums: list[str]) -> Any:
    """The arguments with each pipeline expression replaced by a value of the type the API
    shape expects there, so botocore can validate what SageMaker receives at run time."""
    if isinstance(value, dict) and (set(value) & {"Get", "Std:Join", "Std:JsonGet"}):
        return {"string": "s3://bucket/key", "integer": 1, "float": 1.0}[shape.type_name]
    if shape.type_name == "structure":
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{shape.name} has no member(s) {unknown}"
        return {k: _placeholders(v, shape.members[k], enums) for k, v in value.items()}
    if shape.type_name == "list":
        return [_placeholders(v, shape.member, enums) for v in value]
    if shape.type_name == "map":
        return {k: _placeholders(v, shape.value, enums) for k, v in value.items()}
    allowed = getattr(shape, "enum", None)
    if allowed:  # botocore's validator does not check enums; SageMaker does
        assert value in allowed, f"{shape.name}: {value!r} not in {allowed}"
        enums.append(shape.name)
    return value


def test_tuning_step_arguments_are_a_valid_create_tuning_job_request(
    tuned: dict[str, Any], sagemaker_model: Any
) -> None:
    step = steps_by_name(tuned)["Train"]
    assert step["Type"] == "Tuning"
    request_shape = sagemaker_model.operation_model("CreateHyperParameterTuningJob").input_shape
    # The pipeline fills in the job name at run time; the rest is the step's arguments.
    enums: list[str] = []
    request = {
        "HyperParameterTuningJobName": "train-123",
        **_placeholders(step["Arguments"], request_shape, enums),
    }
    report = ParamValidator().validate(request, request_shape)
    assert not report.has_errors(), report.generate_report()
    assert {"HyperParameterTuningJobStrategyType", "HyperParameterScalingType"} <= set(enums)
    config = step["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 2}
    assert config["HyperParameterTuningJobObjective"] == {
        "MetricName": "validation:accuracy",
        "Type": "Maximize",
    }
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {
            "Name": "learning_rate",
            "MinValue": "0.01",
            "MaxValue": "0.3",
            "ScalingType": "Logarithmic",
        }
    ]
    assert ranges["IntegerParameterRanges"][0]["Name"] == "max_depth"
    assert ranges["CategoricalParameterRanges"][0]["Values"] == [
        "gradient_boosting",
        "random_forest",
    ]
    job = step["Arguments"]["TrainingJobDefinition"]
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    # A tuned name is not also static; the Estimator parameter goes away when it is tuned.
    assert "estimator" not in job.get("StaticHyperParameters", {})


def test_sdk_shapes_accept_the_step_arguments(tuned: dict[str, Any]) -> None:
    """sagemaker-core's own shapes parse what the builder emitted (expressions as strings)."""
    from sagemaker.core.shapes import (
        HyperParameterTrainingJobDefinition,
        HyperParameterTuningJobConfig,
    )
    from sagemaker.core.utils.utils import pascal_to_snake

    def snake(value: Any) -> Any:
        if isinstance(value, dict) and (set(value) & {"Get", "Std:Join"}):
            return "s3://bucket/key"
        if isinstance(value, dict):
            return {pascal_to_snake(k): snake(v) for k, v in value.items()}
        if isinstance(value, list):
            return [snake(v) for v in value]
        return value

    arguments = steps_by_name(tuned)["Train"]["Arguments"]
    config = HyperParameterTuningJobConfig(**snake(arguments["HyperParameterTuningJobConfig"]))
    job = arguments["TrainingJobDefinition"]
    definition = HyperParameterTrainingJobDefinition(
        **snake({k: v for k, v in job.items() if k != "StaticHyperParameters"}),
        static_hyper_parameters={"estimator": "gradient_boosting"},
    )
    assert config.resource_limits.max_number_of_training_jobs == 8
    assert definition.algorithm_specification.metric_definitions[0].name == "validation:accuracy"


def test_best_training_job_model_feeds_evaluate_and_register(tuned: dict[str, Any]) -> None:
    steps = steps_by_name(tuned)
    output_path = steps["Train"]["Arguments"]["TrainingJobDefinition"]["OutputDataConfig"][
        "S3OutputPath"
    ]
    # Free of the execution id, so a cached tuning step's model URI still resolves.
    assert output_path == f"s3://{SETTINGS['bucket']}/pipelines/mlops-tabular/tuning"
    best_model = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                SETTINGS["bucket"],
                "pipelines/mlops-tabular/tuning",
                {"Get": "Steps.Train.TrainingJobSummaries[0].TrainingJobName"},
                "output/model.tar.gz",
            ],
        }
    }
    evaluate_inputs = {
        i["InputName"]: i["S3Input"]["S3Uri"]
        for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]
    }
    assert evaluate_inputs["model"] == best_model
    container = steps["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == best_model


def test_tuned_definition_is_deterministic_and_tuning_off_keeps_the_training_step(
    tuned_text: str, tuned: dict[str, Any], local_definition: dict[str, Any]
) -> None:
    assert definition_json(_tuned_settings()) == tuned_text  # byte-identical
    plain = local_definition  # the session's untuned build (other settings: local stand-ins)
    assert steps_by_name(plain)["Train"]["Type"] == "Training"
    # Only the Train step and the model URI it yields change.
    assert [s["Name"] for s in plain["Steps"]] == [s["Name"] for s in tuned["Steps"]]
    assert [p["Name"] for p in plain["Parameters"]] == [p["Name"] for p in tuned["Parameters"]]


def test_network_isolation_survives_tuning() -> None:
    settings = PipelineSettings(
        **SETTINGS,
        subnets=("subnet-1",),
        security_group_ids=("sg-1",),
        tuning=TuningSettings.model_validate(TUNING),
    )
    job = steps_by_name(json.loads(definition_json(settings)))["Train"]["Arguments"][
        "TrainingJobDefinition"
    ]
    assert job["EnableNetworkIsolation"] is True
    assert job["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}


def test_a_stage_can_turn_tuning_on() -> None:
    from infra.model_build import definition_body
    from mlops.errors import MlopsError
    from mlops.stages import StageSettings, stage_settings

    stage = StageSettings.model_validate({"tuning": TUNING})
    body = json.loads(definition_body(stage))
    assert steps_by_name(body)["Train"]["Type"] == "Tuning"
    bad = {"stage": "dev", "stages": {"dev": {"tuning": {**TUNING, "max_jobs": 0}}}}
    with pytest.raises(MlopsError, match=r"stage 'dev' in cdk.json: tuning.max_jobs"):
        stage_settings(bad)


def test_metric_definitions_cover_every_metric_the_training_job_prints() -> None:
    from sagemaker_jobs import metrics

    printed = {f"validation:{m}" for names in metrics.GATE_METRICS.values() for m in names}
    printed |= {"validation:rmse", "validation:mae"}
    assert set(METRIC_DIRECTIONS) == printed


def _range(**kwargs: Any) -> dict[str, Any]:
    return {**TUNING, "ranges": {**kwargs}}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (_range(speed={"type": "integer", "min_value": 1, "max_value": 2}), "'speed' is not a"),
        (
            _range(max_depth={"type": "integer", "min_value": 5, "max_value": 2}),
            "min_value 5 must be below max_value 2",
        ),
        (
            _range(learning_rate={"type": "continuous", "min_value": 0.1, "max_value": 3}),
            "ranges.learning_rate: '3.0' is not accepted",
        ),
        (
            _range(learning_rate={"type": "integer", "min_value": 1, "max_value": 2}),
            "learning_rate takes a number; give it a continuous range",
        ),
        (
            _range(
                l2_regularization={
                    "type": "continuous",
                    "min_value": 0,
                    "max_value": 1,
                    "scaling": "Logarithmic",
                }
            ),
            "Logarithmic scaling needs min_value > 0",
        ),
        (
            _range(
                learning_rate={
                    "type": "continuous",
                    "min_value": 0.5,
                    "max_value": 1,
                    "scaling": "ReverseLogarithmic",
                }
            ),
            "ReverseLogarithmic scaling needs 0 <= min_value < max_value < 1",
        ),
        (
            _range(estimator={"type": "categorical", "values": ["gradient_boosting", "svm"]}),
            "'svm' is not accepted",
        ),
        ({**TUNING, "objective_metric": "accuracy"}, "use one of validation:accuracy"),
        (
            {**TUNING, "objective_metric": "validation:rmse", "objective_type": "Maximize"},
            "set objective_type to Minimize",
        ),
        ({**TUNING, "strategy": "Grid", "max_jobs": None}, "Grid strategy searches categorical"),
        (
            {
                **_range(estimator={"type": "categorical", "values": ["linear"]}),
                "strategy": "Grid",
            },
            "leave max_jobs out with the Grid strategy",
        ),
        ({**TUNING, "max_jobs": None}, "max_jobs is required with the Random strategy"),
        ({**TUNING, "strategy": "Annealing"}, "Input should be 'Bayesian', 'Random'"),
        ({**TUNING, "ranges": {}}, "at least 1 item"),
    ],
)
def test_bad_tuning_settings_say_what_to_fix(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TuningSettings.model_validate(settings)
    assert message in str(caught.value)
