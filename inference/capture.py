"""Data capture in SageMaker's record shape, as JSON Lines rotated by hour and by size.

Layout follows SageMaker's ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``, so the
monitoring code reads local and S3 captures alike. Each worker writes its own file.
"""

from __future__ import annotations

import base64
import json
import os
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

_ENCODINGS = {"text/csv": "CSV", "application/json": "JSON", "application/jsonlines": "JSON"}


def _data(body: bytes, content_type: str) -> tuple[str, str]:
    encoding = _ENCODINGS.get(content_type)
    if encoding:
        try:
            return body.decode("utf-8"), encoding
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "BASE64"


class CaptureWriter:
    def __init__(
        self,
        root: Path,
        endpoint: str,
        variant: str,
        percent: float,
        max_bytes: int,
        rng: random.Random | None = None,
    ) -> None:
        self.directory = root / (endpoint or "endpoint") / variant
        self.percent, self.max_bytes = percent, max_bytes
        self.rng = rng or random.Random()
        self._file: IO[str] | None = None
        self._hour = ""
        self._written = 0

    def _target(self, now: datetime) -> IO[str]:
        hour = now.strftime("%Y/%m/%d/%H")
        if self._file is None or hour != self._hour or self._written >= self.max_bytes:
            if self._file:
                self._file.close()
            folder = self.directory / hour
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{now:%M-%S-%f}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._file = (folder / name).open("a", encoding="utf-8")
            self._hour, self._written = hour, 0
        return self._file

    def record(
        self,
        request: bytes,
        request_type: str,
        response: bytes,
        response_type: str,
        event_id: str | None = None,
    ) -> bool:
        """Append one request/response pair if sampled; return whether it was captured."""
        if self.percent < 100 and self.rng.uniform(0, 100) >= self.percent:
            return False
        now = datetime.now(UTC)
        data_in, enc_in = _data(request, request_type)
        data_out, enc_out = _data(response, response_type)
        line = json.dumps(
            {
                "captureData": {
                    "endpointInput": {
                        "observedContentType": request_type,
                        "mode": "INPUT",
                        "data": data_in,
                        "encoding": enc_in,
                    },
                    "endpointOutput": {
                        "observedContentType": response_type,
                        "mode": "OUTPUT",
                        "data": data_out,
                        "encoding": enc_out,
                    },
                },
                "eventMetadata": {
                    "eventId": event_id or str(uuid.uuid4()),
                    "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "eventVersion": "0",
            }
        )
        target = self._target(now)
        target.write(line + "\n")
        target.flush()
        self._written += len(line) + 1
        return True

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
