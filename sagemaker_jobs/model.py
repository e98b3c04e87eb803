"""The scikit-learn model: one ``Pipeline`` of column preparation and an estimator family."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from sagemaker_jobs.data import Schema
from sagemaker_jobs.features import date_part_names, date_parts, fill_missing_categories
from sagemaker_jobs.hyperparameters import Hyperparameters

# Histogram gradient boosting splits on a category's code natively; its codes must be below its
# 255 bins, so at most 255 categories a column reach it (the rest share the infrequent code).
NATIVE_MAX_CATEGORIES = 255


# The families that learn from float32 features: scikit-learn's forests convert their input to
# float32 themselves (to fit and to predict), and gradient boosting bins each feature into at
# most 255 bins (XGBoost stores features as float32 too). Train hands them float32 matrices, half
# the memory of float64 beside the estimator's own copies (gradient boosting's are float64 and
# about 2.5 times its input at 700k rows). Gradient boosting still predicts on float64, so only a
# value within float32 rounding of a split's threshold can fall on the other side than in
# training (the 1M-row benchmark's validation metrics were the same to six digits).
FLOAT32_ESTIMATORS = ("gradient_boosting", "random_forest")


def training_inputs(frame: pd.DataFrame, schema: Schema, hp: Hyperparameters) -> pd.DataFrame:
    """The raw columns the preparation is fitted on. For gradient boosting, whose numbers pass
    through unchanged, numeric columns are float32 already: the same values its matrix gets,
    and the preparation's copies of them half the size."""
    if hp.estimator != "gradient_boosting" or not (numeric := schema.columns_of("numeric")):
        return frame
    return frame.assign(**{name: frame[name].astype(np.float32) for name in numeric})


def _in_training_dtype(matrix: Any, hp: Hyperparameters) -> Any:
    return matrix.astype(np.float32) if hp.estimator in FLOAT32_ESTIMATORS else matrix


def training_matrix(columns: Any, frame: pd.DataFrame, hp: Hyperparameters) -> Any:
    """Fit the column preparation on ``frame``; return the matrix the estimator learns from."""
    return _in_training_dtype(columns.fit_transform(frame), hp)


def estimator_matrix(columns: Any, frame: pd.DataFrame, hp: Hyperparameters) -> Any:
    """The prepared matrix of ``frame`` (a fitted preparation) in the estimator's training dtype:
    gradient boosting's early-stopping rows are binned as the training rows were."""
    return _in_training_dtype(columns.transform(frame), hp)


def _estimator(problem_type: str, hp: Hyperparameters, categorical: list[int]) -> object:
    classify = problem_type == "classification"
    if hp.estimator == "gradient_boosting":
        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return cls(
            categorical_features=categorical or None,
            max_iter=hp.n_estimators,
            learning_rate=hp.learning_rate,
            max_depth=hp.max_depth,
            min_samples_leaf=max(hp.min_samples_leaf, 1),
            l2_regularization=hp.l2_regularization,
            random_state=hp.random_state,
        )
    if hp.estimator == "random_forest":
        cls = RandomForestClassifier if classify else RandomForestRegressor
        return cls(
            n_estimators=hp.n_estimators,
            max_depth=hp.max_depth,
            min_samples_leaf=hp.min_samples_leaf,
            random_state=hp.random_state,
            n_jobs=1,
        )
    if classify:
        return LogisticRegression(C=hp.regularization, max_iter=2000)
    return Ridge(alpha=1.0 / hp.regularization)


def _category_encoder(hp: Hyperparameters) -> OneHotEncoder | OrdinalEncoder:
    """Gradient boosting reads one code per category (an unseen category is NaN, which its
    trees send where missing values go): a 1M-row table fits 3x faster than on the one-hot
    matrix, in a third of the memory. Forests and linear models get one column per category."""
    if hp.estimator == "gradient_boosting":
        return OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            min_frequency=hp.min_category_fraction or None,
            max_categories=min(hp.max_categories, NATIVE_MAX_CATEGORIES),
        )
    return OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        min_frequency=hp.min_category_fraction or None,
        max_categories=hp.max_categories,
        sparse_output=False,
    )


def _number_steps(hp: Hyperparameters) -> list[SimpleImputer | StandardScaler]:
    """Median imputation and scaling, for the models that need them. Gradient boosting's trees
    need neither: they split on raw values and learn where missing values go (and the median
    imputer alone took 4 s of a 700k-row fit)."""
    if hp.estimator == "gradient_boosting":
        return []
    return [SimpleImputer(strategy="median"), StandardScaler()]


def build_model(schema: Schema, hp: Hyperparameters) -> Pipeline:
    """Numbers (imputed and scaled where the model needs it), categories filled and encoded
    (unknown ones tolerated), dates turned into numeric parts."""
    branches: list[tuple[str, Any, list[str]]] = []
    numeric = schema.columns_of("numeric")
    if numeric:
        steps = _number_steps(hp)
        branches.append(("numeric", make_pipeline(*steps) if steps else "passthrough", numeric))
    categorical = schema.columns_of("categorical")
    if categorical:
        branches.append(
            (
                "categorical",
                make_pipeline(
                    FunctionTransformer(fill_missing_categories, feature_names_out="one-to-one"),
                    _category_encoder(hp),
                ),
                categorical,
            )
        )
    dates = schema.columns_of("datetime")
    if dates:
        parts = FunctionTransformer(date_parts, feature_names_out=date_part_names)
        branches.append(
            (
                "datetime",
                make_pipeline(parts, *_number_steps(hp)),
                dates,
            )
        )
    columns = ColumnTransformer(branches, remainder="drop", verbose_feature_names_out=False)
    # The categorical branch's output columns: right after the numeric ones, one per column.
    codes = list(range(len(numeric), len(numeric) + len(categorical)))
    estimator = _estimator(schema.problem_type, hp, codes)
    return Pipeline([("columns", columns), ("estimator", estimator)])
