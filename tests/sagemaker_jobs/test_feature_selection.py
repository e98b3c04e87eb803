"""Training-time feature selection: the rules by default, importance:K on request, one record in
the manifest, and a server that takes the kept features and ignores the dropped ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from inference.handler import model_fn
from mlops.cli import main
from sagemaker_jobs import evaluate, feature_selection
from sagemaker_jobs.contract import ROOT_ENV, Paths
from tests.sagemaker_jobs.jobs import pack_model, run_preprocess, run_train

ROWS = 300


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    signal, other, noise = rng.normal(size=(3, ROWS))
    return pd.DataFrame(
        {
            "signal": signal,
            "constant": 7.0,
            "mostly_zero": [1.0] + [0.0] * (ROWS - 1),
            "signal_copy": signal,
            "other": other,
            "noise": noise,
            "kind": rng.choice(["a", "b", "c"], ROWS),
            "label": np.where(signal + 0.5 * other > 0, "yes", "no"),
        }
    )


@pytest.fixture
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "opt" / "ml"))
    return Paths(tmp_path / "opt" / "ml")


def _train(opt_ml: Paths, **hyperparameters: str) -> dict[str, Any]:
    assert run_preprocess(opt_ml, _table(), "label") == 0
    assert run_train(opt_ml, {"n_estimators": "20", **hyperparameters}) == 0
    manifest: dict[str, Any] = json.loads(
        (opt_ml.model_dir(env={}) / "manifest.json").read_text(encoding="utf-8")
    )
    return manifest


def test_the_rules_drop_constant_near_constant_and_duplicate_features(opt_ml: Paths) -> None:
    manifest = _train(opt_ml)
    record = manifest["feature_selection"]["training"]
    assert record["mode"] == "rules" and record["importance"] == {}  # importance is opt-in
    assert set(record["dropped"]) == {"constant", "mostly_zero", "signal_copy"}
    assert record["dropped"]["signal_copy"] == "duplicate: the same values as 'signal'"
    assert record["dropped"]["mostly_zero"].startswith("near_constant: ")
    assert record["kept"] == ["signal", "other", "noise", "kind"]
    assert [f["name"] for f in manifest["features"]] == record["kept"]  # what the model takes
    assert manifest["input_columns"][:4] == ["signal", "constant", "mostly_zero", "signal_copy"]
    assert manifest["format"] == 2
    assert manifest["inference"]["parity"]["passed"]  # the compiled form follows the selection


def test_importance_keeps_the_k_best_and_refits_on_them(opt_ml: Paths) -> None:
    manifest = _train(opt_ml, feature_selection="importance:2")
    record = manifest["feature_selection"]["training"]
    assert record["mode"] == "importance:2"
    assert record["kept"] == ["signal", "other"]  # the two that decide the label
    assert set(record["importance"]) == {"signal", "other", "noise", "kind"}
    assert "not in the top 2" in record["dropped"]["noise"]
    assert [f["name"] for f in manifest["features"]] == ["signal", "other"]
    pack_model(opt_ml)
    assert evaluate.main([]) == 0  # Evaluate scores the model on its kept features


def test_the_server_takes_every_input_column_and_ignores_the_dropped_ones(
    opt_ml: Paths,
) -> None:
    _train(opt_ml)
    handler = model_fn(opt_ml.model_dir(env={}))
    row = _table().drop(columns=["label"]).iloc[0]
    every = ",".join(str(v) for v in row.to_numpy())
    kept = ",".join(str(row[n]) for n in ["signal", "other", "noise", "kind"])
    record = {name: row[name] for name in ["signal", "other", "noise", "kind"]}
    answers = [
        handler.predict_fn(handler.input_fn(every.encode(), "text/csv")).labels,
        handler.predict_fn(handler.input_fn(kept.encode(), "text/csv")).labels,
        handler.predict_fn(
            handler.input_fn(json.dumps(record).encode(), "application/json")
        ).labels,
        handler.predict_fn(
            handler.input_fn(json.dumps({**record, "constant": 1}).encode(), "application/json")
        ).labels,
    ]
    assert all(answer == answers[0] for answer in answers)


def test_a_bad_mode_is_refused_before_any_job(
    home: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="importance:K"):
        feature_selection.parse_mode("importance:0")
    assert feature_selection.parse_mode("importance:3") == 3
    assert feature_selection.parse_mode("rules") is None
    assert main(["pipeline", "run", "-p", "FeatureSelection=top5"]) == 2
    assert "FeatureSelection 'top5' is not rules, or importance:K" in capsys.readouterr().err


def test_the_report_and_the_model_card_show_the_selection(opt_ml: Paths) -> None:
    from mlops.model_card.content import known_limits
    from sagemaker_jobs.report import _selection_sections

    manifest = _train(opt_ml)
    (section,) = _selection_sections(manifest)
    page = section.render()
    assert "Feature selection in training" in page and "duplicate: the same values as" in page
    limits = " ".join(known_limits({}, manifest, {}))
    assert "Feature selection in training (rules) dropped: constant (constant" in limits
    assert _selection_sections({"feature_selection": {}}) == []  # a format 1 manifest


def test_near_constant_is_judged_on_the_most_frequent_value_of_numbers_and_text() -> None:
    rows = 1000
    frame = pd.DataFrame(
        {
            "zero_995": [0.0] * 995 + [1.0, 2.0, 3.0, 4.0, 5.0],
            "zero_980": [0.0] * 980 + list(range(1, 21)),
            "spread": [float(i % 7) for i in range(rows)],
            "text_995": ["a"] * 995 + ["b"] * 5,
            "text_980": ["a"] * 980 + ["b"] * 20,
            "gaps_995": [None] * 500 + [7.0] * 495 + [1.0] * 5,  # 49.5% of the rows
        }
    )
    kinds = {n: "categorical" if n.startswith("text") else "numeric" for n in frame}
    dropped = feature_selection.training_rules(frame, kinds)
    assert sorted(dropped) == ["text_995", "zero_995"]
    assert dropped["zero_995"].startswith("near_constant: its most frequent value is 99.5% ")
    assert dropped["text_995"].startswith("near_constant: its most frequent value is 99.5% ")
