"""One home for all local state: ``.mlops/`` in the working directory, or ``$MLOPS_HOME``."""

from __future__ import annotations

import os
from collections.abc import Mapping
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
