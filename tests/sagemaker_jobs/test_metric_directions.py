"""One direction table: the gate, the tuner and the experiment comparison agree on it."""

from __future__ import annotations

from sagemaker_jobs.metric_directions import direction, higher_is_better
from sagemaker_jobs.metrics import GATE_METRICS
from sagemaker_jobs.tuning import METRIC_DIRECTIONS


def test_the_gate_only_uses_metrics_that_maximize() -> None:
    # The condition step is "value >= threshold": a lower-is-better gate metric would invert it.
    for names in GATE_METRICS.values():
        assert all(higher_is_better(name) for name in names)


def test_prefixed_and_unknown_names() -> None:
    assert direction("validation:RMSE") == "Minimize" == METRIC_DIRECTIONS["validation:rmse"]
    assert METRIC_DIRECTIONS["validation:r2"] == "Maximize"
    assert higher_is_better("a_custom_score") and not higher_is_better("log_loss")
