"""Hyperparameter parsing, the quality-gate metric choice and the model of every family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sagemaker_jobs.contract import JobError
from sagemaker_jobs.data import Schema
from sagemaker_jobs.hyperparameters import Hyperparameters, load, parse
from sagemaker_jobs.model import build_model

# parse --------------------------------------------------------------------------------------


def test_parse_turns_sagemaker_strings_into_typed_values() -> None:
    hp = parse(
        {
            "n_estimators": "100",
            "learning_rate": "0.05",
            "max_depth": "none",
            "estimator": "random_forest",
            "min_samples_leaf": " 3 ",
        }
    )

    assert hp.n_estimators == 100
    assert isinstance(hp.n_estimators, int)
    assert hp.learning_rate == 0.05
    assert hp.max_depth is None
    assert hp.estimator == "random_forest"
    assert hp.min_samples_leaf == 3


def test_parse_accepts_a_max_depth_and_json_quoted_strings() -> None:
    hp = parse({"max_depth": "7", "estimator": '"linear"', "regularization": 2})

    assert hp.max_depth == 7
    assert hp.estimator == "linear"
    assert hp.regularization == 2.0


def test_parse_treats_empty_values_as_defaults() -> None:
    hp = parse({"n_estimators": "", "learning_rate": "null", "max_depth": ""})

    assert hp == Hyperparameters()


def test_parse_ignores_sagemaker_and_private_entries() -> None:
    hp = parse(
        {
            "sagemaker_program": "train.py",
            "sagemaker_region": "eu-west-1",
            "_tuning_objective_metric": "validation:accuracy",
            "n_estimators": "10",
        }
    )

    assert hp == Hyperparameters(n_estimators=10)


def test_parse_rejects_an_unknown_name_and_lists_the_valid_ones() -> None:
    with pytest.raises(JobError) as caught:
        parse({"n_estimator": "10"})

    message = str(caught.value)
    assert "n_estimator" in message
    assert "Valid names:" in message
    for name in Hyperparameters.model_fields:
        assert name in message.split("Valid names:")[1]


@pytest.mark.parametrize(
    ("field", "value", "got"),
    [
        ("learning_rate", "2", "2"),
        ("learning_rate", "0", "0"),
        ("n_estimators", "0", "0"),
        ("max_depth", "0", "0"),
        ("min_category_fraction", "0.5", "0.5"),
        ("max_categories", "1", "1"),
        ("regularization", "-1", "-1"),
    ],
)
def test_parse_rejects_values_out_of_range_naming_the_field(
    field: str, value: str, got: str
) -> None:
    with pytest.raises(JobError, match="bad hyperparameters") as caught:
        parse({field: value})

    message = str(caught.value)
    assert f"{field}:" in message
    assert f"(got {got})" in message


def test_parse_rejects_an_unknown_estimator() -> None:
    with pytest.raises(JobError) as caught:
        parse({"estimator": "xgboost"})

    message = str(caught.value)
    assert "estimator:" in message
    assert "'xgboost'" in message


def test_parse_rejects_a_non_number_where_a_number_is_needed() -> None:
    with pytest.raises(JobError, match="n_estimators:") as caught:
        parse({"n_estimators": "many"})
    assert "'many'" in str(caught.value)


# load ---------------------------------------------------------------------------------------


def test_load_of_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    hp = load(tmp_path / "hyperparameters.json")

    assert hp == Hyperparameters()
    assert hp.estimator == "gradient_boosting"
    assert hp.n_estimators == 200


def test_load_of_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text("", encoding="utf-8")

    assert load(path) == Hyperparameters()


def test_load_parses_the_sagemaker_file(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text('{"n_estimators": "50", "sagemaker_program": "x"}', encoding="utf-8")

    assert load(path) == Hyperparameters(n_estimators=50)


def test_load_rejects_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text("n_estimators=50", encoding="utf-8")

    with pytest.raises(JobError, match=r"hyperparameters\.json is not valid JSON"):
        load(path)


def test_load_rejects_a_json_list(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text('["n_estimators", "50"]', encoding="utf-8")

    with pytest.raises(JobError, match="must hold a JSON object"):
        load(path)


# build_model --------------------------------------------------------------------------------

FEATURES = {"amount": "numeric", "colour": "categorical", "signup": "datetime"}


def _training_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "colour": [("red", "green", "blue")[i % 3] for i in range(n)],
            "signup": [f"2024-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}" for i in range(n)],
        }
    )
    frame.loc[[3, 10], "amount"] = np.nan
    frame.loc[[5, 20], "colour"] = np.nan
    frame.loc[[7], "signup"] = np.nan
    return frame


def _target(frame: pd.DataFrame, problem_type: str) -> pd.Series:
    signal = frame["amount"].fillna(0) + (frame["colour"] == "red")
    if problem_type == "classification":
        return pd.Series(np.where(signal > 0.3, "yes", "no"), name="label")
    return (signal * 2.0 + 1.0).rename("label")


NEW_ROWS = pd.DataFrame(
    {
        "amount": [0.5, np.nan, -1.0],
        "colour": ["purple", None, "red"],
        "signup": ["2025-06-01", "2024-02-03", None],
    }
)


@pytest.mark.parametrize("estimator", ["gradient_boosting", "random_forest", "linear"])
@pytest.mark.parametrize("problem_type", ["classification", "regression"])
def test_build_model_fits_and_predicts_rows_with_unseen_categories(
    estimator: str, problem_type: str
) -> None:
    frame = _training_frame()
    target = _target(frame, problem_type)
    classes = ["no", "yes"] if problem_type == "classification" else None
    schema = Schema("label", problem_type, dict(FEATURES), classes)  # type: ignore[arg-type]
    hp = Hyperparameters(estimator=estimator, n_estimators=10)  # type: ignore[arg-type]

    model = build_model(schema, hp)
    model.fit(frame, target)
    predicted = model.predict(NEW_ROWS)

    assert len(predicted) == len(NEW_ROWS)
    if problem_type == "classification":
        assert set(predicted) <= {"no", "yes"}
        assert list(model.classes_) == ["no", "yes"]
        assert model.predict_proba(NEW_ROWS).shape == (3, 2)
    else:
        assert np.isfinite(predicted.astype(float)).all()
    # One numeric, the colour as one code (gradient boosting) or up to three one-hot columns,
    # five date parts.
    names = list(model.named_steps["columns"].get_feature_names_out())
    assert "amount" in names
    assert [n for n in names if n.startswith("signup_")] == [
        "signup_year",
        "signup_month",
        "signup_day",
        "signup_dayofweek",
        "signup_epoch_days",
    ]
    if estimator == "gradient_boosting":
        assert "colour" in names
        assert list(model.named_steps["estimator"].is_categorical_) == [
            n == "colour" for n in names
        ]
    else:
        assert any(n.startswith("colour_") for n in names)


def test_build_model_uses_the_estimator_family_and_its_settings() -> None:
    schema = Schema("label", "regression", {"amount": "numeric"})

    boosting = build_model(schema, Hyperparameters(n_estimators=7, learning_rate=0.2))
    forest = build_model(schema, Hyperparameters(estimator="random_forest", max_depth=4))
    ridge = build_model(schema, Hyperparameters(estimator="linear", regularization=4.0))

    assert type(boosting.named_steps["estimator"]).__name__ == "HistGradientBoostingRegressor"
    assert boosting.named_steps["estimator"].max_iter == 7
    assert boosting.named_steps["estimator"].learning_rate == 0.2
    assert type(forest.named_steps["estimator"]).__name__ == "RandomForestRegressor"
    assert forest.named_steps["estimator"].max_depth == 4
    assert type(ridge.named_steps["estimator"]).__name__ == "Ridge"
    assert ridge.named_steps["estimator"].alpha == 0.25
    # Only the branches the schema needs are built.
    assert [name for name, *_ in boosting.named_steps["columns"].transformers] == ["numeric"]
