"""Jobs forked from the warm server see what a new interpreter would, and stop the same way."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlops.executor import container, forked
from mlops.executor.outcomes import StepFailed

JOB = """\
import atexit, os, sys, tempfile
atexit.register(lambda: print("atexit ran", flush=True))
print("argv", sys.argv[1:])
print("name", __name__)
print("cwd", os.getcwd())
print("env", os.environ.get("JOB_SETTING"), os.environ.get("LEAKED_FROM_SERVER"))
print("tmp", tempfile.gettempdir())
print("own group", os.getpgid(0) == os.getpid())
print("parent", os.getppid())
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[-1]))
"""


def _run(argv: list[str], step_dir: Path, env: dict[str, str]) -> tuple[list[str], int | None]:
    lines: list[str] = []
    try:
        container.run_container("Job", argv, step_dir, env, lambda _, line: lines.append(line))
    except StepFailed as failed:
        assert "exited with code" in str(failed)
        return lines, int(str(failed).split("exited with code ")[1].split(";")[0])
    return lines, 0


@pytest.fixture
def step_dir(tmp_path: Path) -> Path:
    (tmp_path / "step").mkdir()
    (tmp_path / "step" / "job_module.py").write_text(JOB, encoding="utf-8")
    return tmp_path / "step"


@pytest.mark.parametrize("form", ["module", "script"])
def test_a_forked_job_has_its_own_argv_cwd_env_group_and_exit_code(
    form: str, step_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKED_FROM_SERVER", "yes")  # the caller's env, but not the job's
    forked.warm()
    monkeypatch.delenv("LEAKED_FROM_SERVER")
    job_tmp = tmp_path / "job-tmp"
    job_tmp.mkdir()
    entry = ["-m", "job_module"] if form == "module" else [str(step_dir / "job_module.py")]
    assert forked.available(sys.executable, entry)
    lines, code = _run(
        [sys.executable, *entry, "a b", "3"],
        step_dir,
        {"JOB_SETTING": "set", "TMPDIR": str(job_tmp)},
    )
    assert code == 3
    assert lines[:7] == [
        "argv ['a b', '3']",
        "name __main__",
        f"cwd {step_dir}",
        "env set None",
        f"tmp {job_tmp}",
        "own group True",
        lines[6],
    ]
    assert int(lines[6].split()[1]) != os.getpid()  # forked from the server, not started here
    assert lines[7:] == ["to stderr", "atexit ran"]
    assert (step_dir / "log.txt").read_text(encoding="utf-8").splitlines() == lines


def test_without_the_fork_server_the_job_is_a_new_interpreter(
    step_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(forked.DISABLE_ENV, "0")
    assert not forked.available(sys.executable, ["-m", "job_module"])
    lines, code = _run([sys.executable, "-m", "job_module", "0"], step_dir, {})
    assert code == 0
    assert f"parent {os.getpid()}" in lines


def test_other_commands_are_not_forked() -> None:
    assert not forked.available(sys.executable, ["-c", "print(1)"])
    assert not forked.available("/usr/bin/other-python", ["-m", "job"])


def test_stopping_a_forked_job_ends_its_whole_process_group(step_dir: Path) -> None:
    (step_dir / "sleeper.py").write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n",
        encoding="utf-8",
    )
    jobs: list[container.Job] = []
    grandchild: list[int] = []
    stopper: list[threading.Thread] = []

    def on_line(_: str, line: str) -> None:
        grandchild.append(int(line))
        stopper.append(threading.Thread(target=container.stop, args=(jobs[0],)))
        stopper[0].start()

    with pytest.raises(StepFailed, match="exited with code -15"):
        container.run_container(
            "Sleeper",
            [sys.executable, "-m", "sleeper"],
            step_dir,
            {},
            on_line,
            started=jobs.append,
        )
    stopper[0].join()
    assert isinstance(jobs[0], forked.ForkedJob)
    assert _ended(grandchild[0])  # SIGTERM went to the job's whole group, its child too


def _ended(pid: int) -> bool:
    """Gone, or a zombie left for whoever adopted it (no init reaps it in some containers)."""
    for _ in range(600):  # the signal is delivered at once; dying takes a moment
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_callers_script_without_a_main_guard_does_not_run_again_in_a_job(
    step_dir: Path, tmp_path: Path
) -> None:
    """multiprocessing re-imports the parent's __main__ in each child; the fork server's jobs
    must not (a notebook's or a script's top level would run again inside every job)."""
    caller = tmp_path / "caller.py"
    caller.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from mlops.executor import container\n"
        "print('caller top level', flush=True)\n"
        f"container.run_container('Job', [sys.executable, '-m', 'job_module', '0'], "
        f"Path({str(step_dir)!r}), {{}}, lambda _, line: print(line, flush=True))\n",
        encoding="utf-8",
    )
    shown = subprocess.run(
        [sys.executable, str(caller)], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    assert shown.count("caller top level") == 1
    assert "name __main__" in shown and "atexit ran" in shown


@pytest.mark.parametrize("fork", ["1", "0"])
def test_a_job_starts_with_the_memory_environment_forked_or_not(
    fork: str, step_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow's allocator is chosen when the process starts: a forked job has the server's."""
    monkeypatch.setenv(forked.DISABLE_ENV, fork)
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    (step_dir / "pool.py").write_text(
        "import pyarrow\nprint(pyarrow.default_memory_pool().backend_name)\n", encoding="utf-8"
    )
    lines, code = _run([sys.executable, "-m", "pool"], step_dir, {})
    assert (code, lines) == (0, ["system"])
