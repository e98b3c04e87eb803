"""What a step leaves behind: its outcome when it succeeds, the error when it does not, and the
reporter that hears about it as it goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlops.errors import ExecutionFailed, MlopsError
from mlops.executor.records import StepRecord


class StepFailed(MlopsError):
    def __init__(self, step: str, reason: str, trials: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"step {step} failed: {reason}")
        self.step, self.reason = step, reason
        self.trials = trials or []  # a failed tuning job's trials, kept for the record


class ExecutionStopped(ExecutionFailed):
    exit_code = 130


@dataclass
class Outcome:
    """What a finished step leaves for later steps and for the record."""

    properties: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    property_files: dict[tuple[str, str], Path] = field(default_factory=dict)
    skip: list[str] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)  # a Tuning step's training jobs


class Reporter(Protocol):
    def step_started(self, record: StepRecord) -> None: ...
    def step_finished(self, record: StepRecord) -> None: ...
    def log_line(self, step: str, line: str) -> None: ...


class SilentReporter:
    def step_started(self, record: StepRecord) -> None:
        pass

    def step_finished(self, record: StepRecord) -> None:
        pass

    def log_line(self, step: str, line: str) -> None:
        pass
