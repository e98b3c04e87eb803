"""One direction table: the gate, the tuner and the experiment comparison agree on it."""

from __future__ import annotations

from sagemaker_jobs.metric_directions import (
    DIRECTIONS,
    GATE_RANGES,
    direction,
    higher_is_better,
)
from sagemaker_jobs.metrics import GATE_METRICS
from sagemaker_jobs.tuning import METRIC_DIRECTIONS


def test_every_gate_metric_has_a_direction_and_a_range() -> None:
    # The gate reads the direction from this one table: errors are upper bounds.
    for names in GATE_METRICS.values():
        assert all(name in DIRECTIONS and name in GATE_RANGES for name in names)
    assert not higher_is_better("rmse") and not higher_is_better("mae")
    assert higher_is_better("balanced_accuracy") and higher_is_better("f1_macro")


def test_prefixed_and_unknown_names() -> None:
    assert direction("validation:RMSE") == "Minimize" == METRIC_DIRECTIONS["validation:rmse"]
    assert METRIC_DIRECTIONS["validation:r2"] == "Maximize"
    assert higher_is_better("a_custom_score") and not higher_is_better("log_loss")
