"""A local object store with S3 addressing: ``s3://bucket/key`` is ``<root>/bucket/key``."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops.errors import MlopsError, NotFound


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, uri: str) -> Path:
        # Not urlparse: S3 keys may hold '#' and '?', which a URL parser cuts off.
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not bucket:
            raise MlopsError(f"{uri!r} is not an s3://bucket/key URI")
        path = (self.root / bucket / key.lstrip("/")).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise MlopsError(f"{uri!r} points outside the object store")
        return path

    def uri_for(self, path: Path) -> str:
        relative = path.resolve().relative_to(self.root.resolve())
        bucket, *key = relative.parts
        return f"s3://{bucket}/{'/'.join(key)}"

    def exists(self, uri: str) -> bool:
        return self.path_for(uri).exists()

    def put(self, source: Path, uri: str) -> str:
        """Copy a file, or a directory's contents, to ``uri``."""
        target = self.path_for(uri)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return uri

    def get(self, uri: str, destination: Path) -> None:
        """Download like an S3Prefix input: a file lands by its name, a prefix by its contents."""
        source = self.path_for(uri.rstrip("/"))
        destination.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, destination / source.name)
        else:
            raise NotFound(f"no object or prefix at {uri} (local store: {source})")
