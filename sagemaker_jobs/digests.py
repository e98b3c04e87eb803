"""sha256 of files, streamed: one helper for artifacts, data sets and uploads (stdlib only)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
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


def tree_sha256(entries: Iterable[tuple[str, str]]) -> str:
    """A data set's sha256 from its files' (relative name, sha256): one file is its own sha256
    (a data set is the same uploaded as a file or as a folder holding it); several hash their
    names and sha256s, sorted by name, so a renamed file is another data set. Preprocess
    (DatasetSha256), the local store, lineage and uploads all use this one definition."""
    ordered = sorted(entries)
    if len(ordered) == 1:
        return ordered[0][1]
    listing = hashlib.sha256()
    for name, sha256 in ordered:
        listing.update(f"{name}\0{sha256}\n".encode())
    return listing.hexdigest()


def dataset_sha256(files: Sequence[Path], base: Path) -> str:
    """``tree_sha256`` of files on disk, with names relative to ``base``."""
    return tree_sha256((p.relative_to(base).as_posix(), file_sha256(p)) for p in files)
