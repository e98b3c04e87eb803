"""Drift detection on captured traffic: captures written by the server's own capture writer,
a baseline built by the preprocess core, checks, the report in Chromium, and `mlops monitor`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.cli import main
from mlops.errors import MlopsError
from mlops.home import Home
from mlops.monitoring import (
    Captures,
    Thresholds,
    detect_drift,
    population_stability_index,
    read_captures,
)
from mlops.monitoring_report import write_report
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore
from sagemaker_jobs import data
from sagemaker_jobs.baseline import Baseline, read_baseline, write_baseline
from tests.browser import render
from tests.mlops.captures import as_requests, capture, shifted
from tests.mlops.conftest import DemoRun

GROUP = "mlops-tabular"
PREFIX = "s3://mlops-local/pipelines/mlops-tabular/20261128-000000-abcdef"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, data.Schema]:
    """The demo's train split baselined as preprocess does it, and the held-out feature rows."""
    from mlops.local import DEMO_DATA

    table, schema = data.prepare(pd.read_csv(DEMO_DATA), data.DataSpec(target="species"))
    train, validation, test = (
        table.iloc[rows] for rows in data.split(table, schema, validation=0.15, test=0.15, seed=42)
    )
    directory = tmp_path_factory.mktemp("split")
    train.to_csv(directory / "train.csv", index=False)
    (directory / "schema.json").write_text(json.dumps(schema.to_dict()))
    write_baseline(directory / "baseline", train, schema)
    holdout = pd.concat([validation, test])[list(schema.features)].reset_index(drop=True)
    return directory, holdout, schema


@pytest.fixture(scope="module")
def baseline(split: tuple[Path, pd.DataFrame, data.Schema]) -> Baseline:
    return read_baseline(split[0] / "baseline")


@pytest.fixture
def holdout(split: tuple[Path, pd.DataFrame, data.Schema]) -> pd.DataFrame:
    return split[1].copy()


def read(files: list[Path], baseline: Baseline) -> Captures:
    return read_captures(
        [(str(f), f.read_text()) for f in files], [f.name for f in baseline.features]
    )


def test_captures_from_the_training_distribution_raise_no_violation(
    tmp_path: Path, holdout: pd.DataFrame, baseline: Baseline
) -> None:
    captures = read(capture(tmp_path, as_requests(holdout)), baseline)
    assert (captures.records, captures.skipped, len(captures.frame)) == (4, {}, len(holdout))

    result = detect_drift(baseline, captures)
    assert result.violations == []
    assert all(f.present and f.psi < 0.2 for f in result.features)
    assert {f.test for f in result.features} == {"KS", "chi-square"}


def test_a_shifted_capture_names_exactly_the_shifted_features(
    tmp_path: Path, holdout: pd.DataFrame, baseline: Baseline
) -> None:
    result = detect_drift(
        baseline, read(capture(tmp_path, as_requests(shifted(holdout))), baseline)
    )
    assert [(v["feature_name"], v["constraint_check_type"]) for v in result.violations] == [
        ("island", "baseline_drift_check"),
        ("body_mass_g", "baseline_drift_check"),
    ]
    body_mass = next(f for f in result.features if f.name == "body_mass_g")
    assert body_mass.drifted and body_mass.psi > 1 and body_mass.p_value < 1e-6
    assert "body_mass_g (column _c4)" in result.violations[1]["description"]


def test_a_schema_broken_capture_gives_missing_and_extra_column_violations(
    tmp_path: Path, holdout: pd.DataFrame, baseline: Baseline
) -> None:
    broken = holdout.drop(columns=["sex"]).assign(colour="blue")
    records = broken.astype(object).where(broken.notna(), None).to_dict(orient="records")
    result = detect_drift(
        baseline, read(capture(tmp_path, [("application/json", json.dumps(records))]), baseline)
    )
    assert [(v["feature_name"], v["constraint_check_type"]) for v in result.violations] == [
        ("sex", "missing_column_check"),
        ("colour", "extra_column_check"),
    ]
    # Header-less CSV rows one value short: the last feature is the missing one.
    short = holdout.iloc[:, :-1].to_csv(header=False, index=False)
    result = detect_drift(
        baseline, read(capture(tmp_path / "csv", [("text/csv", short)]), baseline)
    )
    assert [(v["feature_name"], v["constraint_check_type"]) for v in result.violations] == [
        ("year", "missing_column_check")
    ]


def test_types_domains_and_completeness_are_checked_with_the_constraints_thresholds(
    tmp_path: Path, holdout: pd.DataFrame, baseline: Baseline
) -> None:
    bad = holdout.astype(object)
    bad.loc[: len(bad) // 4, "flipper_length_mm"] = "long"  # a quarter is text
    bad.loc[: len(bad) // 5, "island"] = "Atlantis"  # a fifth outside the domain
    bad.loc[: len(bad) // 2, "bill_depth_mm"] = None  # half missing
    body = bad.to_csv(header=False, index=False)
    result = detect_drift(baseline, read(capture(tmp_path, [("text/csv", body)]), baseline))
    checks = {(v["feature_name"], v["constraint_check_type"]) for v in result.violations}
    assert {
        ("flipper_length_mm", "data_type_check"),
        ("island", "categorical_values_check"),
        ("bill_depth_mm", "completeness_check"),
    } <= checks
    assert not any(check == "missing_column_check" for _, check in checks)
    completeness = next(f for f in result.features if f.name == "bill_depth_mm").completeness
    assert completeness == pytest.approx(0.5, abs=0.02)


def test_undecodable_records_are_counted_and_no_rows_is_an_error(
    tmp_path: Path, baseline: Baseline
) -> None:
    files = capture(tmp_path, [("application/x-npy", "\x93NUMPY"), ("text/csv", "Dream,1")])
    with files[0].open("a") as broken:
        broken.write("not json\n")
    captures = read(files, baseline)
    assert captures.records == 3 and len(captures.frame) == 1
    assert sorted(captures.skipped) == [
        "content type 'application/x-npy' is not decoded for monitoring",
        "malformed capture record",
    ]
    names = [f.name for f in baseline.features]
    recent = [(str(f), f.read_text()) for f in capture(tmp_path / "new", [("text/csv", "a,1")])]
    assert read_captures(recent, names, since="2000-01-01T00:00:00Z").records == 1
    with pytest.raises(MlopsError, match="no records since 2999"):
        read_captures(recent, names, since="2999-01-01T00:00:00Z")

    npy_only = capture(tmp_path / "npy", [("application/x-npy", "\x93NUMPY")])
    with pytest.raises(MlopsError, match="none of the 1 captured records decoded"):
        read(npy_only, baseline)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    same = population_stability_index(np.array([10.0, 20, 30]), np.array([1.0, 2, 3]))
    small = population_stability_index(np.array([10.0, 20, 30]), np.array([12.0, 20, 28]))
    large = population_stability_index(np.array([10.0, 20, 30]), np.array([30.0, 20, 10]))
    assert same == pytest.approx(0) and 0 < small < 0.1 < large


def test_the_drift_report_renders_every_plot_in_chromium(
    tmp_path: Path, holdout: pd.DataFrame, baseline: Baseline
) -> None:
    captures = read(capture(tmp_path, as_requests(shifted(holdout))), baseline)
    result = detect_drift(baseline, captures)
    page = write_report(
        tmp_path / "drift-report.html",
        result,
        endpoint="demo",
        baseline_source="test",
        thresholds=Thresholds(),
        capture_files=captures.files,
    )
    text = page.read_text()
    assert "2 violation(s)" in text and "baseline_drift_check" in text
    rendered = render(page)
    assert rendered.images_total == len(baseline.features) == rendered.images_loaded


# The CLI, local target ------------------------------------------------------------------------
@pytest.fixture
def registered(home: Home, split: tuple[Path, pd.DataFrame, data.Schema]) -> LocalModelRegistry:
    """Version 1 with the baseline the pipeline registers; version 2 registered without one."""
    store = LocalObjectStore(home.store)
    store.put(split[0] / "baseline", f"{PREFIX}/preprocess/baseline")
    store.put(split[0] / "train.csv", f"{PREFIX}/preprocess/train/train.csv")
    store.put(split[0] / "schema.json", f"{PREFIX}/preprocess/train/schema.json")
    registry = LocalModelRegistry(home.registry)
    for drift_baseline in (
        {
            "statistics": f"{PREFIX}/preprocess/baseline/statistics.json",
            "constraints": f"{PREFIX}/preprocess/baseline/constraints.json",
        },
        None,
    ):
        registry.create_model_package(
            GROUP,
            model_data_url=f"{PREFIX}/train/train-x/output/model.tar.gz",
            image_uri="img",
            approval_status="Approved",
            metrics={},
            metadata={"PipelineExecutionId": PREFIX.rsplit("/", 1)[1]},
            content_types=[],
            response_types=[],
            drift_baseline=drift_baseline,
        )
    return registry


def test_cli_drift_on_a_local_endpoints_captures(
    home: Home,
    registered: LocalModelRegistry,
    holdout: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["monitor", "drift", "--endpoint", "demo", "--baseline", "1"]) == 3
    assert "deploy it with capture on" in capsys.readouterr().err

    captures = home.root / "endpoints" / "demo" / "capture"
    capture(captures, as_requests(holdout))
    out = tmp_path / "ok"
    args = ["monitor", "drift", "--endpoint", "demo", "--baseline", "1", "--output", str(out)]
    assert main([*args, "--hours", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(holdout)} captured rows" in printed and "Violations:" in printed
    assert json.loads((out / "constraint_violations.json").read_text()) == {"violations": []}
    assert (out / "drift-report.html").exists()

    capture(captures, as_requests(shifted(holdout)) * 3)  # the shift outweighs the normal rows
    out = tmp_path / "shifted"
    args = ["monitor", "drift", "--endpoint", "demo", "--baseline", "1", "--output", str(out)]
    assert main(args) == 1
    violations = json.loads((out / "constraint_violations.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations} == {"island", "body_mass_g"}
    assert "baseline_drift_check: body_mass_g" in capsys.readouterr().out
    # A deleted endpoint keeps its captures but no longer says which version it served.
    assert main(["monitor", "drift", "--endpoint", "demo"]) == 3
    assert "pass --baseline VERSION" in capsys.readouterr().err
    assert main(["monitor", "drift", "--endpoint", "demo", "--baseline", "latest"]) == 3


def test_cli_baseline_shows_a_registered_one_and_recomputes_a_missing_one(
    home: Home,
    registered: LocalModelRegistry,
    split: tuple[Path, pd.DataFrame, data.Schema],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["monitor", "baseline", "1"]) == 0
    printed = capsys.readouterr().out
    stored = LocalObjectStore(home.store).path_for(f"{PREFIX}/preprocess/baseline")
    assert f"Statistics:   {stored / 'statistics.json'}" in printed
    assert "(registered)" in printed

    assert main(["monitor", "baseline", "2", "--output", str(tmp_path / "b2")]) == 0
    assert "(recomputed)" in capsys.readouterr().out
    recomputed = json.loads((tmp_path / "b2" / "statistics.json").read_text())
    assert recomputed == json.loads((stored / "statistics.json").read_text())
    assert main(["monitor", "baseline", "9"]) == 3


@pytest.mark.slow
def test_the_demo_pipeline_endpoint_and_drift_check_end_to_end(
    demo_run: DemoRun,
    holdout: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pipeline run (the session's) -> approve -> deploy with capture -> invoke -> monitor drift
    (its version)."""
    from mlops.endpoints import LocalEndpoints

    home = demo_run.home
    monkeypatch.setenv("MLOPS_HOME", str(home.root))
    assert demo_run.code == 0
    assert main(["models", "approve", "1"]) == 0
    assert (
        main(["endpoint", "deploy", "--name", "demo", "--capture-percent", "100", "--workers", "1"])
        == 0
    )
    try:
        endpoints = LocalEndpoints(home, LocalModelRegistry(home.registry))
        for content_type, body in as_requests(holdout):
            endpoints.invoke("demo", body.encode(), content_type, "application/json")
        capsys.readouterr()
        assert main(["monitor", "drift", "--endpoint", "demo"]) == 0
        printed = capsys.readouterr().out
        assert f"{len(holdout)} captured rows" in printed
    finally:
        main(["endpoint", "delete", "demo"])
