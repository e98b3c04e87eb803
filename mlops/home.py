"""One home for all local state: ``.mlops/`` in the working directory, or ``$MLOPS_HOME``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "MLOPS_HOME"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Home:
        env = os.environ if env is None else env
        configured = env.get(HOME_ENV)
        root = Path(configured) if configured else (cwd or Path.cwd()) / ".mlops"
        return cls(root.expanduser().resolve())

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def definitions(self) -> Path:
        """Pipeline definitions built before (sagemaker_jobs.pipeline.definition_json)."""
        return self.root / "definitions"

    @contextlib.contextmanager
    def temporary_files(self) -> Iterator[None]:
        """Send every temporary file of this process and its children (jobs, model servers)
        into ``tmp/`` here: nothing mlops does writes outside its home."""
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError:  # a home we cannot write: the command says so when it needs the home
            yield
            return
        saved = tempfile.tempdir, os.environ.get("TMPDIR")
        tempfile.tempdir = os.environ["TMPDIR"] = str(self.tmp)
        try:
            yield
        finally:
            tempfile.tempdir = saved[0]
            if saved[1] is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved[1]
