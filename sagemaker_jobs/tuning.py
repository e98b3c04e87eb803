"""Hyperparameter tuning: typed settings, the metric definitions the training job's log meets,
and the SageMaker ``TuningStep`` that replaces the Train step when tuning is on.

The same settings drive SageMaker (``HyperParameterTuningJobConfig``) and the local executor
(``mlops/executor/tuning.py``), which samples the ranges itself and scrapes each trial's log
with the very regexes written here into the definition.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sagemaker_jobs.hyperparameters import Hyperparameters
from sagemaker_jobs.metric_directions import GATE_METRICS, Direction, direction

if TYPE_CHECKING:
    from sagemaker.mlops.workflow.steps import CacheConfig, TuningStep

# What the training job prints after fitting (``validation:<name>=<value>``), and which way
# each metric improves: every gate metric of the problem type (sagemaker_jobs.metrics).
METRIC_DIRECTIONS: dict[str, Direction] = {
    f"validation:{name}": direction(name) for names in GATE_METRICS.values() for name in names
}
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_definitions() -> list[dict[str, str]]:
    """Name and regex per metric, as SageMaker scrapes them from the training job's log."""
    return [{"Name": name, "Regex": f"{re.escape(name)}={_NUMBER}"} for name in METRIC_DIRECTIONS]


Scaling = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContinuousRange(_Range):
    type: Literal["continuous"]
    min_value: float
    max_value: float
    scaling: Scaling = "Auto"


class IntegerRange(_Range):
    type: Literal["integer"]
    min_value: int
    max_value: int
    scaling: Literal["Auto", "Linear", "Logarithmic"] = "Auto"  # reverse-log: continuous only


class CategoricalRange(_Range):
    type: Literal["categorical"]
    values: tuple[str, ...] = Field(min_length=1, max_length=30)


ParameterRange = Annotated[
    ContinuousRange | IntegerRange | CategoricalRange, Field(discriminator="type")
]


class TuningSettings(BaseModel):
    """A hyperparameter tuning job over the training job's hyperparameters.

    ``strategy`` is what SageMaker runs; locally Random and Grid run as named, while Bayesian
    and Hyperband run as Random (the executor says so in the step's outputs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ranges: dict[str, ParameterRange] = Field(min_length=1, max_length=20)
    objective_metric: str = "validation:accuracy"
    objective_type: Literal["Maximize", "Minimize"] | None = Field(
        None, description="default: the direction in which the objective metric improves"
    )
    strategy: Literal["Bayesian", "Random", "Grid", "Hyperband"] = "Bayesian"
    max_jobs: int | None = Field(None, ge=1, description="required unless strategy is Grid")
    max_parallel_jobs: int = Field(2, ge=1, le=100)
    random_seed: int = Field(42, ge=1, description="the SDK drops a seed of 0")

    @property
    def direction(self) -> Literal["Maximize", "Minimize"]:
        return self.objective_type or METRIC_DIRECTIONS[self.objective_metric]

    @model_validator(mode="after")
    def _consistent(self) -> TuningSettings:
        if self.objective_metric not in METRIC_DIRECTIONS:
            raise ValueError(
                f"objective_metric {self.objective_metric!r} is not a metric the training job "
                f"prints; use one of {', '.join(METRIC_DIRECTIONS)}"
            )
        natural = METRIC_DIRECTIONS[self.objective_metric]
        if self.objective_type and self.objective_type != natural:
            raise ValueError(
                f"{self.objective_metric} improves by {natural.lower()[:-1]}ing: set "
                f"objective_type to {natural} (or leave it out)"
            )
        for name, spec in self.ranges.items():
            _check_range(name, spec)
        if self.strategy == "Grid":
            loose = [n for n, r in self.ranges.items() if not isinstance(r, CategoricalRange)]
            if loose:
                raise ValueError(
                    f"the Grid strategy searches categorical ranges only; {loose} are not: "
                    "list their values as categorical, or use Random or Bayesian"
                )
            if self.max_jobs is not None:
                raise ValueError(
                    "leave max_jobs out with the Grid strategy: the grid's size sets it"
                )
        elif self.max_jobs is None:
            raise ValueError(f"max_jobs is required with the {self.strategy} strategy")
        return self


def _check_range(name: str, spec: ContinuousRange | IntegerRange | CategoricalRange) -> None:
    """Every value a range can yield must be one the training job accepts."""
    from sagemaker_jobs.contract import JobError
    from sagemaker_jobs.hyperparameters import parse

    field = Hyperparameters.model_fields.get(name)
    if field is None:
        raise ValueError(
            f"ranges: {name!r} is not a training hyperparameter; tunable names: "
            f"{', '.join(Hyperparameters.model_fields)}"
        )
    if isinstance(spec, CategoricalRange):
        candidates = list(spec.values)
    else:
        takes, fits = (
            ("a number", "continuous")
            if "float" in str(field.annotation)
            else ("an integer", "integer")
        )
        if spec.type != fits:
            raise ValueError(f"ranges.{name}: {name} takes {takes}; give it a {fits} range")
        if spec.min_value >= spec.max_value:
            raise ValueError(
                f"ranges.{name}: min_value {spec.min_value} must be below max_value {spec.max_value}"
            )
        if spec.scaling == "Logarithmic" and spec.min_value <= 0:
            raise ValueError(f"ranges.{name}: Logarithmic scaling needs min_value > 0")
        if spec.scaling == "ReverseLogarithmic" and not 0 <= spec.min_value < spec.max_value < 1:
            raise ValueError(
                f"ranges.{name}: ReverseLogarithmic scaling needs 0 <= min_value < max_value < 1"
            )
        candidates = [str(spec.min_value), str(spec.max_value)]
    for value in candidates:
        try:
            parse({name: value})
        except JobError as exc:
            raise ValueError(f"ranges.{name}: {value!r} is not accepted: {exc}") from exc


def tuning_step(
    settings: TuningSettings,
    trainer: Any,
    channels: list[Any],
    cache: CacheConfig,
    bucket: str,
    prefix: str,
) -> tuple[TuningStep, Any]:
    """The Train step as a tuning job over ``trainer``, and its best model's S3 URI.

    SageMaker writes each tuned job's model to ``<output path>/<job name>/output/model.tar.gz``.
    The output path is ``s3://<bucket>/<prefix>``, free of the execution id (job names are
    unique already), so a cached tuning step's best-model URI still finds its model.
    """
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter
    from sagemaker.core.shapes import OutputDataConfig
    from sagemaker.mlops.workflow.steps import TuningStep
    from sagemaker.train.tuner import HyperparameterTuner

    ranges: dict[str | Any, Any] = {}
    for name, spec in settings.ranges.items():
        if isinstance(spec, CategoricalRange):
            ranges[name] = CategoricalParameter(list(spec.values))
        elif isinstance(spec, ContinuousRange):
            ranges[name] = ContinuousParameter(spec.min_value, spec.max_value, spec.scaling)
        else:
            ranges[name] = IntegerParameter(spec.min_value, spec.max_value, spec.scaling)
    trainer.output_data_config = OutputDataConfig(s3_output_path=f"s3://{bucket}/{prefix}")
    tuner = HyperparameterTuner(
        trainer,
        objective_metric_name=settings.objective_metric,
        objective_type=settings.direction,
        hyperparameter_ranges=ranges,
        metric_definitions=metric_definitions(),
        strategy=settings.strategy,
        max_jobs=settings.max_jobs,
        max_parallel_jobs=settings.max_parallel_jobs,
        random_seed=settings.random_seed,
    )
    isolated = bool(trainer.networking and trainer.networking.enable_network_isolation)
    step_class = _isolated_tuning_step_class() if isolated else TuningStep
    step = step_class(name="Train", step_args=tuner.tune(inputs=channels), cache_config=cache)
    # Index 0 of TrainingJobSummaries is the best training job by the objective.
    return step, step.get_top_model_s3_uri(top_k=0, s3_bucket=bucket, prefix=prefix)


def _isolated_tuning_step_class() -> type:
    from sagemaker.mlops.workflow.steps import TuningStep

    class IsolatedTuningStep(TuningStep):
        """The SDK carries the trainer's VPC into the tuning job but drops its network
        isolation; put it back so tuned jobs are as isolated as a plain training job."""

        @property
        def arguments(self) -> Any:
            request = super().arguments
            request["TrainingJobDefinition"]["EnableNetworkIsolation"] = True
            return request

    return IsolatedTuningStep
