"""A SageMaker Tuning step, run locally: its trials are training jobs in parallel processes.

The hyperparameters of each trial are sampled from the definition's ranges (seeded, so the
same definition gives the same trials); each trial runs exactly as the Training step runs one
job; its objective is read from its log with the definition's metric-definition regexes, as
SageMaker reads it; the best trial by the objective and its direction comes first in
``TrainingJobSummaries``, which is what ``TuningStep.get_top_model_s3_uri(top_k=0)`` reads.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlops.executor.container import Job, Started, stop_all, terminate
from mlops.executor.expressions import Context
from mlops.executor.outcomes import Outcome, Reporter, StepFailed
from mlops.executor.records import now
from mlops.registry.local import LOCAL_ACCOUNT

LOCAL_STRATEGIES = {"Random", "Grid"}  # Bayesian and Hyperband run as Random locally


@dataclass
class Trial:
    """One training job of a tuning job, as the step record and `pipeline steps` show it."""

    name: str
    hyperparameters: dict[str, str]
    status: str = "InProgress"  # then Completed, Failed or Stopped
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    failure_reason: str | None = None
    model: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    seconds: float | None = None


class TuningError(ValueError):
    """A tuning job definition the local executor cannot run, with the reason."""


class TrainingJobs(Protocol):
    """What a tuning job needs from the executor: to run one training job, and its reporter."""

    @property
    def reporter(self) -> Reporter: ...

    def run_training_job(
        self,
        name: str,
        args: dict[str, Any],
        step_dir: Path,
        job_name: str,
        started: Started | None = None,
    ) -> str: ...


# Sampling ------------------------------------------------------------------------------
def sample(config: dict[str, Any]) -> tuple[list[dict[str, str]], str | None]:
    """The trials' hyperparameters for a ``HyperParameterTuningJobConfig``, and a note when
    the strategy runs differently here than on SageMaker."""
    ranges = config.get("ParameterRanges") or {}
    continuous = ranges.get("ContinuousParameterRanges", [])
    integer = ranges.get("IntegerParameterRanges", [])
    categorical = ranges.get("CategoricalParameterRanges", [])
    if not (continuous or integer or categorical):
        raise TuningError("ParameterRanges is empty: give at least one range to tune")
    strategy = config.get("Strategy", "Bayesian")
    if strategy == "Grid":
        if continuous or integer:
            raise TuningError("the Grid strategy searches categorical ranges only")
        names = [r["Name"] for r in categorical]
        grid = itertools.product(*(r["Values"] for r in categorical))
        return [dict(zip(names, values, strict=True)) for values in grid], None
    count = config.get("ResourceLimits", {}).get("MaxNumberOfTrainingJobs")
    if not isinstance(count, int) or count < 1:
        raise TuningError(f"ResourceLimits.MaxNumberOfTrainingJobs must be >= 1 for {strategy}")
    note = (
        None
        if strategy in LOCAL_STRATEGIES
        else f"{strategy} runs as Random locally (seeded); SageMaker runs {strategy}"
    )
    rng = random.Random(config.get("RandomSeed", 0))
    trials = []
    for _ in range(count):
        values: dict[str, str] = {}
        for spec in continuous:
            values[spec["Name"]] = _continuous(rng, spec)
        for spec in integer:
            values[spec["Name"]] = _integer(rng, spec)
        for spec in categorical:
            values[spec["Name"]] = str(rng.choice(spec["Values"]))
        trials.append(values)
    return trials, note


def _bounds(spec: dict[str, Any], cast: type) -> tuple[Any, Any]:
    try:
        low, high = cast(spec["MinValue"]), cast(spec["MaxValue"])
    except (KeyError, ValueError) as exc:
        raise TuningError(f"range {spec.get('Name')}: bad MinValue/MaxValue ({exc})") from exc
    if low > high:
        raise TuningError(f"range {spec['Name']}: MinValue {low} is above MaxValue {high}")
    return low, high


def _continuous(rng: random.Random, spec: dict[str, Any]) -> str:
    low, high = _bounds(spec, float)
    scaling = spec.get("ScalingType", "Auto")
    if scaling == "Logarithmic":
        if low <= 0:
            raise TuningError(f"range {spec['Name']}: Logarithmic scaling needs MinValue > 0")
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    elif scaling == "ReverseLogarithmic":
        if not 0 <= low <= high < 1:
            raise TuningError(f"range {spec['Name']}: ReverseLogarithmic needs 0 <= values < 1")
        value = 1 - math.exp(rng.uniform(math.log(1 - high), math.log(1 - low)))
    else:  # Linear; Auto is SageMaker's own choice, uniform here
        value = rng.uniform(low, high)
    return f"{min(max(float(f'{value:.6g}'), low), high):.6g}"


def _integer(rng: random.Random, spec: dict[str, Any]) -> str:
    low, high = _bounds(spec, int)
    if spec.get("ScalingType") == "Logarithmic":
        if low <= 0:
            raise TuningError(f"range {spec['Name']}: Logarithmic scaling needs MinValue > 0")
        value = int(math.exp(rng.uniform(math.log(low), math.log(high + 1))))
        return str(min(max(value, low), high))
    return str(rng.randint(low, high))


# Objective -----------------------------------------------------------------------------
def read_metrics(log: str, definitions: list[dict[str, str]]) -> dict[str, float]:
    """Each metric's last value in the log, matched with its definition's regex (the first
    group is the value), as SageMaker reports a training job's final metrics."""
    found: dict[str, float] = {}
    for definition in definitions:
        try:
            pattern = re.compile(definition["Regex"])
        except re.error as exc:
            raise TuningError(
                f"metric {definition['Name']}: regex {definition['Regex']!r} is invalid: {exc}"
            ) from exc
        if pattern.groups < 1:
            raise TuningError(
                f"metric {definition['Name']}: regex {definition['Regex']!r} needs a group "
                "capturing the value"
            )
        for match in pattern.finditer(log):
            try:
                found[definition["Name"]] = float(match.group(1))
            except (TypeError, ValueError):
                continue  # a match that is not a number is not a value
    return found


def rank(trials: list[Trial], direction: str) -> list[Trial]:
    """Completed trials best first by the objective and its direction, then the rest."""
    if direction not in ("Maximize", "Minimize"):
        raise TuningError(f"objective Type {direction!r}: use Maximize or Minimize")
    # A NaN (a loose metric regex) has no order: such a trial ranks with the unscored ones.
    scored = [
        t
        for t in trials
        if t.status == "Completed" and t.objective is not None and math.isfinite(t.objective)
    ]
    scored.sort(key=lambda t: t.objective or 0.0, reverse=direction == "Maximize")
    return scored + [t for t in trials if t not in scored]


# The step ------------------------------------------------------------------------------
def run_tuning(
    executor: TrainingJobs,
    name: str,
    args: dict[str, Any],
    context: Context,
    step_dir: Path,
) -> Outcome:
    config = args.get("HyperParameterTuningJobConfig", {})
    definition = args.get("TrainingJobDefinition")
    if not definition:
        raise StepFailed(name, "only a single TrainingJobDefinition runs locally")
    objective = config.get("HyperParameterTuningJobObjective") or {}
    metric, direction = objective.get("MetricName"), objective.get("Type")
    metric_definitions = definition.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
    if metric not in {d.get("Name") for d in metric_definitions}:
        raise StepFailed(
            name,
            f"the objective metric {metric!r} has no metric definition (Name and Regex) in "
            "TrainingJobDefinition.AlgorithmSpecification.MetricDefinitions",
        )
    try:
        read_metrics("", metric_definitions)  # regexes checked before any trial runs
        rank([], str(direction))
        choices, note = sample(config)
    except TuningError as exc:
        raise StepFailed(name, str(exc)) from exc

    tuning_job = f"{name.lower()}-{context.execution['PipelineExecutionId']}"
    limit = int(config.get("ResourceLimits", {}).get("MaxParallelTrainingJobs", 1))
    workers = max(1, min(limit, os.cpu_count() or 1, len(choices)))
    # scikit-learn's OpenMP threads share the cores among the parallel trials.
    environment = {
        "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers)),
        **definition.get("Environment", {}),
    }
    static = definition.get("StaticHyperParameters", {})
    trials = [Trial(f"{tuning_job}-{i:03d}", values) for i, values in enumerate(choices, start=1)]
    step_dir.mkdir(parents=True, exist_ok=True)
    log = _StepLog(step_dir / "log.txt", executor, name)
    log.write(
        f"tuning job {tuning_job}: {len(trials)} trials, {workers} at a time, "
        f"objective {direction} {metric}" + (f"; {note}" if note else "")
    )
    live: set[Job] = set()  # the trials' running processes
    lock = threading.Lock()
    stopping = threading.Event()

    def run_trial(trial: Trial) -> None:
        mine: list[Job] = []

        def started(child: Job) -> None:
            with lock:
                live.add(child)
                mine.append(child)
            if stopping.is_set():  # started just as a stop came in
                terminate(child)

        if stopping.is_set():
            trial.status, trial.failure_reason = "Stopped", "the tuning job was stopped"
            return
        trial.start_time, clock = now(), time.perf_counter()
        job_args = {
            "AlgorithmSpecification": definition["AlgorithmSpecification"],
            "HyperParameters": {
                **static,
                **trial.hyperparameters,
                "_tuning_objective_metric": metric,  # SageMaker adds it to every trial too
            },
            "InputDataConfig": definition.get("InputDataConfig", []),
            "OutputDataConfig": definition["OutputDataConfig"],
            "Environment": environment,
        }
        trial_dir = step_dir / "trials" / trial.name
        trial_dir.mkdir(parents=True, exist_ok=True)
        try:
            trial.model = executor.run_training_job(
                f"{name}/{trial.name.rsplit('-', 1)[-1]}", job_args, trial_dir, trial.name, started
            )
            trial.metrics = read_metrics(
                (trial_dir / "log.txt").read_text(encoding="utf-8"), metric_definitions
            )
            trial.objective = trial.metrics.get(str(metric))
            if trial.objective is None:
                trial.status = "Failed"
                trial.failure_reason = f"the objective {metric} is not in the job's log" + (
                    f" (it printed {', '.join(trial.metrics)}: make one of them the objective)"
                    if trial.metrics
                    else " (it printed no metric line)"
                )
            else:
                trial.status = "Completed"
        except StepFailed as exc:
            trial.status = "Stopped" if stopping.is_set() else "Failed"
            trial.failure_reason = exc.reason
        finally:
            with lock:
                live.difference_update(mine)
            trial.end_time, trial.seconds = now(), round(time.perf_counter() - clock, 2)
            log.write(_describe(trial, metric))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trial") as pool:
        futures: list[Future[None]] = []
        try:
            for trial in trials:  # queued in order; a stop cancels the ones not started
                futures.append(pool.submit(run_trial, trial))
            for future in futures:
                future.result()
        except BaseException:  # Ctrl-C, SIGTERM or our own fault: stop every trial, then report
            stopping.set()
            for future in futures:
                future.cancel()
            with lock:
                children = list(live)
            stop_all(children)
            raise

    ranked = rank(trials, str(direction))
    best = ranked[0]
    if best.status != "Completed":
        reasons = "; ".join(f"{t.name}: {t.failure_reason}" for t in ranked[:3])
        raise StepFailed(
            name, f"all {len(trials)} trials failed ({reasons})", [asdict(t) for t in trials]
        )
    log.write(f"best: {_describe(best, metric)}")
    summaries = [_summary(t, metric, direction) for t in ranked]
    counts = {s: sum(t.status == s for t in trials) for s in ("Completed", "Failed", "Stopped")}
    properties = {
        **args,
        "HyperParameterTuningJobName": tuning_job,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:"
        f"hyper-parameter-tuning-job/{tuning_job}",
        "HyperParameterTuningJobStatus": "Completed",
        "BestTrainingJob": summaries[0],
        "TrainingJobSummaries": summaries,
        "TrainingJobStatusCounters": {
            "Completed": counts["Completed"],
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": counts["Failed"],
            "Stopped": counts["Stopped"],
        },
        "ObjectiveStatusCounters": {
            "Succeeded": counts["Completed"],
            "Pending": 0,
            "Failed": len(trials) - counts["Completed"],
        },
    }
    outputs: dict[str, Any] = {
        "BestTrainingJob": best.name,
        "Objective": f"{metric}={best.objective}",
        "Trials": f"{counts['Completed']}/{len(trials)} completed",
        "ModelArtifacts": best.model,
    }
    if note:
        outputs["Note"] = note
    return Outcome(properties=properties, outputs=outputs, trials=[asdict(t) for t in trials])


def _summary(trial: Trial, metric: Any, direction: Any) -> dict[str, Any]:
    """A ``HyperParameterTrainingJobSummary``."""
    summary: dict[str, Any] = {
        "TrainingJobName": trial.name,
        "TrainingJobArn": f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:training-job/{trial.name}",
        "TrainingJobStatus": trial.status,
        "TunedHyperParameters": trial.hyperparameters,
        "TrainingStartTime": trial.start_time,
        "TrainingEndTime": trial.end_time,
        "ObjectiveStatus": "Succeeded" if trial.status == "Completed" else "Failed",
    }
    if trial.objective is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": direction,
            "MetricName": metric,
            "Value": trial.objective,
        }
    if trial.failure_reason:
        summary["FailureReason"] = trial.failure_reason
    return summary


def _describe(trial: Trial, metric: Any) -> str:
    values = ", ".join(f"{k}={v}" for k, v in trial.hyperparameters.items())
    result = f"{metric}={trial.objective}" if trial.status == "Completed" else trial.failure_reason
    return f"{trial.name} {trial.status} ({values}): {result}"


class _StepLog:
    """The tuning step's own log: one line per trial as it ends (the jobs' logs are theirs)."""

    def __init__(self, path: Path, executor: TrainingJobs, step: str) -> None:
        self.path, self.executor, self.step = path, executor, step
        self.lock = threading.Lock()
        path.write_text("", encoding="utf-8")

    def write(self, line: str) -> None:
        with self.lock, self.path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
            self.executor.reporter.log_line(self.step, line)
