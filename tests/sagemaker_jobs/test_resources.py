"""Each job's thread budget comes from the CPUs it really has, and it logs time and memory."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)
from threadpoolctl import threadpool_info

from sagemaker_jobs import preprocess
from sagemaker_jobs.contract import ROOT_ENV, Paths
from sagemaker_jobs.resources import available_cpus, cpu_budget, thread_budget


def test_the_budget_comes_from_the_first_setting_that_says() -> None:
    assert cpu_budget({"MLOPS_JOB_CPUS": "3", "OMP_NUM_THREADS": "1"}) == (3, "MLOPS_JOB_CPUS")
    assert cpu_budget({"OMP_NUM_THREADS": "1", "SM_NUM_CPUS": "8"}) == (1, "OMP_NUM_THREADS")
    assert cpu_budget({"SM_NUM_CPUS": "8"}) == (8, "SM_NUM_CPUS")
    assert cpu_budget({"SM_NUM_CPUS": "x"})[1] == "available CPUs"


def test_a_cgroup_quota_caps_the_available_cpus(tmp_path: Path) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")  # one CPU's worth of time per period
    assert available_cpus(quota) == 1
    quota.write_text("max 100000\n")
    assert available_cpus(quota) >= 1
    assert available_cpus(tmp_path / "absent") >= 1


def test_openmp_and_blas_run_within_the_budget() -> None:
    with thread_budget({"MLOPS_JOB_CPUS": "1"}):
        pools = threadpool_info()
        assert any(p["user_api"] == "openmp" for p in pools)
        assert all(p["num_threads"] == 1 for p in pools)


def test_a_job_logs_its_budget_time_and_peak_memory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    penguins: pd.DataFrame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "opt" / "ml"))
    monkeypatch.setenv("MLOPS_JOB_CPUS", "1")
    raw = Paths(tmp_path / "opt" / "ml").map("/opt/ml/processing/input/raw")
    raw.mkdir(parents=True)
    penguins.to_csv(raw / "data.csv", index=False)
    with caplog.at_level(logging.INFO):
        assert preprocess.main(["--target", "species"]) == 0
    assert "thread budget: 1 (MLOPS_JOB_CPUS) for OpenMP and BLAS" in caplog.text
    assert "preprocess finished in " in caplog.text and "MB after imports)" in caplog.text


def test_freed_memory_below_the_heaps_top_goes_back_to_the_system() -> None:
    """glibc keeps freed blocks below its heap's top resident; the release hands them back (run
    in a process of its own, whose heap holds nothing else)."""
    code = """
import json
from sagemaker_jobs import resources
blocks = [bytes(1000) for _ in range(60_000)]  # 60 MB of heap blocks, too big for pymalloc
survivor = bytes(1000)  # above them on the heap: its top cannot shrink by itself
del blocks
before = resources.resident_mb()
resources.release_freed_memory()
print(json.dumps([before, resources.resident_mb()]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = json.loads(done.stdout)
    assert before - after > 30, (before, after)  # most of the 60 MB
