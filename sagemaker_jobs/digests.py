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


def file_entries(files: Iterable[Path], base: Path) -> list[tuple[str, str]]:
    """(name relative to ``base``, sha256) of each file: what an S3Prefix input holds."""
    return [(p.relative_to(base).as_posix(), file_sha256(p)) for p in files]


def tree_sha256(entries: Iterable[tuple[str, str]]) -> str:
    """A folder's sha256 from its files' names and sha256s, sorted by name: a renamed file is
    another folder. Uploads name their content-addressed prefixes with it."""
    listing = hashlib.sha256()
    for name, sha256 in sorted(entries):
        listing.update(f"{name}\0{sha256}\n".encode())
    return listing.hexdigest()


def dataset_sha256(entries: Iterable[tuple[str, str]]) -> str:
    """A data set's identity: one file is its own sha256 (so a data set hashes alike whether
    uploaded as a file or as a folder holding it), several are their tree. Preprocess
    (DatasetSha256), the local store's digests and lineage all use this one definition."""
    listed = list(entries)
    return listed[0][1] if len(listed) == 1 else tree_sha256(listed)
