"""names(project, stage): the one place for physical names, as the CLI sees them too."""

from __future__ import annotations

import mlops.aws
from mlops.aws import Stage
from mlops.stages import DEFAULT_PROJECT, names


def test_the_cli_reads_the_build_stages_group_and_pipeline_for_every_stage() -> None:
    assert mlops.aws.DEFAULT_PROJECT == DEFAULT_PROJECT  # mlops.aws keeps stages unimported
    for stage in ("dev", "staging", "prod"):
        loaded = Stage.load(stage)
        assert (loaded.model_package_group, loaded.pipeline_name) == (DEFAULT_PROJECT,) * 2
        assert loaded.build_names == names(stage="dev")
        assert loaded.names.endpoint == f"mlops-tabular-{stage}"


def test_per_stage_and_per_project_names_differ_where_the_resource_does() -> None:
    dev, prod = names(stage="dev"), names(stage="prod")
    other = names("churn", "prod")
    assert dev.pipeline == prod.pipeline  # built once per project
    assert dev.foundation_stack != prod.foundation_stack
    assert prod.bucket("artifacts", "1", "r") != dev.bucket("artifacts", "1", "r")
    assert other.endpoint != prod.endpoint and other.deploy_stack != prod.deploy_stack
    assert other.monitor_role != prod.monitor_role and len(other.monitor_role) <= 64
    assert other.parameter("model-package-arn") == "/mlops/churn/prod/model-package-arn"
