"""One family of errors; the CLI turns each into a message and an exit code in one place."""

from __future__ import annotations


class MlopsError(Exception):
    """Something the user can fix; the message says what and how."""

    exit_code = 2


class NotFound(MlopsError):
    exit_code = 3


class ExecutionFailed(MlopsError):
    """A pipeline execution ended Failed or Stopped (its record holds the details)."""

    exit_code = 1
