"""sha256 of files, streamed: one helper for artifacts, data sets and uploads (stdlib only)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

BLOCK = 1 << 20


def update_from_file(digest: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    update_from_file(digest, path)
    return digest.hexdigest()


def files_sha256(paths: Iterable[Path]) -> str:
    """One digest over the bytes of several files, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        update_from_file(digest, path)
    return digest.hexdigest()
