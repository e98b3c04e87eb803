"""Permutation importance: shuffling a feature's prepared columns, prepared once, gives the same
importances as shuffling the raw column and preparing every shuffled copy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sagemaker_jobs import compile, data, importance
from sagemaker_jobs.hyperparameters import Hyperparameters
from sagemaker_jobs.model import build_model
from tests.sagemaker_jobs.test_compile import _table


@pytest.mark.parametrize("estimator", ["gradient_boosting", "random_forest", "linear"])
def test_importance_on_prepared_columns_equals_shuffling_the_raw_columns(
    estimator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, schema = data.prepare(_table(500).drop(columns=["score"]), data.DataSpec("grade"))
    features = table[list(schema.features)]
    hp = Hyperparameters(estimator=estimator, n_estimators=20)  # type: ignore[arg-type]
    model = build_model(schema, hp).fit(features, table["grade"])
    kinds = dict(schema.features)
    assert set(kinds.values()) == {"numeric", "categorical", "datetime"}
    shuffled: list[str] = []  # what each ranking shuffled: prepared columns or raw ones
    real = importance._prepared_once

    def spy(*args: Any) -> Any:
        prepared = real(*args)
        shuffled.append(type(prepared[1]).__name__)
        return prepared

    monkeypatch.setattr(importance, "_prepared_once", spy)

    def ranking() -> importance.Importance:
        return importance.permutation_importance(
            model, features, table["grade"], scoring="balanced_accuracy", kinds=kinds
        )

    prepared = ranking()
    monkeypatch.setattr(compile, "column_blocks", _unsupported)
    raw = ranking()
    assert shuffled == ["ndarray", "DataFrame"]
    assert prepared.names == raw.names
    assert np.allclose(prepared.means, raw.means, rtol=0, atol=1e-12)
    assert np.allclose(prepared.stds, raw.stds, rtol=0, atol=1e-12)
    assert max(prepared.means) > 0.05  # a ranking, not all zeros


def _unsupported(model: object) -> None:
    raise compile.Unsupported("forced: shuffle the raw columns")
