"""Step caching in the local executor, on a small hand-made definition whose jobs are one-line
Python processes: A reads Raw and feeds B; C reads Other on its own."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops.errors import ExecutionFailed, MlopsError
from mlops.executor import cache
from mlops.executor.cache import StepCache, parse_duration
from mlops.executor.records import ExecutionRecord
from mlops.executor.runner import LocalPipelineExecutor
from mlops.home import Home
from mlops.local import LOCAL_IMAGE
from mlops.registry import LocalModelRegistry
from mlops.store import LocalObjectStore
from sagemaker_jobs.digests import file_sha256

RAW, OTHER = "s3://data/raw/a.csv", "s3://data/other/b.csv"
REAL_CODE_DIGEST = cache.code_digest
# Copies every input file to the output with a line added; fails if the file named in argv exists.
JOB = str(Path(__file__).with_name("cache_job.py"))


def _job(name: str, source: Any, *, cache: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "RoleArn": "arn:aws:iam::000000000000:role/mlops-local",
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 30,
                }
            },
            "AppSpecification": {
                "ImageUri": LOCAL_IMAGE,
                "ContainerEntrypoint": ["python3", JOB],
                "ContainerArguments": argv,
            },
            "ProcessingInputs": [
                {
                    "InputName": "in",
                    "S3Input": {
                        "S3Uri": source,
                        "LocalPath": "/opt/ml/processing/input",
                        "S3DataType": "S3Prefix",
                    },
                }
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "out",
                        "S3Output": {
                            # execution-specific, as the real pipeline's outputs are
                            "S3Uri": {
                                "Std:Join": {
                                    "On": "/",
                                    "Values": [
                                        "s3://data/runs",
                                        {"Get": "Execution.PipelineExecutionId"},
                                        name,
                                    ],
                                }
                            },
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
        },
        "CacheConfig": cache,
    }


def definition(
    cache: dict[str, Any] | None = None, broken_marker: str | None = None
) -> dict[str, Any]:
    cache = cache if cache is not None else {"Enabled": True, "ExpireAfter": "PT1H"}
    a_output = {"Get": "Steps.A.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}
    return {
        "PipelineName": "toy",
        "Parameters": [
            {"Name": "Raw", "Type": "String", "DefaultValue": RAW},
            {"Name": "Other", "Type": "String", "DefaultValue": OTHER},
        ],
        "Steps": [
            _job("A", {"Get": "Parameters.Raw"}, cache=cache, argv=[""]),
            _job("B", a_output, cache=cache, argv=[""]),
            _job("C", {"Get": "Parameters.Other"}, cache=cache, argv=[broken_marker or ""]),
        ],
    }


@pytest.fixture(autouse=True)
def job_code(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job code's hash, fixed: these jobs are one-liners, and the real sagemaker_jobs/ may
    be edited while the tests run. Append to the list to change it."""
    versions = ["code-v1"]
    monkeypatch.setattr(cache, "code_digest", lambda package: versions[-1])
    return versions


@pytest.fixture
def store(home: Home) -> LocalObjectStore:
    store = LocalObjectStore(home.store)
    _put(store, RAW, "x\n1\n")
    _put(store, OTHER, "y\n2\n")
    return store


def _put(store: LocalObjectStore, uri: str, text: str) -> None:
    source = store.root.parent.parent / "upload.csv"  # beside the home, not in it
    source.write_text(text, encoding="utf-8")
    store.put(source, uri)


def _executor(home: Home, use_cache: bool = True) -> LocalPipelineExecutor:
    return LocalPipelineExecutor(
        home,
        LocalModelRegistry(home.registry),
        image_uri=LOCAL_IMAGE,
        python=sys.executable,
        use_cache=use_cache,
    )


def _hits(record: ExecutionRecord) -> dict[str, str | None]:
    return {step.name: step.cache_hit for step in record.steps}


def test_a_repeated_run_reuses_every_step_and_its_outputs(
    home: Home, store: LocalObjectStore
) -> None:
    first = _executor(home).run(definition(), {})
    second = _executor(home).run(definition(), {})

    assert _hits(first) == {"A": None, "B": None, "C": None}
    assert _hits(second) == dict.fromkeys("ABC", first.execution_id)
    assert [s.outputs for s in second.steps] == [s.outputs for s in first.steps]
    assert first.execution_id in second.steps[1].outputs["out"]  # B reads A's earlier output
    assert not (Path(second.run_dir) / "steps" / "A" / "log.txt").exists()  # nothing ran
    # Lineage is recorded on a hit as on a run: what the step read and wrote, with hashes.
    a = second.steps[0]
    assert a.inputs == [{"name": "in", "uri": RAW, "sha256": store.digest(RAW)}]
    assert a.output_artifacts[0]["sha256"] == store.digest(first.steps[0].outputs["out"])
    assert a.image == LOCAL_IMAGE and a.code_sha256


def test_new_bytes_under_the_same_uri_are_reused_as_sagemaker_would_and_the_record_says_so(
    home: Home, store: LocalObjectStore
) -> None:
    """SageMaker's cache compares argument values, not the bytes behind a URI (its "Caching
    pipeline steps" page); the local cache decides alike and says where the data differ."""
    first = _executor(home).run(definition(), {})
    _put(store, OTHER, "y\n3\n")  # new bytes under the same URI: only C reads it
    second = _executor(home).run(definition(), {})
    assert _hits(second) == dict.fromkeys("ABC", first.execution_id)
    notes = {step.name: step.cache_note for step in second.steps}
    assert notes["A"] is None and notes["B"] is None
    assert notes["C"] == (
        f"reused although {OTHER} now holds other bytes than when {first.execution_id} ran: "
        "SageMaker's cache compares argument values, not the data behind a URI, so AWS would "
        "reuse it too; give new data a new URI"
    )
    # The record keeps the bytes it saw (lineage), even on the hit.
    assert second.steps[2].inputs[0]["sha256"] == store.digest(OTHER)


def test_a_new_uri_reruns_exactly_the_steps_downstream_of_it(
    home: Home, store: LocalObjectStore
) -> None:
    first = _executor(home).run(definition(), {})
    moved = "s3://data/other-v2/b.csv"
    _put(store, moved, "y\n3\n")
    second = _executor(home).run(definition(), {"Other": moved})  # only C reads it
    assert _hits(second) == {"A": first.execution_id, "B": first.execution_id, "C": None}
    reran = store.path_for(second.steps[2].outputs["out"]) / "b.csv"
    assert reran.read_text(encoding="utf-8") == "y\n3\nseen\n"

    raw = "s3://data/raw-v2/a.csv"
    _put(store, raw, "x\n9\n")  # A, and B through A's new output
    third = _executor(home).run(definition(), {"Raw": raw, "Other": moved})
    assert _hits(third) == {"A": None, "B": None, "C": second.execution_id}


def test_new_job_code_reruns_every_step(
    home: Home, store: LocalObjectStore, job_code: list[str]
) -> None:
    _executor(home).run(definition(), {})
    job_code.append("code-v2")  # what a changed sagemaker_jobs/ gives
    changed = _executor(home).run(definition(), {})
    assert _hits(changed) == dict.fromkeys("ABC")
    assert {s.code_sha256 for s in changed.steps} == {"code-v2"}


def test_the_job_code_hash_covers_names_and_bytes(tmp_path: Path) -> None:
    package = tmp_path / "jobs"
    (package / "sub").mkdir(parents=True)
    (package / "train.py").write_text("x = 1\n", encoding="utf-8")
    (package / "notes.txt").write_text("not code", encoding="utf-8")
    first = REAL_CODE_DIGEST(package)
    (package / "notes.txt").write_text("still not code", encoding="utf-8")
    assert REAL_CODE_DIGEST(package) == first
    (package / "train.py").write_text("x = 2\n", encoding="utf-8")
    second = REAL_CODE_DIGEST(package)
    (package / "train.py").rename(package / "sub" / "train.py")
    assert len({first, second, REAL_CODE_DIGEST(package)}) == 3


def test_a_library_upgrade_changes_the_job_code_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locally the image tag never changes, so an upgraded scikit-learn must miss the cache."""
    (tmp_path / "train.py").write_text("x = 1\n", encoding="utf-8")
    before = REAL_CODE_DIGEST(tmp_path)
    real = cache.metadata.version
    monkeypatch.setattr(
        cache.metadata, "version", lambda name: "99.0" if name == "scikit-learn" else real(name)
    )
    assert REAL_CODE_DIGEST(tmp_path) != before


def test_a_run_older_than_expire_after_is_not_reused(home: Home, store: LocalObjectStore) -> None:
    _executor(home).run(definition(), {})
    later = _executor(home)
    later.cache = StepCache(
        home.root / "cache", store, clock=lambda: datetime.now(UTC) + timedelta(minutes=61)
    )
    assert _hits(later.run(definition(), {})) == dict.fromkeys("ABC")


def test_no_cache_runs_every_step_and_its_results_feed_the_next_cached_run(
    home: Home, store: LocalObjectStore
) -> None:
    _executor(home).run(definition(), {})
    bypassed = _executor(home, use_cache=False).run(definition(), {})
    assert _hits(bypassed) == dict.fromkeys("ABC")
    assert _hits(_executor(home).run(definition(), {})) == dict.fromkeys(
        "ABC", bypassed.execution_id
    )


def test_caching_off_in_the_definition_runs_every_step(home: Home, store: LocalObjectStore) -> None:
    off = definition(cache={"Enabled": False})
    _executor(home).run(off, {})
    assert _hits(_executor(home).run(off, {})) == dict.fromkeys("ABC")
    assert not list((home.root / "cache").glob("*.json"))  # nor recorded for later


def test_only_succeeded_steps_are_reused(
    home: Home, store: LocalObjectStore, tmp_path: Path
) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    with pytest.raises(ExecutionFailed, match="broken on purpose"):
        _executor(home).run(definition(broken_marker=str(marker)), {})
    marker.unlink()  # the same arguments and inputs, now succeeding
    failed_first = _executor(home).run(definition(broken_marker=str(marker)), {})
    hits = _hits(failed_first)
    assert hits["A"] and hits["B"] and hits["C"] is None


def test_a_bad_expire_after_fails_the_step_with_what_to_write(
    home: Home, store: LocalObjectStore
) -> None:
    with pytest.raises(ExecutionFailed, match=r"Step A failed: .*'soon'.*such as P30D"):
        _executor(home).run(definition(cache={"Enabled": True, "ExpireAfter": "soon"}), {})


def test_a_cached_output_removed_from_the_store_makes_the_step_run_again(
    home: Home, store: LocalObjectStore
) -> None:
    first = _executor(home).run(definition(), {})
    for path in store.path_for(first.steps[2].outputs["out"]).iterdir():
        path.unlink()
    store.path_for(first.steps[2].outputs["out"]).rmdir()
    assert _hits(_executor(home).run(definition(), {}))["C"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P30D", timedelta(days=30)),
        ("PT1H", timedelta(hours=1)),
        ("PT16M", timedelta(minutes=16)),
        ("P1W", timedelta(weeks=1)),
        ("P30DT5H", timedelta(days=30, hours=5)),
        (None, None),
    ],
)
def test_expire_after_is_an_iso_8601_duration(text: str | None, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_the_entry_records_its_source_execution_and_input_hashes(
    home: Home, store: LocalObjectStore
) -> None:
    first = _executor(home).run(definition(), {})
    entries = [json.loads(p.read_text()) for p in (home.root / "cache").glob("*.json")]
    assert len(entries) == 3 and {e["execution_id"] for e in entries} == {first.execution_id}
    raw_entry = next(e for e in entries if e["inputs"][0]["uri"] == RAW)
    assert raw_entry["inputs"][0]["sha256"] == file_sha256(store.path_for(RAW))
    with pytest.raises(MlopsError):
        parse_duration("P")


# what the CLI shows and passes ------------------------------------------------------------


def test_the_run_output_and_the_aws_steps_name_the_reused_execution() -> None:
    import io

    from rich.console import Console

    from mlops.cloud import _step
    from mlops.commands.pipeline import ConsoleReporter
    from mlops.executor.records import StepRecord

    buffer = io.StringIO()
    reporter = ConsoleReporter(Console(file=buffer, width=200), verbose=False)
    hit = StepRecord(name="Train", type="Training", status="Succeeded", cache_hit="20261128-a")
    hit.end_time = hit.start_time
    reporter.step_finished(hit)
    assert "Train" in buffer.getvalue() and "cache hit: reused 20261128-a" in buffer.getvalue()
    hit.cache_note = "reused although s3://b/[x].csv now holds other bytes"
    reporter.step_finished(hit)
    assert "note: reused although s3://b/[x].csv now holds other bytes" in buffer.getvalue()

    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/mlops-tabular/execution/exec41"
    cloud = _step({"StepName": "Train", "StepStatus": "Succeeded", "Metadata": {},
                   "CacheHitResult": {"SourcePipelineExecutionArn": arn}})  # fmt: skip
    assert cloud.cache_hit == "exec41"
    assert _step({"StepName": "Train", "Metadata": {}}).cache_hit == ""


def test_no_cache_reaches_the_executor(
    home: Home, monkeypatch: pytest.MonkeyPatch, local_definition: dict[str, Any]
) -> None:
    from mlops.cli import main
    from mlops.executor import runner
    from sagemaker_jobs import pipeline

    seen: list[bool] = []

    class Recording(LocalPipelineExecutor):
        def run(
            self, definition: dict[str, Any], overrides: dict[str, str], pipeline_name: str = ""
        ) -> ExecutionRecord:
            seen.append(self.use_cache)
            raise MlopsError("stopped before running anything")

    monkeypatch.setattr(runner, "LocalPipelineExecutor", Recording)
    # the definition built once per session, not once per command
    monkeypatch.setattr(
        pipeline, "definition_json", lambda settings, cache=None: json.dumps(local_definition)
    )
    assert main(["pipeline", "run", "--no-track"]) == 2
    assert main(["pipeline", "run", "--no-track", "--no-cache"]) == 2
    assert seen == [True, False]


# the key: SageMaker's attributes per step type ---------------------------------------------


def _key(store: LocalObjectStore, step_type: str, arguments: dict[str, Any]) -> str | None:
    spec = {"Name": "S", "Type": step_type, "CacheConfig": {"Enabled": True}}
    identity = cache.identify(spec, arguments, pipeline="p", store=store, code_sha256="c")
    return identity.key


def test_output_locations_are_not_in_the_key_but_arguments_are(store: LocalObjectStore) -> None:
    def processing(output: str, argv: list[str]) -> dict[str, Any]:
        return {
            "AppSpecification": {"ImageUri": LOCAL_IMAGE, "ContainerArguments": argv},
            "ProcessingInputs": [{"InputName": "raw", "S3Input": {"S3Uri": RAW}}],
            "ProcessingOutputConfig": {"Outputs": [{"S3Output": {"S3Uri": output}}]},
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large"}},
        }

    base = _key(store, "Processing", processing("s3://data/runs/1/out", ["--a"]))
    assert base == _key(store, "Processing", processing("s3://data/runs/2/out", ["--a"]))
    assert base != _key(store, "Processing", processing("s3://data/runs/1/out", ["--b"]))


def test_a_tuning_step_keys_on_its_config_and_training_definition(
    store: LocalObjectStore,
) -> None:
    def tuning(output: str, max_jobs: int, ranges: dict[str, Any]) -> dict[str, Any]:
        return {
            "HyperParameterTuningJobConfig": {
                "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs}
            },
            "TrainingJobDefinition": {
                "AlgorithmSpecification": {"TrainingImage": LOCAL_IMAGE},
                "HyperParameterRanges": ranges,
                "InputDataConfig": [
                    {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": OTHER}}}
                ],
                "OutputDataConfig": {"S3OutputPath": output},
            },
        }

    ranges = {"IntegerParameterRanges": [{"Name": "depth", "MinValue": "2", "MaxValue": "8"}]}
    base = _key(store, "Tuning", tuning("s3://data/runs/1", 8, ranges))
    assert base == _key(store, "Tuning", tuning("s3://data/runs/2", 8, ranges))
    assert base != _key(store, "Tuning", tuning("s3://data/runs/1", 9, ranges))
    assert base != _key(store, "Tuning", tuning("s3://data/runs/1", 8, {}))
    spec = {"Name": "T", "Type": "Tuning", "CacheConfig": {"Enabled": True}}
    identity = cache.identify(
        spec, tuning("s3://x", 8, ranges), pipeline="p", store=store, code_sha256="c"
    )
    assert [(a.name, a.uri) for a in identity.inputs] == [("train", OTHER)]
    assert identity.image == LOCAL_IMAGE


def test_a_missing_input_leaves_the_step_unmatched(store: LocalObjectStore) -> None:
    arguments = {"ProcessingInputs": [{"InputName": "raw", "S3Input": {"S3Uri": "s3://data/no"}}]}
    assert _key(store, "Processing", arguments) is None  # it runs, and fails naming the input
