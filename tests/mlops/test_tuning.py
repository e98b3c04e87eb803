"""Local hyperparameter tuning: sampling, ranking, the Tuning step with stand-in training jobs
(fast), stopping, settings files, and one real tuning run end to end (slow)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from mlops.cli import main
from mlops.errors import ExecutionFailed, MlopsError
from mlops.executor.outcomes import ExecutionStopped
from mlops.executor.records import StepRecord, find_execution
from mlops.executor.runner import LocalPipelineExecutor
from mlops.executor.tuning import Trial, TuningError, rank, read_metrics, sample
from mlops.home import Home
from mlops.local import DEMO_DATA, LOCAL_IMAGE, load_tuning
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore
from sagemaker_jobs.tuning import metric_definitions

RANDOM = {
    "Strategy": "Random",
    "RandomSeed": 7,
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 50, "MaxParallelTrainingJobs": 2},
    "ParameterRanges": {
        "ContinuousParameterRanges": [
            {"Name": "lr", "MinValue": "0.001", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
            {
                "Name": "keep",
                "MinValue": "0.9",
                "MaxValue": "0.999",
                "ScalingType": "ReverseLogarithmic",
            },
        ],
        "IntegerParameterRanges": [
            {"Name": "depth", "MinValue": "2", "MaxValue": "6", "ScalingType": "Linear"},
            {"Name": "trees", "MinValue": "1", "MaxValue": "1000", "ScalingType": "Logarithmic"},
        ],
        "CategoricalParameterRanges": [{"Name": "kind", "Values": ["a", "b"]}],
    },
}


def test_random_sampling_is_seeded_and_stays_in_its_ranges() -> None:
    trials, note = sample(RANDOM)
    assert note is None and len(trials) == 50
    assert sample(RANDOM)[0] == trials  # the same definition, the same trials
    assert sample({**RANDOM, "RandomSeed": 8})[0] != trials
    lr = [float(t["lr"]) for t in trials]
    keep = [float(t["keep"]) for t in trials]
    trees = [int(t["trees"]) for t in trials]
    assert all(0.001 <= v <= 0.5 for v in lr) and all(0.9 <= v <= 0.999 for v in keep)
    assert {int(t["depth"]) for t in trials} <= set(range(2, 7)) and all(
        1 <= v <= 1000 for v in trees
    )
    assert {t["kind"] for t in trials} == {"a", "b"}
    # Log scaling spreads draws evenly over orders of magnitude: about half below the
    # geometric middle, where a linear draw would put about 5 %.
    assert 15 <= sum(v < math.sqrt(0.001 * 0.5) for v in lr) <= 35
    assert 15 <= sum(v < math.sqrt(1000) for v in trees) <= 35
    # Reverse-log crowds draws near 1: about half above 1 - sqrt(0.1 * 0.001).
    assert 15 <= sum(v > 1 - math.sqrt(0.1 * 0.001) for v in keep) <= 35


def test_grid_runs_every_combination_and_bayesian_runs_as_random_with_a_note() -> None:
    grid = {
        "Strategy": "Grid",
        "ParameterRanges": {
            "CategoricalParameterRanges": [
                {"Name": "a", "Values": ["1", "2", "3"]},
                {"Name": "b", "Values": ["x", "y"]},
            ]
        },
    }
    trials, note = sample(grid)
    assert note is None
    assert trials == [{"a": a, "b": b} for a in "123" for b in "xy"]
    bayesian, note = sample({**RANDOM, "Strategy": "Bayesian"})
    assert bayesian == sample(RANDOM)[0]
    assert note == "Bayesian runs as Random locally (seeded); SageMaker runs Bayesian"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({**RANDOM, "ParameterRanges": {}}, "ParameterRanges is empty"),
        ({**RANDOM, "ResourceLimits": {"MaxParallelTrainingJobs": 1}}, "MaxNumberOfTrainingJobs"),
        ({**RANDOM, "Strategy": "Grid"}, "Grid strategy searches categorical ranges only"),
    ],
)
def test_a_tuning_config_it_cannot_sample_is_explained(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(TuningError, match=message):
        sample(config)


def test_metrics_are_read_with_the_definition_regexes_last_value_wins() -> None:
    log = (
        "epoch 1 validation:rmse=3.5\n"
        "validation:rmse=2.5e-1\nvalidation:roc_auc=None\nvalidation:accuracy=-0.75\n"
    )
    assert read_metrics(log, metric_definitions()) == {
        "validation:rmse": 0.25,
        "validation:accuracy": -0.75,
    }
    with pytest.raises(TuningError, match="needs a group capturing the value"):
        read_metrics(log, [{"Name": "m", "Regex": "m=.*"}])


def test_a_nan_objective_never_wins() -> None:
    trials = [
        Trial("t-001", {}, "Completed", objective=float("nan")),
        Trial("t-002", {}, "Completed", objective=0.4),
    ]
    for direction in ("Maximize", "Minimize"):
        assert [t.name for t in rank(trials, direction)] == ["t-002", "t-001"]


def test_the_best_trial_is_chosen_by_the_objective_and_its_direction() -> None:
    trials = [
        Trial("t-001", {}, "Completed", objective=0.5),
        Trial("t-002", {}, "Failed", failure_reason="boom"),
        Trial("t-003", {}, "Completed", objective=0.9),
        Trial("t-004", {}, "Completed", objective=0.2),
        Trial("t-005", {}, "Completed", objective=0.9),
    ]
    # Ties keep the trials' order; failed trials come last whatever the direction.
    assert [t.name for t in rank(trials, "Maximize")] == [
        "t-003",
        "t-005",
        "t-001",
        "t-004",
        "t-002",
    ]
    assert [t.name for t in rank(trials, "Minimize")] == [
        "t-004",
        "t-001",
        "t-003",
        "t-005",
        "t-002",
    ]
    with pytest.raises(TuningError, match="use Maximize or Minimize"):
        rank(trials, "Max")


# The Tuning step with stand-in training jobs: the executor's `python` runs this script,
# which scores a trial by its hyperparameter `score`, and can fail, stay silent or hang.
FAKE_TRAINER = """\
import json, os, pathlib, sys, time
root = pathlib.Path(os.environ["MLOPS_OPT_ML"])
hp = json.loads((root / "input/config/hyperparameters.json").read_text())
with open(os.environ["PIDS"], "a") as pids:
    pids.write(f"{os.getpid()}\\n")
(root / "model" / "hp.json").write_text(json.dumps(hp))
score = hp["score"]
if score == "fail":
    (root / "output" / "failure").write_text("diverged at epoch 3")
    sys.exit(1)
if score == "hang":
    print("up", flush=True)
    time.sleep(120)
if score == "other":
    print("validation:mae=1.5", flush=True)
elif score != "silent":
    print(f"validation:rmse={score}", flush=True)
"""


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\n{FAKE_TRAINER}", encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PIDS", str(tmp_path / "pids"))
    return script


def _tuning_definition(direction: str, scores: list[str]) -> dict[str, Any]:
    return {
        "PipelineName": "tuning-test",
        "Steps": [
            {
                "Name": "Tune",
                "Type": "Tuning",
                "Arguments": {
                    "HyperParameterTuningJobConfig": {
                        "Strategy": "Grid",
                        "ResourceLimits": {"MaxParallelTrainingJobs": 2},
                        "HyperParameterTuningJobObjective": {
                            "Type": direction,
                            "MetricName": "validation:rmse",
                        },
                        "ParameterRanges": {
                            "CategoricalParameterRanges": [{"Name": "score", "Values": scores}]
                        },
                    },
                    "TrainingJobDefinition": {
                        "AlgorithmSpecification": {
                            "TrainingImage": LOCAL_IMAGE,
                            "TrainingInputMode": "File",
                            "MetricDefinitions": metric_definitions(),
                        },
                        "StaticHyperParameters": {"estimator": "linear"},
                        "OutputDataConfig": {"S3OutputPath": "s3://mlops-local/tuning"},
                        "RoleArn": "arn:aws:iam::000000000000:role/mlops-local",
                        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
                    },
                },
            }
        ],
    }


def _executor(home: Home, python: Path, reporter: Any = None) -> LocalPipelineExecutor:
    return LocalPipelineExecutor(
        home,
        LocalModelRegistry(home.registry),
        image_uri=LOCAL_IMAGE,
        python=str(python),
        reporter=reporter,
        use_cache=False,
    )


@pytest.mark.parametrize(("direction", "best_score"), [("Maximize", "0.9"), ("Minimize", "0.3")])
def test_tuning_step_picks_the_best_trial_and_records_failed_ones(
    home: Home, fake_python: Path, direction: str, best_score: str
) -> None:
    scores = ["0.5", "fail", "0.9", "silent", "0.3"]
    record = _executor(home, fake_python).run(_tuning_definition(direction, scores), {})
    (step,) = record.steps
    execution = record.execution_id
    trials = {t["hyperparameters"]["score"]: t for t in step.trials}
    assert [t["name"] for t in step.trials] == [f"tune-{execution}-00{i}" for i in range(1, 6)]
    assert {s: t["status"] for s, t in trials.items()} == {
        "0.5": "Completed",
        "fail": "Failed",
        "0.9": "Completed",
        "silent": "Failed",
        "0.3": "Completed",
    }
    assert trials["fail"]["failure_reason"] == "diverged at epoch 3"
    assert trials["silent"]["failure_reason"] == (
        "the objective validation:rmse is not in the job's log (it printed no metric line)"
    )
    assert trials["0.9"]["objective"] == 0.9
    best = trials[best_score]
    assert step.outputs["BestTrainingJob"] == best["name"]
    assert step.outputs["Objective"] == f"validation:rmse={float(best_score)}"
    assert step.outputs["Trials"] == "3/5 completed"
    assert step.outputs["ModelArtifacts"] == best["model"]
    assert best["model"] == f"s3://mlops-local/tuning/{best['name']}/output/model.tar.gz"
    # Each trial is a training job as SageMaker runs one: its hyperparameters are the static
    # ones, the sampled ones, and the objective's name; its model is packed and stored.
    store = LocalObjectStore(home.store)
    with tarfile.open(store.path_for(best["model"])) as tar:
        member = tar.extractfile("hp.json")
        assert member is not None
        assert json.loads(member.read()) == {
            "estimator": "linear",
            "score": best_score,
            "_tuning_objective_metric": "validation:rmse",
        }
    log = Path(record.run_dir, "steps", "Tune", "log.txt").read_text(encoding="utf-8")
    assert f"best: {best['name']} Completed (score={best_score})" in log


def test_a_tuning_job_whose_trials_all_fail_fails_the_step(home: Home, fake_python: Path) -> None:
    with pytest.raises(ExecutionFailed) as caught:
        _executor(home, fake_python).run(_tuning_definition("Minimize", ["fail", "other"]), {})
    assert re.search(
        r"all 2 trials failed \(tune-\S+-001: diverged at epoch 3; tune-\S+-002: the objective "
        r"validation:rmse is not in the job's log \(it printed validation:mae: make one of them "
        r"the objective\)\)",
        str(caught.value),
    )
    (step,) = find_execution(home.runs, "latest").steps
    assert step.status == "Failed"
    assert [t["status"] for t in step.trials] == ["Failed", "Failed"]  # kept for `pipeline steps`


def test_an_objective_without_a_metric_definition_is_refused(home: Home, fake_python: Path) -> None:
    definition = _tuning_definition("Minimize", ["0.1"])
    job = definition["Steps"][0]["Arguments"]["TrainingJobDefinition"]
    job["AlgorithmSpecification"]["MetricDefinitions"] = []
    with pytest.raises(ExecutionFailed, match="'validation:rmse' has no metric definition"):
        _executor(home, fake_python).run(definition, {})
    assert not list(home.runs.glob("*/steps/Tune/trials/*"))  # no trial ran


class _SigtermWhenTrialsRun:
    """Sends this process SIGTERM (as `kill` or a CI cancel would) once two trials run."""

    def __init__(self) -> None:
        self.running: set[str] = set()

    def step_started(self, record: StepRecord) -> None:
        pass

    def step_finished(self, record: StepRecord) -> None:
        pass

    def log_line(self, step: str, line: str) -> None:
        if line == "up":
            self.running.add(step)
            if len(self.running) == 2:
                os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_stops_every_running_trial(home: Home, fake_python: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ExecutionStopped):
        _executor(home, fake_python, _SigtermWhenTrialsRun()).run(
            _tuning_definition("Minimize", ["hang", "hang", "hang"]), {}
        )
    assert time.monotonic() - started < 30  # stopped, not waited for
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2  # the third trial never started
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    record = find_execution(home.runs, "latest")
    assert (record.status, record.steps[0].status) == ("Stopped", "Stopped")


def test_tuning_settings_files_are_validated_with_clear_errors(tmp_path: Path) -> None:
    good = tmp_path / "tuning.yaml"
    good.write_text(
        "strategy: Grid\nranges:\n  estimator:\n    type: categorical\n"
        "    values: [linear, random_forest]\n",
        encoding="utf-8",
    )
    assert load_tuning(good).strategy == "Grid"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"max_jobs": 0, "ranges": {}}), encoding="utf-8")
    with pytest.raises(MlopsError) as caught:
        load_tuning(bad)
    assert str(caught.value).startswith(f"bad tuning settings in {bad}: ranges: ")
    assert "max_jobs: Input should be greater than or equal to 1" in str(caught.value)
    broken = tmp_path / "broken.json"
    broken.write_text('{"ranges": [', encoding="utf-8")
    with pytest.raises(MlopsError, match="is not valid JSON or YAML"):
        load_tuning(broken)
    with pytest.raises(MlopsError, match="cannot read tuning settings"):
        load_tuning(tmp_path / "missing.json")


@pytest.mark.slow
def test_a_local_tuning_run_registers_the_best_trials_model(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = str(DEMO_DATA.parent / "tuning.yaml")  # the README's example
    assert main(["pipeline", "run", "--tuning", settings, "--no-track", "--no-cache"]) == 0
    record = find_execution(home.runs, "latest")
    train = next(s for s in record.steps if s.name == "Train")
    assert train.type == "Tuning" and len(train.trials) == 8
    assert all(t["status"] == "Completed" for t in train.trials)
    # Objectives come from the real training job's log lines, through the definition's regexes.
    for trial in train.trials:
        assert set(trial["metrics"]) == {
            "validation:accuracy",
            "validation:balanced_accuracy",
            "validation:f1_macro",
            "validation:f1_weighted",
            "validation:roc_auc",
        }
        assert trial["objective"] == trial["metrics"]["validation:accuracy"]
    best = max(train.trials, key=lambda t: t["objective"])  # the first of any tie
    assert train.outputs["BestTrainingJob"] == best["name"]
    (package,) = LocalModelRegistry(home.registry).list_model_packages("mlops-tabular")
    assert package.model_data_url == best["model"]
    evaluate = next(s for s in record.steps if s.name == "Evaluate")
    assert evaluate.status == "Succeeded"
    capsys.readouterr()
    assert main(["pipeline", "steps"]) == 0
    table = capsys.readouterr().out
    assert table.count("│ Trial ") == 8
    values = ", ".join(f"{k}={v}" for k, v in best["hyperparameters"].items())
    assert f"{values}: objective={best['objective']}" in table


def test_pipeline_definition_takes_tuning_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pipeline", "definition", "--tuning", str(DEMO_DATA.parent / "tuning.yaml")]) == 0
    steps = {s["Name"]: s for s in json.loads(capsys.readouterr().out)["Steps"]}
    config = steps["Train"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert (steps["Train"]["Type"], config["Strategy"]) == ("Tuning", "Random")
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "strategy: Grid\nranges: {max_depth: {type: integer, min_value: 1, max_value: 3}}"
    )
    assert main(["pipeline", "definition", "--tuning", str(bad)]) == 2
    assert "the Grid strategy searches categorical ranges only" in capsys.readouterr().err
