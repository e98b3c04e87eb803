"""One family of errors; the CLI turns each into a message and an exit code in one place."""

from __future__ import annotations


class MlopsError(Exception):
    """Something the user can fix; the message says what and how."""

    exit_code = 2


class NotFound(MlopsError):
    exit_code = 3


class ExecutionFailed(MlopsError):
    """A pipeline execution ended Failed or Stopped; ``run_dir`` holds its record and logs."""

    exit_code = 1

    def __init__(self, message: str, run_dir: str = "") -> None:
        super().__init__(message)
        self.run_dir = run_dir
