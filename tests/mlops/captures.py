"""Capture files for drift tests, written by the model server's own capture writer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd

from inference.capture import CaptureWriter


def capture(root: Path, bodies: list[tuple[str, str]], endpoint: str = "demo") -> list[Path]:
    """Write requests through the model server's capture writer (SageMaker's record shape)."""
    writer = CaptureWriter(root, endpoint, "AllTraffic", 100, 64 * 1024 * 1024)
    for content_type, body in bodies:
        assert writer.record(
            body.encode(), content_type, b'{"predictions": []}', "application/json"
        )
    writer.close()
    return sorted(root.rglob("*.jsonl"))


def as_requests(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """The same rows in every format clients send: header-less CSV, CSV with a header in
    another column order, JSON records, JSON Lines rows."""
    quarter = np.array_split(np.arange(len(rows)), 4)
    part = [rows.iloc[i] for i in quarter]
    records = part[2].astype(object).where(part[2].notna(), None).to_dict(orient="records")
    lines = part[3].astype(object).where(part[3].notna(), None).to_numpy().tolist()
    return [
        ("text/csv", part[0].to_csv(header=False, index=False)),
        ("text/csv", part[1][list(reversed(rows.columns))].to_csv(index=False)),
        ("application/json", json.dumps({"instances": records})),
        ("application/jsonlines", "\n".join(json.dumps(row) for row in lines)),
    ]


def shifted(rows: pd.DataFrame) -> pd.DataFrame:
    """Heavier penguins, and most of them now from Torgersen."""
    rng = random.Random(7)
    moved = rows.assign(body_mass_g=rows["body_mass_g"] + 1200)
    moved["island"] = [("Torgersen" if rng.random() < 0.7 else i) for i in moved["island"]]
    return moved
