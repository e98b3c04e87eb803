"""Batch transform the way SageMaker runs it: split input files by line, send multi-record
batches no larger than the max payload, write ``<input>.out`` with one output line per record.

It runs the same handler in-process (no HTTP), streaming: memory is bounded by the batch size,
not the file size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from inference.errors import BadRequest, InferenceError
from inference.handler import ModelHandler

log = logging.getLogger(__name__)


@dataclass
class TransformStats:
    files: int = 0
    records: int = 0
    batches: int = 0


def batches(stream: BinaryIO, max_bytes: int) -> Iterator[bytes]:
    """Group whole lines into payloads of at most ``max_bytes`` (one longer line is an error)."""
    pending: list[bytes] = []
    size = 0
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        if not line.endswith(b"\n"):
            line += b"\n"
        if len(line) > max_bytes:
            raise BadRequest(
                f"line {number} is {len(line)} bytes, more than the max payload {max_bytes}"
            )
        if size + len(line) > max_bytes:
            yield b"".join(pending)
            pending, size = [], 0
        pending.append(line)
        size += len(line)
    if pending:
        yield b"".join(pending)


def transform_file(
    handler: ModelHandler,
    source: Path,
    target: Path,
    *,
    content_type: str,
    accept: str,
    max_bytes: int,
    stats: TransformStats,
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with source.open("rb") as reader, partial.open("wb") as writer:
            for number, body in enumerate(batches(reader, max_bytes), 1):
                try:
                    data = handler.input_fn(body, content_type)
                    prediction = handler.predict_fn(data)
                except InferenceError as exc:
                    raise type(exc)(f"{source.name}, batch {number}: {exc}") from exc
                writer.write(handler.output_fn(prediction, accept))
                stats.records += len(prediction.labels)
                stats.batches += 1
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed file leaves no output that looks complete
        raise
    partial.replace(target)
    stats.files += 1


def transform(
    handler: ModelHandler,
    source: Path,
    output: Path,
    *,
    content_type: str = "text/csv",
    accept: str = "text/csv",
    max_payload_mb: float = 6,
) -> TransformStats:
    if source.is_dir() and output.resolve().is_relative_to(source.resolve()):
        raise BadRequest(
            f"the output folder {output} is inside the input {source}; pick one outside it"
        )
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    if not files:
        raise BadRequest(f"no input files under {source}")
    stats = TransformStats()
    for path in files:
        relative = path.name if source.is_file() else str(path.relative_to(source))
        transform_file(
            handler,
            path,
            output / f"{relative}.out",
            content_type=content_type,
            accept=accept,
            max_bytes=int(max_payload_mb * 1024 * 1024),
            stats=stats,
        )
        log.info("transformed %s", path)
    return stats
