"""What Train fits the estimator on: float32 matrices for the tree families, the column
preparation's own float64 output for linear models, and class labels that share their strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sagemaker_jobs import data
from sagemaker_jobs.hyperparameters import Hyperparameters
from sagemaker_jobs.model import build_model, estimator_matrix, training_inputs, training_matrix
from sagemaker_jobs.train import _target


def _prepared(penguins: pd.DataFrame) -> tuple[pd.DataFrame, data.Schema, pd.Series]:
    """The demo table with a date column: features, schema and labels."""
    penguins = penguins.assign(seen=pd.date_range("2020-01-01", periods=len(penguins)).astype(str))
    table, schema = data.prepare(penguins, data.DataSpec(target="species"))
    assert {"numeric", "categorical", "datetime"} <= set(schema.features.values())
    return table[list(schema.features)], schema, table[schema.target]


@pytest.mark.parametrize(
    ("estimator", "dtype"),
    [("gradient_boosting", np.float32), ("random_forest", np.float32), ("linear", np.float64)],
)
def test_the_training_matrix_is_the_preparation_in_the_families_dtype(
    penguins: pd.DataFrame, estimator: str, dtype: type
) -> None:
    frame, schema, _ = _prepared(penguins)
    hp = Hyperparameters(estimator=estimator)
    reference = build_model(schema, hp).steps[0][1].fit_transform(frame)  # float64

    columns = build_model(schema, hp).steps[0][1]
    matrix = training_matrix(columns, training_inputs(frame, schema, hp), hp)

    assert matrix.dtype == dtype
    # The same values, rounded once to float32 where the family learns from float32.
    np.testing.assert_array_equal(matrix, reference.astype(dtype))
    np.testing.assert_array_equal(estimator_matrix(columns, frame, hp), reference.astype(dtype))


def test_only_gradient_boosting_gets_float32_numbers_before_the_preparation(
    penguins: pd.DataFrame,
) -> None:
    """Its numbers pass through unprepared; forests and linear models impute and scale them,
    which must see the float64 values that prediction sees."""
    frame, schema, _ = _prepared(penguins)
    numeric = schema.columns_of("numeric")
    before = frame.copy()
    boosted = training_inputs(frame, schema, Hyperparameters(estimator="gradient_boosting"))
    assert (boosted[numeric].dtypes == np.float32).all()
    assert boosted.drop(columns=numeric).equals(frame.drop(columns=numeric))
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is left as it was
    for estimator in ("random_forest", "linear"):
        assert training_inputs(frame, schema, Hyperparameters(estimator=estimator)) is frame


def test_a_model_fitted_on_float32_predicts_from_the_raw_float64_rows(
    penguins: pd.DataFrame,
) -> None:
    frame, schema, labels = _prepared(penguins)
    hp = Hyperparameters(estimator="gradient_boosting", n_estimators=30)
    model = build_model(schema, hp)
    columns, estimator = model.steps[0][1], model.steps[1][1]
    estimator.fit(training_matrix(columns, training_inputs(frame, schema, hp), hp), labels)

    predicted = model.predict(frame)  # the served path: the fitted pipeline, float64 inputs
    assert set(predicted) <= set(labels) and (predicted == labels.to_numpy()).mean() > 0.9


def test_class_labels_share_one_string_per_class_and_numbers_pass_through() -> None:
    column = pd.Series(["b", "a", "b", "c", "a", "b"], dtype="str")
    target = _target(column)
    assert target.dtype == object and target.tolist() == column.tolist()
    assert len({id(cell) for cell in target}) == 3

    numbers = pd.Series([1.5, 2.0, -3.25])
    np.testing.assert_array_equal(_target(numbers), numbers.to_numpy())
