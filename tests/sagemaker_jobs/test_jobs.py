"""The job entry points under the container contract, run in-process on a relocated /opt/ml."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sagemaker_jobs import evaluate, preprocess
from sagemaker_jobs.contract import ROOT_ENV, Paths
from tests.sagemaker_jobs.jobs import pack_model, run_preprocess, run_train


@pytest.fixture
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "opt" / "ml"))
    return Paths(tmp_path / "opt" / "ml")


def _preprocess(opt_ml: Paths, table: pd.DataFrame, *args: str) -> int:
    return run_preprocess(opt_ml, table, "species", *args)


def test_preprocess_train_evaluate_chain(opt_ml: Paths, penguins: pd.DataFrame) -> None:
    penguins.loc[[0, 1], "species"] = None  # rows without a label are dropped, not guessed
    assert _preprocess(opt_ml, penguins) == 0
    output = opt_ml.map("/opt/ml/processing/output")
    sizes = {
        name: len(pd.read_parquet(output / name / f"{name}.parquet"))
        for name in ("train", "validation", "test")
    }
    assert sum(sizes.values()) == 342
    profile = json.loads((output / "profile/profile.json").read_text())
    assert (
        profile["dataset"]["raw_rows"] == 344 and profile["target"]["class_counts"]["Adelie"] == 150
    )

    assert run_train(opt_ml, {"estimator": "random_forest", "n_estimators": "50"}) == 0
    manifest = json.loads((opt_ml.model_dir(env={}) / "manifest.json").read_text())
    assert manifest["hyperparameters"]["n_estimators"] == 50
    assert manifest["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert {f["name"] for f in manifest["features"]} >= {"island", "bill_length_mm", "sex"}
    assert set(manifest["libraries"]) >= {"scikit-learn", "pandas", "numpy", "python"}

    pack_model(opt_ml)
    assert evaluate.main([]) == 0
    report = json.loads(opt_ml.map("/opt/ml/processing/evaluation/evaluation.json").read_text())
    assert report["quality_gate"]["metric"] == "accuracy"
    assert report["metrics"]["accuracy"]["value"] > 0.9
    assert sum(map(sum, report["confusion_matrix"]["matrix"])) == report["test_rows"]
    assert not opt_ml.failure_file.exists()


def test_bad_hyperparameter_fails_train_with_reason(opt_ml: Paths, penguins: pd.DataFrame) -> None:
    assert _preprocess(opt_ml, penguins) == 0
    assert run_train(opt_ml, {"learning_rate": "fast"}) == 1
    reason = opt_ml.failure_file.read_text()
    assert reason.startswith("bad hyperparameters: learning_rate")
    assert not (opt_ml.model_dir(env={}) / "manifest.json").exists()


def test_tampered_model_is_refused_by_evaluate(opt_ml: Paths, penguins: pd.DataFrame) -> None:
    assert _preprocess(opt_ml, penguins) == 0
    assert run_train(opt_ml) == 0
    with (opt_ml.model_dir(env={}) / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    pack_model(opt_ml)
    assert evaluate.main([]) == 1
    assert "does not match the manifest" in opt_ml.failure_file.read_text()
    assert not opt_ml.map("/opt/ml/processing/evaluation/evaluation.json").exists()


def test_wrong_gate_metric_for_problem_type(opt_ml: Paths, penguins: pd.DataFrame) -> None:
    assert _preprocess(opt_ml, penguins) == 0
    assert run_train(opt_ml) == 0
    pack_model(opt_ml)
    assert evaluate.main(["--quality-metric", "r2"]) == 1
    assert "is a regression metric" in opt_ml.failure_file.read_text()


def test_preprocess_argument_errors_go_to_the_failure_file(opt_ml: Paths) -> None:
    assert preprocess.main([]) == 1
    assert "the following arguments are required: --target" in opt_ml.failure_file.read_text()
    assert preprocess.main(["--target", "x", "--input", "/etc/passwd"]) == 1
    assert "outside /opt/ml" in opt_ml.failure_file.read_text()


def test_failure_reason_is_capped_at_1024_characters(opt_ml: Paths, penguins: pd.DataFrame) -> None:
    wide = penguins.drop(columns="species")
    wide.columns = [c * 60 for c in wide.columns]
    assert _preprocess(opt_ml, wide) == 1
    assert len(opt_ml.failure_file.read_text()) == 1024


def test_train_compiles_and_evaluate_scores_both_ways(
    opt_ml: Paths, penguins: pd.DataFrame
) -> None:
    assert _preprocess(opt_ml, penguins) == 0
    assert run_train(opt_ml, {"n_estimators": "20"}) == 0
    model_dir = opt_ml.model_dir(env={})
    manifest = json.loads((model_dir / "manifest.json").read_text())
    section = manifest["inference"]
    assert section["runtime"] == "onnxruntime"
    assert set(section["files"]) == {"compiled.json", "trees.onnx"}
    assert section["parity"]["split"] == "validation" and section["parity"]["passed"]
    pack_model(opt_ml)
    assert evaluate.main([]) == 0
    report = json.loads(opt_ml.map("/opt/ml/processing/evaluation/evaluation.json").read_text())
    test_check = report["inference"]["parity"]
    assert test_check["split"] == "test" and test_check["rows"] == report["test_rows"]
    assert test_check["label_agreement"] == 1.0
    assert test_check["max_probability_difference"] <= test_check["tolerance"]


def test_a_manifest_path_outside_the_package_is_refused(
    opt_ml: Paths, penguins: pd.DataFrame
) -> None:
    assert _preprocess(opt_ml, penguins) == 0
    assert run_train(opt_ml, {"estimator": "linear"}) == 0
    model_dir = opt_ml.model_dir(env={})
    outside = model_dir.parent / "elsewhere.joblib"
    shutil.copy(model_dir / "model.joblib", outside)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    (model_dir / "manifest.json").write_text(
        json.dumps({**manifest, "model_file": "../elsewhere.joblib"})
    )
    pack_model(opt_ml)
    assert evaluate.main([]) == 1
    assert "not a file inside the package" in opt_ml.failure_file.read_text()
