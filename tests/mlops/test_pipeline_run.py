"""End to end: `mlops pipeline run` executes the real definition locally, as a user runs it."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from mlops.cli import main
from mlops.executor.records import find_execution, list_executions
from mlops.home import Home
from mlops.local import DEMO_DATA
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore
from tests.mlops.conftest import DemoRun

pytestmark = pytest.mark.slow


def packages(home: Home) -> list:
    return LocalModelRegistry(home.registry).list_model_packages("mlops-tabular")


def test_demo_run_registers_a_model_above_the_gate(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's demo run (its tracking store cannot be created, which must not matter)."""
    home = demo_run.home
    assert demo_run.code == 0, demo_run.out + demo_run.err
    record = demo_run.record
    assert record.status == "Succeeded"
    assert [(s.name, s.status) for s in record.steps] == [
        ("Fingerprint", "Succeeded"),
        ("Preprocess", "Succeeded"),
        ("Train", "Succeeded"),
        ("Evaluate", "Succeeded"),
        ("QualityGate", "Succeeded"),
        ("RegisterModel", "Succeeded"),
    ]
    (package,) = demo_run.packages  # as the run left them (other tests add versions, approve)
    assert package.approval_status == "PendingManualApproval"
    gate = package.metrics["quality_gate"]
    assert gate["metric"] == "accuracy" and gate["value"] >= 0.9
    assert set(package.metrics["metrics"]) == {
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_weighted",
        "roc_auc",
    }
    assert package.metrics["confusion_matrix"]["labels"] == ["Adelie", "Chinstrap", "Gentoo"]
    # Lineage: the data hash computed by preprocess, the execution, the code version.
    assert package.metadata["DatasetSha256"] == hashlib.sha256(DEMO_DATA.read_bytes()).hexdigest()
    assert package.metadata["PipelineExecutionId"] == record.execution_id
    assert package.metadata["CodeVersion"]
    # The artifact is model.tar.gz packed from /opt/ml/model, as SageMaker packs it.
    archive = LocalObjectStore(home.store).path_for(package.model_data_url)
    with tarfile.open(archive) as tar:
        # Beside the scikit-learn model, its compiled form (inference/compiled.py serves it).
        assert sorted(tar.getnames()) == [
            "compiled.json",
            "manifest.json",
            "model.joblib",
            "trees.onnx",
        ]
    # Each step kept its /opt/ml tree and its log in the run directory.
    run_dir = Path(record.run_dir)
    assert (run_dir / "steps/Train/opt/ml/input/config/hyperparameters.json").exists()
    assert "validation:accuracy=" in (run_dir / "steps/Train/log.txt").read_text()
    assert "Model package:  mlops-tabular version 1" in demo_run.out
    assert record.run_dir in demo_run.out
    # The registered version's evaluation report and model card, written and named.
    docs = home.root / "models/local/mlops-tabular/1"
    assert f"Report:         {docs / 'report.html'}" in demo_run.out
    assert f"Model card:     {docs / 'model-card.md'}" in demo_run.out
    assert (docs / "report.html").stat().st_size > 10_000 and (docs / "model-card.json").exists()
    assert package.metadata["DatasetSha256"] in (docs / "model-card.md").read_text()

    monkeypatch.setenv("MLOPS_HOME", str(home.root))
    assert main(["models", "approve", "1", "--description", "ok by test"]) == 0
    approved = LocalModelRegistry(home.registry).describe_model_package("mlops-tabular", 1)
    assert approved.approval_status == "Approved"


def _breast_cancer(path: Path) -> Path:
    """A second data set from another source, made messier: a category, blanks, an id column."""
    raw = load_breast_cancer(as_frame=True)
    frame = raw.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = np.where(frame.pop("target") == 1, "benign", "malignant")
    rng = np.random.default_rng(0)
    frame["clinic"] = rng.choice(["north", "south", "east"], size=len(frame))
    frame.loc[rng.choice(len(frame), 30, replace=False), "mean_radius"] = np.nan
    frame.insert(0, "patient_id", [f"P{i:05d}" for i in range(len(frame))])
    frame.to_csv(path, index=False)
    return path


def test_bring_your_own_classification_csv(home: Home, tmp_path: Path) -> None:
    data = _breast_cancer(tmp_path / "cancer.csv")
    assert main(["pipeline", "run", "--data", str(data), "--target", "diagnosis"]) == 0
    (package,) = packages(home)
    assert package.metrics["problem_type"] == "classification"
    assert package.metrics["quality_gate"]["value"] >= 0.9
    profile = next(Path(find_execution(home.runs, "latest").run_dir).rglob("profile/profile.json"))
    assert "patient_id" in profile.read_text()  # dropped as an identifier, and said so


def test_bring_your_own_regression_parquet(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "diabetes.parquet"
    load_diabetes(as_frame=True, scaled=False).frame.to_parquet(data)
    args = ["pipeline", "run", "--data", str(data), "--target", "target", "-p", "Estimator=linear"]
    # A lower-is-better gate: the threshold is an upper bound on the test RMSE.
    gate = ["-p", "QualityMetric=rmse", "-p", "QualityThreshold=500"]
    assert main([*args, *gate, "--verbose"]) == 0
    printed = capsys.readouterr()
    assert "Train | validation:r2=" in printed.err  # --verbose streams the job logs
    assert "must be at most the threshold 500 (lower is better" in printed.out
    (package,) = packages(home)
    assert package.metrics["problem_type"] == "regression"
    assert set(package.metrics["metrics"]) == {"rmse", "mae", "r2"}
    assert package.metrics["quality_gate"]["metric"] == "rmse"
    assert package.metrics["quality_gate"]["margin"] > 0


def test_unreachable_threshold_ends_at_the_fail_step(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo again, in the session run's home, with a threshold no model reaches: the steps
    before Evaluate come from the cache, the gate decides afresh."""
    home = demo_run.home
    monkeypatch.setenv("MLOPS_HOME", str(home.root))
    registered, before = packages(home), {r.execution_id for r in list_executions(home.runs)}
    assert main(["pipeline", "run", "--param", "QualityThreshold=0.999"]) == 1
    (record,) = [r for r in list_executions(home.runs) if r.execution_id not in before]
    assert record.status == "Failed"
    assert [s.name for s in record.steps][-2:] == ["QualityGate", "QualityGateFailed"]
    reason = record.steps[-1].failure_reason or ""
    assert "accuracy" in reason and "0.999" in reason and "nothing was registered" in reason
    assert "0.999" in capsys.readouterr().err
    assert packages(home) == registered  # nothing new


def _missing_target(path: Path) -> None:
    pd.read_csv(DEMO_DATA).drop(columns="species").to_csv(path, index=False)


def _empty(path: Path) -> None:
    path.write_text("")


def _garbage_numbers(path: Path) -> None:
    frame = pd.read_csv(DEMO_DATA, dtype=str)
    frame.loc[[3, 10, 50], "body_mass_g"] = ["heavy", "n/a?", "12kg"]
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_missing_target, "target column 'species' not found"),
        (_empty, "is empty"),
        (_garbage_numbers, "column 'body_mass_g' has non-numeric values"),
    ],
)
def test_corrupt_input_fails_preprocess_and_registers_nothing(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str], make, reason: str
) -> None:
    data = tmp_path / "input.csv"
    make(data)
    assert main(["pipeline", "run", "--data", str(data), "--target", "species"]) == 1
    record = find_execution(home.runs, "latest")
    fingerprint, step = record.steps  # the uncached Fingerprint step reads any bytes
    assert (fingerprint.name, fingerprint.status) == ("Fingerprint", "Succeeded")
    assert (step.name, step.status) == ("Preprocess", "Failed")
    assert reason in (step.failure_reason or "")
    assert reason in capsys.readouterr().err.replace("\n", " ")
    failure_file = Path(record.run_dir) / "steps/Preprocess/opt/ml/output/failure"
    assert reason in failure_file.read_text()
    assert packages(home) == []


def test_dataset_uri_depends_on_names_as_well_as_bytes(tmp_path: Path) -> None:
    from mlops.local import upload_dataset

    store = LocalObjectStore(tmp_path / "store")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "first.csv").write_text("a,b\n1,2\n")
    first = upload_dataset(store, folder)
    (folder / "first.csv").rename(folder / "renamed.csv")
    second = upload_dataset(store, folder)
    assert first != second
    assert [p.name for p in store.path_for(second).iterdir()] == ["renamed.csv"]


@pytest.mark.parametrize("shape", ["file", "folder"])
def test_a_data_set_is_read_once_to_upload_it(
    shape: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops import store as store_module
    from mlops.local import upload_dataset
    from sagemaker_jobs import digests

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("a,b\n1,2\n")
    (folder / "b.csv").write_text("a,b\n3,4\n")
    hashed: list[str] = []
    real = digests.file_sha256

    def counted(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(digests, "file_sha256", counted)
    monkeypatch.setattr(store_module, "file_sha256", counted)
    store = LocalObjectStore(tmp_path / "store")
    uri = upload_dataset(store, folder if shape == "folder" else folder / "a.csv")
    assert sorted(hashed) == (["a.csv", "b.csv"] if shape == "folder" else ["a.csv"])
    assert store.digest(uri)  # stored, with its hash recorded


@pytest.mark.slow
def test_preprocess_writes_the_eda_report_beside_the_profile(demo_run: DemoRun) -> None:
    from mlops.store import LocalObjectStore
    from sagemaker_jobs.eda import EDA_FILE

    preprocess = next(s for s in demo_run.record.steps if s.name == "Preprocess")
    profile = LocalObjectStore(demo_run.home.store).path_for(str(preprocess.outputs["profile"]))
    text = (profile / EDA_FILE).read_text(encoding="utf-8")
    assert "Exploratory data analysis: penguins.csv" in text and "target species" in text
