"""What a job may use and what it used: its thread budget, the environment that returns its
freed memory, and its memory for the log.

Thread budget. OpenMP (scikit-learn's histogram gradient boosting) and BLAS start one thread
per CPU the machine reports, which in a container or beside other jobs is more than the job
really has; oversubscribed, a fit that takes 0.4 s took 16 s on a busy 2-core machine. The
budget is, first that wins: ``MLOPS_JOB_CPUS`` (set by hand), ``OMP_NUM_THREADS`` (the local
executor's share when it runs jobs side by side), ``SM_NUM_CPUS`` (SageMaker training: the
instance's CPUs), else the CPUs this process may run on (affinity and the cgroup's CPU quota:
a processing container sees its instance's). ``threadpoolctl`` applies it to OpenMP and BLAS.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import math
import os
import resource
from collections.abc import Iterator, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

BUDGET_ENV = ("MLOPS_JOB_CPUS", "OMP_NUM_THREADS", "SM_NUM_CPUS")
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this process may run on: its affinity, capped by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    return cpus


def cpu_budget(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """The job's thread budget and where it came from."""
    env = os.environ if env is None else env
    for name in BUDGET_ENV:
        with contextlib.suppress(ValueError):
            if (value := int(env.get(name, "") or 0)) > 0:
                return value, name
    return available_cpus(), "available CPUs"


@contextlib.contextmanager
def thread_budget(env: Mapping[str, str] | None = None) -> Iterator[int]:
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    threads, source = cpu_budget(env)
    log.info("thread budget: %d (%s) for OpenMP and BLAS", threads, source)
    with threadpool_limits(limits=threads):
        yield threads


# The environment a job process starts with (the image's ENV, the local executor's job and fork
# server environment), so large freed buffers go back to the system: Arrow's default allocator
# (mimalloc) keeps what it read a Parquet split into, and glibc's heap keeps large arrays once a
# freed one has raised its mmap threshold; a job's peak memory counts what they keep. Arrays of
# 4 MB and more are mapped and unmapped (a fit's per-iteration buffers stay below; at 128 kB
# the fit was 20% slower). A 700k-row fit: peak 1,170 -> 757 MB, time the same (3 runs each).
# Read when the process starts, so they cannot be set from inside it.
MEMORY_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_MMAP_THRESHOLD_": "4194304"}


def resident_mb() -> float:
    """This process's resident memory now (Linux), 0 where unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def release_freed_memory() -> None:
    """Collect garbage and hand the heap's free pages back to the system (glibc's
    ``malloc_trim``; nothing where the C library has none). glibc returns only the top of its
    heap by itself: after pandas' CSV parser let go of its chunks, a 1M-row read kept 361 MB
    resident for a 212 MB table (207 MB after a trim), and every later step of the job stacked
    its own peak on what was kept."""
    gc.collect()  # plots and reports leave reference cycles (the EDA page: 17 MB at 1M rows)
    # The process's own symbols hold the C library's: no library lookup (find_library runs
    # ldconfig) on every call.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
