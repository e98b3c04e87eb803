"""Data capture records: SageMaker's shape, sampling, rotation by size."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

from inference.capture import CaptureWriter


def _records(root: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(root.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_record_shape_and_layout(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, "demo", "AllTraffic", 100, 1 << 20)
    assert writer.record(b"1,2\n", "text/csv", b'{"predictions": [1]}', "application/json", "id-1")
    assert writer.record(b"\x93NUMPY", "application/x-npy", b"1\n", "text/csv")
    writer.close()
    (first, second) = _records(tmp_path)
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "1,2\n",
        "encoding": "CSV",
    }
    assert first["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert first["eventMetadata"]["eventId"] == "id-1" and first["eventMetadata"][
        "inferenceTime"
    ].endswith("Z")
    assert second["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(second["captureData"]["endpointInput"]["data"]) == b"\x93NUMPY"
    (path,) = {p.parent for p in tmp_path.rglob("*.jsonl")}
    assert (
        path.relative_to(tmp_path).parts[:2] == ("demo", "AllTraffic")
        and len(path.relative_to(tmp_path).parts) == 6
    )


def test_sampling_and_rotation_by_size(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, "demo", "AllTraffic", 30, max_bytes=2000, rng=random.Random(1))
    kept = sum(writer.record(b"x" * 100, "text/csv", b"y", "text/csv") for _ in range(1000))
    writer.close()
    assert 240 < kept < 360  # about 30 percent
    assert len(_records(tmp_path)) == kept
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) > 10 and all(f.stat().st_size < 2000 + 600 for f in files)


def test_zero_percent_captures_nothing(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, "demo", "AllTraffic", 0, 1 << 20)
    assert not writer.record(b"1", "text/csv", b"1", "text/csv")
    assert not list(tmp_path.rglob("*.jsonl"))
