"""The evaluation report: every plot, drawn from the run's own numbers, loads in Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.local import DEMO_DATA
from sagemaker_jobs import artifacts, data, evaluate, metrics
from sagemaker_jobs.contract import ROOT_ENV, Paths
from sagemaker_jobs.html_report import Section
from sagemaker_jobs.report import ReportInputs, build_report, write_report
from tests.browser import render


def _inputs(model_dir: Path, test: pd.DataFrame, threshold: float) -> ReportInputs:
    model, manifest = artifacts.load(model_dir)
    schema = data.Schema.from_dict({**manifest, "dropped": {}})
    features, target = list(schema.features), schema.target
    classify = schema.problem_type == "classification"
    scored = (metrics.classification if classify else metrics.regression)(
        model, test[features], test[target]
    )
    gate = "accuracy" if classify else "r2"
    value = scored["metrics"][gate]["value"]
    evaluation = {
        "problem_type": schema.problem_type,
        "test_rows": len(test),
        **scored,
        "quality_gate": {
            "metric": gate,
            "value": value,
            **metrics.gate_verdict(gate, value, threshold),
        },
    }
    table, _ = data.prepare(pd.read_csv(DEMO_DATA), data.DataSpec(target=target))
    profile = data.profile(table, schema, raw_rows=344, sha256="ab" * 32)
    return ReportInputs(model, manifest, test, evaluation, profile)


def _test_split(target: str, rows: int = 60) -> pd.DataFrame:
    table, _ = data.prepare(pd.read_csv(DEMO_DATA), data.DataSpec(target=target))
    return table.sample(rows, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def regressor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small regressor of body mass, saved as the training job saves it."""
    from sagemaker_jobs.hyperparameters import Hyperparameters
    from sagemaker_jobs.model import build_model

    directory = tmp_path_factory.mktemp("regressor")
    table, schema = data.prepare(pd.read_csv(DEMO_DATA), data.DataSpec(target="body_mass_g"))
    model = build_model(schema, Hyperparameters(n_estimators=20))
    model.fit(table[list(schema.features)], table[schema.target])
    artifacts.save(model, schema, directory, {"hyperparameters": {"estimator": "gb"}})
    return directory


def _figures(sections: list[Section]) -> dict[str, Any]:
    return {caption: figure for s in sections for caption, figure in s.figures}


def test_classifier_report_plots_its_own_confusion_matrix_curves_and_importances(
    model_dir: Path, tmp_path: Path
) -> None:
    inputs = _inputs(model_dir, _test_split("species"), threshold=0.9)
    sections = build_report(inputs)
    figures = _figures(sections)
    assert set(figures) == {
        "Confusion matrix on the test split",
        "ROC curves",
        "Precision-recall curves",
        "Permutation feature importance on the test split",
        "Class balance of the modelling table",
    }
    # The heat map is the evaluation's matrix, cell for cell.
    expected = np.array(inputs.evaluation["confusion_matrix"]["matrix"])
    drawn = figures["Confusion matrix on the test split"].axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(drawn), expected) and expected.sum() == 60
    # One ROC curve per class (one-vs-rest) plus the chance line, ending at (1, 1).
    roc_lines = figures["ROC curves"].axes[0].get_lines()
    assert [line.get_label().split(" ")[0] for line in roc_lines] == [
        "Adelie",
        "Chinstrap",
        "Gentoo",
        "chance",
    ]
    assert all(line.get_xydata()[-1].tolist() == [1.0, 1.0] for line in roc_lines)
    # One importance bar per feature, as long as the table says.
    importance = next(s for s in sections if s.title == "Permutation feature importance")
    _header, rows = importance.tables[0]
    table = {row[0]: row[1] for row in rows}
    bars = figures["Permutation feature importance on the test split"].axes[0].patches
    assert len(bars) == len(table) == len(inputs.manifest["features"])
    labels = [t.get_text() for t in importance.figures[0][1].axes[0].get_yticklabels()]
    assert {lab: round(b.get_width(), 9) for lab, b in zip(labels, bars, strict=True)} == {
        k: round(v, 9) for k, v in table.items()
    }

    page = write_report(tmp_path / "report.html", inputs)
    html = page.read_text()
    # The gate's verdict with its threshold, and the confusion table's numbers in the page.
    assert '<span class="pass">passed</span>' in html and "threshold 0.9 (higher is better)" in html
    first_row = expected[0].tolist()
    assert "<td>Adelie</td>" + "".join(f'<td class="num">{n}</td>' for n in first_row) in html
    assert "abababababab" in html  # the training data's sha256 from the profile
    rendered = render(page)
    assert (rendered.images_total, rendered.images_loaded) == (5, 5)


def test_regressor_report_plots_predictions_residuals_and_importances(
    regressor_dir: Path, tmp_path: Path
) -> None:
    test = _test_split("body_mass_g", rows=40)
    inputs = _inputs(regressor_dir, test, threshold=0.99)  # a gate it misses
    sections = build_report(inputs)
    figures = _figures(sections)
    assert set(figures) == {
        "Predicted against actual",
        "Residuals against prediction",
        "Residual distribution",
        "Permutation feature importance on the test split",
    }
    predicted = inputs.model.predict(test[[f["name"] for f in inputs.manifest["features"]]])
    actual = test["body_mass_g"].to_numpy(dtype=float)
    points = figures["Predicted against actual"].axes[0].collections[0].get_offsets()
    assert np.allclose(points, np.column_stack([actual, predicted]))
    residuals = figures["Residuals against prediction"].axes[0].collections[0].get_offsets()
    assert np.allclose(residuals[:, 1], actual - predicted)
    counts = [p.get_height() for p in figures["Residual distribution"].axes[0].patches]
    assert sum(counts) == 40

    page = write_report(tmp_path / "report.html", inputs)
    assert '<span class="fail">failed</span>' in page.read_text()
    rendered = render(page)
    assert (rendered.images_total, rendered.images_loaded) == (4, 4)


@pytest.fixture
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "opt" / "ml"))
    return Paths(tmp_path / "opt" / "ml")


def _job_inputs(opt_ml: Paths, model_dir: Path) -> None:
    shutil.copytree(model_dir, opt_ml.map("/opt/ml/processing/model"))
    test = opt_ml.map("/opt/ml/processing/test")
    test.mkdir(parents=True)
    _test_split("species", rows=30).to_csv(test / "test.csv", index=False)


def test_evaluate_job_writes_report_profile_and_gate_verdict(
    opt_ml: Paths, model_dir: Path
) -> None:
    _job_inputs(opt_ml, model_dir)
    table, schema = data.prepare(pd.read_csv(DEMO_DATA), data.DataSpec(target="species"))
    profile_dir = opt_ml.map("/opt/ml/processing/profile")
    profile_dir.mkdir(parents=True)
    profile = data.profile(table, schema, raw_rows=344, sha256="cd" * 32)
    (profile_dir / "profile.json").write_text(json.dumps(profile))

    assert evaluate.main(["--threshold", "0.5"]) == 0
    output = opt_ml.map("/opt/ml/processing/evaluation")
    gate = json.loads((output / "evaluation.json").read_text())["quality_gate"]
    assert gate["threshold"] == 0.5 and gate["passed"] is (gate["value"] >= 0.5)
    assert json.loads((output / "profile.json").read_text()) == json.loads(json.dumps(profile))
    html = (output / "report.html").read_text()
    assert "cdcdcdcdcdcd" in html and len(re.findall(r'<img src="data:image/png', html)) == 5


@pytest.mark.parametrize(
    ("profile", "message"),
    [("{not json", "cannot read the data profile"), ('{"rows": 3}', "not a data profile")],
)
def test_evaluate_job_names_a_broken_profile(
    opt_ml: Paths, model_dir: Path, profile: str, message: str
) -> None:
    _job_inputs(opt_ml, model_dir)
    profile_dir = opt_ml.map("/opt/ml/processing/profile")
    profile_dir.mkdir(parents=True)
    (profile_dir / "profile.json").write_text(profile)
    assert evaluate.main(["--threshold", "0.5"]) == 1
    assert message in opt_ml.failure_file.read_text()
    assert not opt_ml.map("/opt/ml/processing/evaluation/evaluation.json").exists()


def test_evaluate_job_rejects_a_threshold_that_is_not_a_number(
    opt_ml: Paths, model_dir: Path
) -> None:
    _job_inputs(opt_ml, model_dir)
    assert evaluate.main(["--threshold", "high"]) == 1
    assert "--threshold: invalid float value: 'high'" in opt_ml.failure_file.read_text()


def test_the_evaluate_step_reads_the_profile_and_gets_the_threshold(
    local_definition: dict[str, Any],
) -> None:
    (step,) = [s for s in local_definition["Steps"] if s["Name"] == "Evaluate"]
    inputs = {i["InputName"]: i["S3Input"] for i in step["Arguments"]["ProcessingInputs"]}
    assert inputs["profile"]["LocalPath"] == "/opt/ml/processing/profile"
    assert inputs["profile"]["S3Uri"] == {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['profile'].S3Output.S3Uri"
    }
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    # A float parameter reaches a job argument as a string (SageMaker takes no number there).
    threshold = arguments[arguments.index("--threshold") + 1]
    assert threshold == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.QualityThreshold"}]}}
    # Nothing that changes per execution: the step stays cacheable.
    assert "Execution" not in json.dumps(arguments)


def test_evaluate_predicts_the_test_split_once_for_the_metrics_and_the_report(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a large split each full predict costs seconds: the metrics and the report's curves
    read the same answers (permutation importance predicts its own sample rows)."""
    test = _test_split("species")
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    test.to_parquet(test_dir / "test.parquet", index=False)
    full: list[str] = []
    from sagemaker_jobs import compile, importance

    monkeypatch.setattr(compile, "PARITY_ROWS", 30)  # the parity check reads its own first rows
    shuffling: list[bool] = []  # permutation importance predicts shuffled copies: not counted
    real_importance = importance.permutation_importance

    def ranked(*args: Any, **kwargs: Any) -> Any:
        shuffling.append(True)
        try:
            return real_importance(*args, **kwargs)
        finally:
            shuffling.pop()

    monkeypatch.setattr(importance, "permutation_importance", ranked)

    class Counting:  # the loaded model, counting its predictions of the whole split
        def __init__(self, model: Any) -> None:
            self.model = model

        def __getattr__(self, name: str) -> Any:
            return getattr(self.model, name)

        def predict(self, x: Any) -> Any:
            return self._count("predict", x)

        def predict_proba(self, x: Any) -> Any:
            return self._count("predict_proba", x)

        def _count(self, method: str, x: Any) -> Any:
            if len(x) == len(test) and not shuffling:
                full.append(method)
            return getattr(self.model, method)(x)

    real_load = artifacts.load
    monkeypatch.setattr(
        artifacts, "load", lambda d: (lambda m: (Counting(m[0]), m[1]))(real_load(d))
    )
    evaluation, inputs = evaluate.evaluate(model_dir, test_dir, "accuracy", 0.5)
    build_report(inputs)
    assert full == ["predict_proba"]  # once, not once per reader; labels are its argmax
    assert evaluation["metrics"]["accuracy"]["value"] > 0.5
