"""The right metrics: balanced accuracy and macro F1, named averaging, a per-class table, the
imbalanced default, lower-is-better gates and a bad gate refused before any job runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.cli import main as mlops
from mlops.errors import MlopsError
from mlops.executor.definition import resolve_parameters
from mlops.home import Home
from mlops.model_card import CardSources, build_card, render_markdown
from mlops.registry import ModelPackage
from sagemaker_jobs import evaluate
from sagemaker_jobs.contract import ROOT_ENV, JobError, Paths
from sagemaker_jobs.metric_directions import check_gate, check_gate_parameters
from sagemaker_jobs.metrics import gate_verdict, resolve_gate_metric
from tests.sagemaker_jobs.jobs import (
    evaluation,
    imbalanced_with_dates,
    pack_model,
    regression_table,
    run_preprocess,
    run_train,
)

FAST = {"n_estimators": "30"}


@pytest.fixture
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "opt" / "ml"))
    return Paths(tmp_path / "opt" / "ml")


def test_imbalanced_classifier_is_gated_on_balanced_accuracy_with_a_per_class_table(
    opt_ml: Paths,
) -> None:
    assert run_preprocess(opt_ml, imbalanced_with_dates(), "label") == 0
    assert run_train(opt_ml, FAST) == 0
    pack_model(opt_ml)
    assert evaluate.main(["--threshold", "0.3"]) == 0
    result = evaluation(opt_ml)
    metrics = result["metrics"]
    assert set(metrics) == {"accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc"}
    assert metrics["f1_macro"]["averaging"].startswith("macro")
    assert metrics["f1_weighted"]["averaging"].startswith("weighted")
    assert metrics["roc_auc"]["averaging"].startswith("one-vs-rest")
    assert "averaging" not in metrics["accuracy"]
    # The smallest class has 3% of the rows: the default gate is balanced accuracy, and says why.
    gate = result["quality_gate"]
    assert gate["metric"] == "balanced_accuracy"
    assert "imbalanced" in gate["chosen"] and "'e'" in gate["chosen"]
    assert gate["direction"] == "higher_is_better" and gate["margin"] == pytest.approx(
        gate["value"] - 0.3, abs=1e-6
    )
    assert "must be at least the threshold 0.3" in gate["message"]
    per_class = {row["class"]: row for row in result["per_class"]}
    assert list(per_class) == ["a", "b", "c", "d", "e"]
    assert sum(r["support"] for r in per_class.values()) == result["test_rows"]
    assert per_class["a"]["support"] == sum(result["confusion_matrix"]["matrix"][0])
    assert {"precision", "recall", "f1"} <= set(per_class["e"])
    # The report shows the averaging and the per-class table.
    page = opt_ml.map("/opt/ml/processing/evaluation/report.html").read_text(encoding="utf-8")
    assert "macro (unweighted mean over classes)" in page and "<th>Support</th>" in page
    assert "imbalanced" in page
    # The model card shows the per-class table and the training split's class counts.
    manifest = json.loads((opt_ml.model_dir(env={}) / "manifest.json").read_text())
    train_counts = manifest["class_counts"]
    assert sum(train_counts.values()) == manifest["train_rows"] < 600
    package = ModelPackage(
        group="g",
        version=1,
        arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
        approval_status="PendingManualApproval",
        created="2026-12-01T00:00:00+00:00",
        model_data_url="s3://b/model.tar.gz",
        image_uri="image",
        metrics=result,
        metadata={},
    )
    card = render_markdown(build_card(CardSources(package, manifest, "f" * 64, None)))
    assert (
        "## Per class (test split)" in card
        and "| Class | Precision | Recall | F1 | Support |" in card
    )
    assert f"classes a {train_counts['a']}, b {train_counts['b']}" in card
    assert "must be at least the threshold 0.3 (higher is better)" in card


def test_lower_is_better_gate_reads_the_threshold_as_an_upper_bound(opt_ml: Paths) -> None:
    assert run_preprocess(opt_ml, regression_table(), "y") == 0
    assert run_train(opt_ml, {"estimator": "linear"}) == 0
    pack_model(opt_ml)
    assert evaluate.main(["--quality-metric", "rmse", "--threshold", "5"]) == 0
    gate = evaluation(opt_ml)["quality_gate"]
    assert gate["metric"] == "rmse" and gate["value"] < 5 and gate["threshold"] == 5
    assert gate["passed"] is True and gate["margin"] == pytest.approx(5 - gate["value"], abs=1e-6)
    assert gate["direction"] == "lower_is_better"

    assert evaluate.main(["--quality-metric", "mae", "--threshold", "0.01"]) == 0
    gate = evaluation(opt_ml)["quality_gate"]
    assert gate["passed"] is False and gate["margin"] < 0
    assert (
        "must be at most the threshold 0.01" in gate["message"] and "upper bound" in gate["message"]
    )
    assert "nothing was registered" in gate["message"]


def test_gate_verdict_signs_the_margin_by_direction() -> None:
    assert gate_verdict("r2", 0.8, 0.7)["margin"] == pytest.approx(0.1)
    assert gate_verdict("rmse", 0.8, 0.7)["margin"] == pytest.approx(-0.1)
    assert gate_verdict("rmse", 0.6, 0.7)["passed"] is True


def test_balanced_default_only_for_a_class_under_ten_percent() -> None:
    assert resolve_gate_metric("classification", "auto", {"a": 90, "b": 10})[0] == "accuracy"
    assert resolve_gate_metric("classification", "auto", {"a": 91, "b": 9})[0] == (
        "balanced_accuracy"
    )
    assert resolve_gate_metric("classification", "f1", {"a": 91, "b": 9})[0] == "f1_weighted"
    assert resolve_gate_metric("regression", "auto") == ("r2", "default for regression")


@pytest.mark.parametrize(
    ("metric", "problem_type", "threshold", "says"),
    [
        ("r2", "classification", None, "is a regression metric but ProblemType is classification"),
        ("accuracy", "regression", None, "use one of auto, r2, rmse, mae"),
        ("bogus", "auto", None, "is not a gate metric"),
        ("accuracy", "auto", 1.5, "outside accuracy's range [0.0, 1.0]"),
        ("rmse", "auto", -1.0, "upper bound for rmse"),
    ],
)
def test_a_gate_that_cannot_apply_is_named(
    metric: str, problem_type: str, threshold: float | None, says: str
) -> None:
    with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
        check_gate(metric, problem_type, threshold)


def test_evaluate_refuses_a_metric_of_the_other_problem_type(opt_ml: Paths) -> None:
    with pytest.raises(JobError, match="is a regression metric"):
        resolve_gate_metric("classification", "rmse")
    check_gate_parameters({"QualityMetric": "rmse", "ProblemType": "auto", "QualityThreshold": 3})


def test_pipeline_run_refuses_a_bad_gate_before_any_job(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["-p", "QualityMetric=rmse", "-p", "ProblemType=classification"]
    assert mlops(["pipeline", "run", *args]) == 2
    assert "QualityMetric 'rmse' is a regression metric" in capsys.readouterr().err
    assert not home.runs.exists() or not any(home.runs.iterdir())  # no execution started


def test_pipeline_start_parameters_are_checked_the_same_way(
    local_definition: dict[str, Any],
) -> None:
    # `pipeline start` (AWS) resolves its parameters with this same function before the call.
    with pytest.raises(MlopsError, match="outside accuracy's range"):
        resolve_parameters(
            local_definition, {"QualityMetric": "accuracy", "QualityThreshold": "70"}
        )
    assert resolve_parameters(local_definition, {"QualityMetric": "f1_macro"})["QualityMetric"] == (
        "f1_macro"
    )
