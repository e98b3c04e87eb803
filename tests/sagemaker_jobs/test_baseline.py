"""Model Monitor baselines: the preprocess job writes statistics.json and constraints.json of the
train split in Model Monitor's shape, with header-less-CSV column names mapped back by schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sagemaker_jobs import preprocess
from sagemaker_jobs.baseline import read_baseline
from sagemaker_jobs.contract import ROOT_ENV, JobError, Paths


@pytest.fixture
def baseline_dir(tmp_path: Path, penguins: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the preprocess job in-process, as the pipeline's Preprocess step runs it."""
    opt_ml = Paths(tmp_path / "opt" / "ml")
    monkeypatch.setenv(ROOT_ENV, str(opt_ml.root))
    raw = opt_ml.map("/opt/ml/processing/input/raw")
    raw.mkdir(parents=True)
    penguins.to_csv(raw / "data.csv", index=False)
    assert preprocess.main(["--target", "species"]) == 0
    return opt_ml.map("/opt/ml/processing/output/baseline")


def test_preprocess_writes_model_monitor_statistics_of_the_train_split(baseline_dir: Path) -> None:
    stats = json.loads((baseline_dir / "statistics.json").read_text())
    train = pd.read_parquet(baseline_dir.parent / "train" / "train.parquet")
    assert stats["version"] == 0 and stats["dataset"] == {"item_count": float(len(train))}
    names = [f["name"] for f in stats["features"]]
    assert names == [f"_c{i}" for i in range(7)]  # the model's feature order, as Spark names CSV
    by_name = dict(zip(names, stats["features"], strict=True))

    island, bill, body_mass = by_name["_c0"], by_name["_c1"], by_name["_c4"]
    assert island["inferred_type"] == "String"
    strings = island["string_statistics"]
    assert strings["distinct_count"] == 3
    buckets = {b["value"]: b["count"] for b in strings["distribution"]["categorical"]["buckets"]}
    assert buckets == train["island"].value_counts().astype(float).to_dict()
    assert strings["common"] == {"num_present": len(train), "num_missing": 0}

    assert (bill["inferred_type"], body_mass["inferred_type"]) == ("Fractional", "Integral")
    numbers = bill["numerical_statistics"]
    column = train["bill_length_mm"]
    assert numbers["common"] == {
        "num_present": int(column.notna().sum()),
        "num_missing": int(column.isna().sum()),
    }
    assert numbers["mean"] == pytest.approx(column.mean())
    assert numbers["sum"] == pytest.approx(column.sum())
    assert numbers["std_dev"] == pytest.approx(column.std(ddof=0))
    assert (numbers["min"], numbers["max"]) == (column.min(), column.max())
    kll = numbers["distribution"]["kll"]
    assert sum(b["count"] for b in kll["buckets"]) == column.notna().sum()
    assert kll["buckets"][0]["lower_bound"] == column.min()
    assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    assert sorted(kll["sketch"]["data"][0]) == sorted(column.dropna().tolist())


def test_constraints_follow_the_statistics(baseline_dir: Path) -> None:
    limits = json.loads((baseline_dir / "constraints.json").read_text())
    by_name = {f["name"]: f for f in limits["features"]}
    assert by_name["_c0"]["string_constraints"] == {"domains": ["Biscoe", "Dream", "Torgersen"]}
    assert by_name["_c0"]["completeness"] == 1.0
    assert by_name["_c5"]["completeness"] < 1  # sex has missing values in the demo data
    assert by_name["_c1"]["num_constraints"] == {"is_non_negative": True}
    assert by_name["_c4"]["inferred_type"] == "Integral"
    config = limits["monitoring_config"]
    assert config["datatype_check_threshold"] == config["domain_content_threshold"] == 0.1
    assert config["distribution_constraints"]["categorical_drift_method"] == "LInfinity"


def test_reading_a_baseline_maps_columns_back_to_feature_names(baseline_dir: Path) -> None:
    baseline = read_baseline(baseline_dir)
    assert [(f.column, f.name, f.kind) for f in baseline.features][:2] == [
        ("_c0", "island", "categorical"),
        ("_c1", "bill_length_mm", "numeric"),
    ]
    assert len(baseline.feature("body_mass_g").values) == baseline.item_count - 1  # one missing

    for broken in ("{not json", '{"target": "species"}'):
        (baseline_dir / "schema.json").write_text(broken)
        with pytest.raises(JobError, match=r"schema\.json is not the schema preprocess writes"):
            read_baseline(baseline_dir)
    (baseline_dir / "schema.json").unlink()  # e.g. a baseline Model Monitor suggested itself
    assert read_baseline(baseline_dir).features[1].name == "_c1"
    (baseline_dir / "constraints.json").unlink()
    with pytest.raises(JobError, match=r"has no constraints\.json"):
        read_baseline(baseline_dir)


def test_the_pipeline_registers_the_preprocess_baseline_as_drift_check_baselines(
    local_definition: dict[str, Any],
) -> None:
    steps = {s["Name"]: s for s in local_definition["Steps"]}
    outputs = steps["Preprocess"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    (baseline,) = [o for o in outputs if o["OutputName"] == "baseline"]
    assert baseline["S3Output"]["LocalPath"] == "/opt/ml/processing/output/baseline"
    (register,) = [
        s for s in steps["QualityGate"]["Arguments"]["IfSteps"] if s["Type"] == "RegisterModel"
    ]
    quality = register["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"]
    reference = {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"
    }
    for kind, name in (("Statistics", "statistics.json"), ("Constraints", "constraints.json")):
        assert quality[kind]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [reference, name]}}


def test_a_baseline_of_a_tables_rows_is_the_baseline_of_those_rows_taken_out(
    penguins: pd.DataFrame,
) -> None:
    """Preprocess baselines the train part by its row numbers, a column at a time, instead of
    copying the part out of the table first."""
    from sagemaker_jobs import baseline, data

    dated = penguins.assign(seen=pd.date_range("2019-03-01", periods=len(penguins)).astype(str))
    table, schema = data.prepare(dated, data.DataSpec(target="species"))
    rows = np.random.default_rng(0).permutation(len(table))[:200]
    part = table.iloc[rows]

    assert baseline.statistics(table, schema, rows) == baseline.statistics(part, schema)
    by_rows = baseline.date_part_statistics(table, schema, rows)
    assert by_rows == baseline.date_part_statistics(part, schema) and by_rows["features"]
    assert baseline.statistics(table, schema, rows)["dataset"] == {"item_count": 200.0}
