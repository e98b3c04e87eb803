"""Monitoring that sees every feature: date parts baselined and checked, dates in the profile
and report, unparseable dates refused by the server, near-unique text dropped by the one
feature-selection module, and folders whose files disagree on their header refused."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from inference.app import create_app
from inference.config import ServerSettings
from mlops.cli import main as mlops
from mlops.home import Home
from sagemaker_jobs import preprocess
from sagemaker_jobs.contract import ROOT_ENV, Paths
from tests.inference.conftest import call
from tests.mlops.captures import as_requests, capture
from tests.sagemaker_jobs.jobs import OUTPUT, imbalanced_with_dates, run_preprocess, run_train


@pytest.fixture
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "opt" / "ml"))
    return Paths(tmp_path / "opt" / "ml")


def _years_later(rows: pd.DataFrame, years: int) -> pd.DataFrame:
    when = pd.to_datetime(rows["ordered"]) + pd.DateOffset(years=years)
    return rows.assign(ordered=when.dt.strftime("%Y-%m-%d"))


def test_moved_dates_are_drift_that_monitor_drift_reports(
    opt_ml: Paths, home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_preprocess(opt_ml, imbalanced_with_dates(), "label") == 0
    baseline = opt_ml.map(f"{OUTPUT}/baseline")
    parts = json.loads((baseline / "date_parts.json").read_text())
    assert [f["feature"] for f in parts["features"]] == ["ordered.year", "ordered.dayofyear"]
    profile = json.loads(opt_ml.map(f"{OUTPUT}/profile/profile.json").read_text())
    dates = profile["datetime_summary"]["ordered"]
    assert dates["min"].startswith("2020-01") and dates["unparseable"] == 0
    # Captured requests: the held-out rows as sent, then the same rows 15 years later.
    holdout = pd.read_parquet(opt_ml.map(f"{OUTPUT}/test/test.parquet")).drop(columns="label")
    captures = home.root / "endpoints" / "demo" / "capture"
    capture(captures, as_requests(holdout))
    drift = ["monitor", "drift", "--endpoint", "demo", "--baseline", str(baseline)]
    assert mlops([*drift, "--output", str(tmp_path / "same")]) == 0
    capsys.readouterr()
    capture(captures, as_requests(_years_later(holdout, 15)) * 3)
    assert mlops([*drift, "--output", str(tmp_path / "moved")]) == 1
    violations = json.loads((tmp_path / "moved" / "constraint_violations.json").read_text())
    assert "ordered.year" in {v["feature_name"] for v in violations["violations"]}
    assert "baseline_drift_check: ordered.year" in capsys.readouterr().out


def test_an_unparseable_date_in_a_request_is_a_400(opt_ml: Paths) -> None:
    assert run_preprocess(opt_ml, imbalanced_with_dates(), "label") == 0
    assert run_train(opt_ml, {"n_estimators": "5"}) == 0
    app = create_app(ServerSettings(model_dir=opt_ml.model_dir(env={}), workers=1))
    ok = call(app, "POST", "/invocations", b"2021-03-04,1.5,0.2", {"Content-Type": "text/csv"})
    assert ok.status == 200
    empty = call(app, "POST", "/invocations", b",1.5,0.2", {"Content-Type": "text/csv"})
    assert empty.status == 200  # missing is allowed: the model imputes it
    bad = call(app, "POST", "/invocations", b"someday,1.5,0.2", {"Content-Type": "text/csv"})
    assert bad.status == 400
    assert "'ordered' is a date; 'someday' is not one" in json.loads(bad.body)["message"]


def _with_names(rows: int = 200) -> pd.DataFrame:
    table = imbalanced_with_dates(rows)
    # An item's name: most values distinct (as 304 of 398 were in the report).
    return table.assign(item=[f"item {i % int(rows * 0.8)}" for i in range(rows)])


def test_near_unique_text_is_dropped_warned_and_recorded(opt_ml: Paths) -> None:
    assert run_preprocess(opt_ml, _with_names(), "label") == 0
    schema = json.loads(opt_ml.map(f"{OUTPUT}/train/schema.json").read_text())
    assert "item" not in [f["name"] for f in schema["features"]]
    assert schema["dropped"] == {"item": "near_unique_text"}
    profile = json.loads(opt_ml.map(f"{OUTPUT}/profile/profile.json").read_text())
    (warning,) = profile["warnings"]
    assert "'item'" in warning and "--column-types item=categorical" in warning
    assert run_train(opt_ml, {"n_estimators": "5"}) == 0
    manifest = json.loads((opt_ml.model_dir(env={}) / "manifest.json").read_text())
    record = manifest["feature_selection"]
    assert record["dropped"] == {"item": "near_unique_text"}
    assert record["rules"]["near_unique_share"] == 0.7


def test_a_declared_column_type_keeps_near_unique_text(opt_ml: Paths) -> None:
    assert run_preprocess(opt_ml, _with_names(), "label", "--column-types", "item=categorical") == 0
    schema = json.loads(opt_ml.map(f"{OUTPUT}/train/schema.json").read_text())
    assert {"name": "item", "kind": "categorical"} in schema["features"]


def _folder(opt_ml: Paths, files: dict[str, str]) -> None:
    raw = opt_ml.map("/opt/ml/processing/input/raw")
    for name, text in files.items():
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        (raw / name).write_text(text)


def test_a_folder_whose_headers_differ_is_refused_naming_files_and_columns(
    opt_ml: Paths,
) -> None:
    rows = "".join(f"{i},{i % 2}\n" for i in range(30))
    _folder(opt_ml, {"2024/jan.csv": "x,label\n" + rows, "2024/feb.csv": "x2,label\n" + rows})
    assert preprocess.main(["--target", "label"]) == 1
    reason = opt_ml.failure_file.read_text()
    assert "against 2024/feb.csv" in reason and "2024/jan.csv lacks ['x2'] and adds ['x']" in reason
    assert "/opt/ml" not in reason and str(opt_ml.root) not in reason


def test_duplicate_header_names_are_an_error(opt_ml: Paths) -> None:
    _folder(opt_ml, {"data.csv": "x,x,label\n" + "".join(f"{i},1,{i % 2}\n" for i in range(30))})
    assert preprocess.main(["--target", "label"]) == 1
    reason = opt_ml.failure_file.read_text()
    assert reason.startswith("data.csv has duplicate column names ['x']")
