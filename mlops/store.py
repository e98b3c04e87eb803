"""A local object store with S3 addressing, content-addressed underneath.

``s3://bucket/key`` is readable at ``<root>/bucket/key`` as before, but that file is a hard link
to ``<root>/.blobs/<sha256>``: the same bytes put under many keys (a data set uploaded twice,
an output a cached step reuses) are stored once. ``<root>/.index/bucket/key`` holds each
key's sha256, so a content hash costs a stat, not a read. Bucket names cannot start with a
dot, so these folders never collide with a bucket.

Objects are immutable, as in S3: a put replaces the key's link, never the blob's bytes, and
readers get copies (``get``), so nothing writes into a blob another key shares.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from mlops.errors import MlopsError, NotFound
from sagemaker_jobs.contract import temporary_name, write_atomically
from sagemaker_jobs.digests import dataset_sha256, file_sha256

BLOBS, INDEX = ".blobs", ".index"


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, uri: str) -> Path:
        # Not urlparse: S3 keys may hold '#' and '?', which a URL parser cuts off.
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not bucket:
            raise MlopsError(f"{uri!r} is not an s3://bucket/key URI")
        if bucket.startswith("."):
            raise MlopsError(f"{uri!r}: a bucket name starts with a letter or digit")
        root = self.root.resolve()
        path = (self.root / bucket / key.lstrip("/")).resolve()
        # '..' in a key must not reach outside, nor into the blobs a digest vouches for.
        inside = path.relative_to(root).parts if path.is_relative_to(root) else (".",)
        if not inside or inside[0].startswith("."):
            raise MlopsError(f"{uri!r} points outside the object store's buckets")
        return path

    def uri_for(self, path: Path) -> str:
        relative = path.resolve().relative_to(self.root.resolve())
        bucket, *key = relative.parts
        return f"s3://{bucket}/{'/'.join(key)}"

    def exists(self, uri: str) -> bool:
        return self.path_for(uri).exists()

    def put(self, source: Path, uri: str, known: Mapping[Path, str] | None = None) -> str:
        """Store a file, or a directory's contents (merged into the prefix), at ``uri``.
        ``known``: the sha256 of files the caller has just hashed (a data set's upload), so
        they are not read twice (a second pass over a 1 GB file took about 2 s)."""
        known = known or {}
        target = self.path_for(uri)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)  # an empty output still exists, as before
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                self._put_file(path, target / path.relative_to(source), known.get(path))
        else:
            self._put_file(source, target, known.get(source))
        return uri

    def get(self, uri: str, destination: Path) -> None:
        """Download like an S3Prefix input: a file lands by its name, a prefix by its contents.

        Copies, not links: a job may write over its inputs, and must not change the store."""
        source = self.path_for(uri.rstrip("/"))
        destination.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                _copy(path, destination / path.relative_to(source))
        elif source.is_file():
            _copy(source, destination / source.name)
        else:
            raise NotFound(f"no object or prefix at {uri} (local store: {source})")

    def digest(self, uri: str) -> str:
        """sha256 of an object, or of a prefix's (relative name, sha256) list, as S3Prefix reads it."""
        path = self.path_for(uri.rstrip("/"))
        if path.is_file():
            return self._file_digest(path)
        if not path.is_dir():
            raise NotFound(f"no object or prefix at {uri} (local store: {path})")
        return dataset_sha256(
            (item.relative_to(path).as_posix(), self._file_digest(item))
            for item in path.rglob("*")
            if item.is_file()
        )

    def blob_count(self) -> int:
        """How many distinct contents the store holds."""
        return sum(1 for p in (self.root / BLOBS).glob("*/*") if p.is_file())

    # internals -------------------------------------------------------------------------
    def _blob(self, sha256: str) -> Path:
        return self.root / BLOBS / sha256[:2] / sha256

    def _index(self, path: Path) -> Path:
        return self.root / INDEX / path.relative_to(self.root.resolve())

    def _put_file(self, source: Path, target: Path, sha256: str | None = None) -> None:
        sha256 = sha256 or file_sha256(source)
        blob = self._blob(sha256)
        if not blob.exists():
            blob.parent.mkdir(parents=True, exist_ok=True)
            _copy(source, blob)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Link beside the key, then rename over it: readers see the old or the new object.
        link = temporary_name(target)
        link.hardlink_to(blob)
        link.replace(target)
        index = self._index(target)
        index.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(index, sha256.encode())

    def _file_digest(self, path: Path) -> str:
        index = self._index(path)
        if index.is_file():
            sha256 = index.read_text(encoding="ascii").strip()
            blob = self._blob(sha256)
            # Still the blob's link? Then the recorded hash is the content's hash.
            if blob.exists() and os.path.samestat(path.stat(), blob.stat()):
                return sha256
        return file_sha256(path)  # placed by hand, not by put: hash what is there


def _copy(source: Path, target: Path) -> None:
    """Copy through a temporary name, so no one ever sees a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    shutil.copyfile(source, tmp)
    tmp.replace(target)
