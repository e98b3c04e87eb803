"""Defect 9: retraining on new data under the same InputDataUri must not reuse stale steps.

SageMaker's step cache compares argument values, not the bytes behind an S3 URI ("Caching
pipeline steps", https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-caching.html), and
the local cache now decides the same way, so these tests see what AWS would do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops.api_requests import pipeline_requests
from mlops.executor.cache import KEY_ATTRIBUTES
from mlops.executor.runner import LocalPipelineExecutor
from mlops.home import Home
from mlops.local import DEMO_DATA, DEMO_TARGET, LOCAL_IMAGE
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore
from sagemaker_jobs import fingerprint, preprocess
from sagemaker_jobs.digests import file_sha256


def test_the_data_hash_is_an_argument_of_the_first_cached_step(
    local_definition: dict[str, Any],
) -> None:
    steps = {s["Name"]: s for s in local_definition["Steps"]}
    assert not steps["Fingerprint"].get("CacheConfig", {}).get("Enabled")  # runs every time
    assert steps["Preprocess"]["CacheConfig"]["Enabled"]
    argument = steps["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"][-1]
    assert argument["Std:JsonGet"]["PropertyFile"] == {
        "Get": "Steps.Fingerprint.PropertyFiles.DataFingerprint"
    }
    # In the request SageMaker compares, that argument holds the hash (stood in for here).
    planned = {r.step: r for r in pipeline_requests(local_definition, {})}
    key = {a: planned["Preprocess"].request.get(a) for a in KEY_ATTRIBUTES["Processing"]}
    arguments = key["AppSpecification"]["ContainerArguments"]
    assert arguments[-2] == "--dataset-sha256" and len(arguments[-1]) == 64
    # Fingerprint reads the very input Preprocess reads.
    assert (
        planned["Fingerprint"].request["ProcessingInputs"][0]["S3Input"]["S3Uri"]
        == (planned["Preprocess"].request["ProcessingInputs"][0]["S3Input"]["S3Uri"])
    )


def test_fingerprint_equals_the_hash_preprocess_records_and_preprocess_checks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "opt" / "ml"
    monkeypatch.setenv("MLOPS_OPT_ML", str(root))
    raw = root / "processing" / "input" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(DEMO_DATA, raw / "penguins.csv")
    assert fingerprint.main([]) == 0
    written = root / "processing" / "output" / "fingerprint" / "fingerprint.json"
    digest = json.loads(written.read_text())["dataset"]["sha256"]
    assert digest == file_sha256(DEMO_DATA)  # one file: its own sha256, as DatasetSha256
    assert preprocess.main(["--target", DEMO_TARGET, "--dataset-sha256", digest]) == 0
    # Data overwritten between the two steps: Preprocess refuses rather than mislabel it.
    assert preprocess.main(["--target", DEMO_TARGET, "--dataset-sha256", "0" * 64]) == 1
    failure = (root / "output" / "failure").read_text()
    assert "the input data changed during this execution" in failure


def test_new_bytes_under_the_same_uri_rerun_preprocess_and_the_same_bytes_reuse_it(
    home: Home, tmp_path: Path, local_definition: dict[str, Any]
) -> None:
    """The real definition's first two steps (what follows Preprocess reruns when its output
    URIs change: tests/mlops/test_cache.py). Without the Fingerprint argument the second run
    would reuse Preprocess, as SageMaker would."""
    definition = {**local_definition, "Steps": local_definition["Steps"][:2]}
    assert [s["Name"] for s in definition["Steps"]] == ["Fingerprint", "Preprocess"]
    store = LocalObjectStore(home.store)
    uri = "s3://mlops-local/datasets/latest/penguins.csv"  # what a drift rule starts with
    data = tmp_path / "penguins.csv"
    shutil.copy(DEMO_DATA, data)
    store.put(data, uri)
    executor = LocalPipelineExecutor(home, LocalModelRegistry(home.registry), image_uri=LOCAL_IMAGE)
    overrides = {"InputDataUri": uri, "TargetColumn": DEMO_TARGET}
    first = executor.run(definition, overrides)

    pd.read_csv(DEMO_DATA).sample(frac=0.8, random_state=1).to_csv(data, index=False)
    store.put(data, uri)  # new data, same URI
    second = executor.run(definition, overrides)
    assert [s.cache_hit for s in second.steps] == [None, None], "Preprocess reused old data"
    profile = store.path_for(second.steps[1].outputs["profile"]) / "profile.json"
    assert json.loads(profile.read_text())["dataset"]["sha256"] == file_sha256(data)

    third = executor.run(definition, overrides)  # the same bytes again: the cache still works
    assert [s.cache_hit for s in third.steps] == [None, second.execution_id]
    assert first.execution_id not in {s.cache_hit for s in third.steps}
