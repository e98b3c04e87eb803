"""Compiled inference: parity with scikit-learn through the server's own handler, and the
fallback to scikit-learn when there is no compiled form or it disagrees."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from inference.compiled import Columns, CompiledModel
from inference.handler import ModelHandler, model_fn
from sagemaker_jobs import artifacts, compile, data
from sagemaker_jobs.hyperparameters import Hyperparameters
from sagemaker_jobs.model import build_model


def _table(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    """Numbers with gaps, categories with rare values and gaps, and dates in several forms."""
    rng = np.random.default_rng(seed)
    size = rng.normal(50, 15, rows)
    size[rng.random(rows) < 0.1] = np.nan
    colour = rng.choice(
        ["red", "green", "blue", "teal", "plum"], rows, p=[0.4, 0.3, 0.27, 0.02, 0.01]
    )
    colour = np.where(rng.random(rows) < 0.08, None, colour)
    days = rng.integers(0, 2000, rows)
    when = (pd.Timestamp("2019-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    when = np.where(rng.random(rows) < 0.05, None, when)
    score = np.nan_to_num(size, nan=50) / 10 + (colour == "red") * 2 + days / 500
    return pd.DataFrame(
        {
            "size": size,
            "ratio": rng.random(rows),
            "colour": colour,
            "flag": rng.choice([True, False], rows),
            "when": when,
            "score": score + rng.normal(0, 0.5, rows),
            "grade": np.where(score > 9, "high", np.where(score > 7, "mid", "low")),
        }
    )


def _train(
    tmp_path: Path, target: str, drop: str, hp: Hyperparameters, rows: int = 400
) -> tuple[Path, pd.DataFrame]:
    table, schema = data.prepare(_table(rows).drop(columns=[drop]), data.DataSpec(target=target))
    assert schema.features["when"] == "datetime" and schema.features["colour"] == "categorical"
    model = build_model(schema, hp).fit(table[list(schema.features)], table[target])
    section = compile.build(model, schema, tmp_path, table, "train", hp.compiled_inference)
    artifacts.save(model, schema, tmp_path, {"inference": section})
    return tmp_path, table


# Rows a client may send: unseen and rare categories, missing cells of every kind, dates in
# other formats, booleans and numbers where text is expected.
ODD_ROWS = [
    {"size": 40, "ratio": 0.5, "colour": "violet", "flag": True, "when": "2020-02-29"},
    {"size": None, "ratio": "", "colour": None, "flag": "NA", "when": None},
    {"size": "61.5", "ratio": "0.25", "colour": "plum", "flag": "TRUE", "when": "03/04/2021"},
    {"size": 1e6, "ratio": -3, "colour": " teal ", "flag": False, "when": "2024-07-01 10:30:00"},
    {"size": "nan", "ratio": 0.9, "colour": "missing", "flag": 1, "when": "2022/05/06"},
    {"size": 55, "ratio": 0.1, "colour": 7, "flag": "false", "when": "2031-12-31"},
]


def _both(model_dir: Path) -> tuple[ModelHandler, ModelHandler]:
    compiled = model_fn(model_dir)
    assert compiled.compiled is not None, compiled.serving
    plain = ModelHandler(compiled.model, compiled.features, compiled.classes, "sklearn")
    return compiled, plain


def _bodies(table: pd.DataFrame, names: list[str]) -> list[tuple[bytes, str]]:
    records = [*ODD_ROWS, *table[names].head(60).to_dict("records")]
    records = [{n: (None if pd.isna(r.get(n)) else r[n]) for n in names} for r in records]
    csv_text = pd.DataFrame(records)[names].to_csv(index=False, header=False)
    npy = np.array([["" if r[n] is None else str(r[n]) for n in names] for r in records])
    buffer = io.BytesIO()
    np.save(buffer, npy)
    return [
        (json.dumps(records).encode(), "application/json"),
        ("".join(json.dumps(r) + "\n" for r in records).encode(), "application/jsonlines"),
        (csv_text.encode(), "text/csv"),
        (buffer.getvalue(), "application/x-npy"),
    ]


def _assert_same(compiled: ModelHandler, plain: ModelHandler, body: bytes, kind: str) -> Any:
    fast = compiled.input_fn(body, kind)
    assert isinstance(fast, Columns)  # the compiled path: no DataFrame
    slow = plain.input_fn(body, kind)
    assert isinstance(slow, pd.DataFrame)
    classifier = compiled.classes is not None
    got = compiled.predict_fn(fast, probabilities=classifier)
    want = plain.predict_fn(slow, probabilities=classifier)
    if classifier:
        assert got.labels == want.labels
        assert got.classes == want.classes
        assert np.abs(np.subtract(got.probabilities, want.probabilities)).max() <= 1e-6
    else:
        assert np.allclose(got.labels, want.labels, rtol=compile.TOLERANCE, atol=0)
    return got


def test_classifier_parity_in_every_input_format(tmp_path: Path) -> None:
    model_dir, table = _train(tmp_path, "grade", "score", Hyperparameters(n_estimators=40))
    manifest = json.loads((model_dir / "manifest.json").read_text())
    check = manifest["inference"]["parity"]
    assert manifest["inference"]["runtime"] == "onnxruntime"
    assert check["label_agreement"] == 1.0 and check["max_probability_difference"] <= 1e-9
    compiled, plain = _both(model_dir)
    names = [f.name for f in compiled.features or []]
    for body, kind in _bodies(table, names):
        got = _assert_same(compiled, plain, body, kind)
        assert len(got.labels) == len(ODD_ROWS) + 60
    # The preprocessing itself is scikit-learn's to the bit, unseen categories and gaps included.
    columns = compiled.input_fn(json.dumps(ODD_ROWS).encode(), "application/json")
    assert compiled.compiled is not None
    frame = plain.input_fn(json.dumps(ODD_ROWS).encode(), "application/json")
    ours, sklearns = compiled.compiled.transform(columns), compiled.model[0].transform(frame)  # type: ignore[arg-type]
    assert np.array_equal(ours, sklearns, equal_nan=True)  # an unseen category's code is NaN


def test_binary_and_regression_parity(tmp_path: Path) -> None:
    hp = Hyperparameters(n_estimators=30, max_depth=4)
    for target, drop in (("score", "grade"), ("flag", "grade")):
        model_dir, table = _train(tmp_path / target, target, drop, hp)
        compiled, plain = _both(model_dir)
        names = [f.name for f in compiled.features or []]
        for body, kind in _bodies(table, names)[:1]:
            _assert_same(compiled, plain, body, kind)
    regression = json.loads((tmp_path / "score" / "manifest.json").read_text())["inference"]
    assert regression["parity"]["max_value_difference"] <= compile.TOLERANCE


def test_an_estimator_without_compiled_form_is_served_by_scikit_learn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir, _ = _train(tmp_path, "grade", "score", Hyperparameters(estimator="linear"))
    section = json.loads((model_dir / "manifest.json").read_text())["inference"]
    assert section == {
        "runtime": "scikit-learn",
        "reason": "no compiled form: LogisticRegression has no compiled form (only histogram "
        "gradient boosting has one)",
    }
    assert not (model_dir / "trees.onnx").exists()
    with caplog.at_level(logging.INFO):
        handler = model_fn(model_dir)
    assert handler.compiled is None
    assert "served by scikit-learn: no compiled form: LogisticRegression" in caplog.text
    frame = handler.input_fn(json.dumps(ODD_ROWS).encode(), "application/json")
    assert isinstance(frame, pd.DataFrame)
    assert len(handler.predict_fn(frame).labels) == len(ODD_ROWS)


def test_a_compiled_form_that_disagrees_is_not_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = compile.compile_model

    def off_by_one(model: Any) -> compile.Compiled:
        compiled = real(model)
        compiled.spec["baseline"] = [b + 1.0 for b in compiled.spec["baseline"]]
        return compiled

    monkeypatch.setattr(compile, "compile_model", off_by_one)
    model_dir, _ = _train(tmp_path, "score", "grade", Hyperparameters(n_estimators=10))
    section = json.loads((model_dir / "manifest.json").read_text())["inference"]
    assert section["runtime"] == "scikit-learn"
    assert section["reason"] == "the compiled form disagreed with scikit-learn on the train split"
    assert section["parity"]["max_value_difference"] > compile.TOLERANCE
    assert not (model_dir / "compiled.json").exists()
    assert model_fn(model_dir).compiled is None


def test_turned_off_by_hyperparameter(tmp_path: Path) -> None:
    hp = Hyperparameters(n_estimators=5, compiled_inference=False)
    model_dir, _ = _train(tmp_path, "grade", "score", hp)
    handler = model_fn(model_dir)
    assert handler.compiled is None
    assert "compiled_inference=false" in handler.serving


def test_a_tampered_compiled_form_is_refused(tmp_path: Path) -> None:
    model_dir, _ = _train(tmp_path, "grade", "score", Hyperparameters(n_estimators=5))
    with (model_dir / "trees.onnx").open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(RuntimeError, match=r"trees\.onnx sha256 .* does not match the manifest"):
        model_fn(model_dir)


def _modes(trees: bytes) -> list[int]:
    node = onnx.load_from_string(trees).graph.node[0]
    modes = next(a.t for a in node.attribute if a.name == "nodes_modes")
    return onnx.numpy_helper.to_array(modes).tolist()


def _prepared(rows: int = 600) -> tuple[pd.DataFrame, data.Schema]:
    return data.prepare(_table(rows).drop(columns=["score"]), data.DataSpec(target="grade"))


def test_a_category_the_trees_never_saw_goes_where_missing_values_go(tmp_path: Path) -> None:
    table, schema = _prepared()
    features, target = table[list(schema.features)], table["grade"]
    model = build_model(schema, Hyperparameters(n_estimators=40, min_category_fraction=0))
    model.fit(features, target)  # the encoder gives every colour a code
    # The trees are fit again without the teal rows: teal keeps its code, the trees never saw it.
    seen = (features["colour"] != "teal").to_numpy()
    assert 0 < (~seen).sum() < len(seen)
    model[-1].fit(model[0].transform(features[seen]), target[seen])

    compiled = compile.compile_model(model)
    assert 6 in _modes(compiled.trees)  # categorical splits are BRANCH_MEMBER nodes
    check = compile.parity(model, CompiledModel(compiled.spec, compiled.trees), table, schema, "t")
    assert check["passed"], check


def test_a_package_compiled_with_one_hot_categories_still_serves() -> None:
    """Packages trained before gradient boosting read raw numbers and category codes carry
    format 1 (imputed and scaled numbers, one-hot blocks); the server still runs them through
    their compiled form."""
    table, schema = _prepared()
    # The columns as forests still get them, the trees of gradient boosting on them.
    model = build_model(schema, Hyperparameters(estimator="random_forest"))
    model.set_params(estimator=HistGradientBoostingClassifier(max_iter=30, random_state=0))
    model.fit(table[list(schema.features)], table["grade"])

    compiled = compile.compile_model(model)
    spec = json.loads(json.dumps(compiled.spec))  # as compiled.json holds it
    assert [b.get("encoding") for b in spec["blocks"]] == [None, "one_hot", None]
    assert all("fill" in spec["blocks"][i] for i in (0, 2))  # numbers and dates scaled
    assert spec["format"] == 2
    spec["format"] = 1
    del spec["blocks"][1]["encoding"]  # format 1 had one encoding and no key for it
    check = compile.parity(model, CompiledModel(spec, compiled.trees), table, schema, "t")
    assert check["passed"], check
    assert 6 not in _modes(compiled.trees)
