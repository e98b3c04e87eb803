"""The compiled form of the pipeline's model: preprocessing as NumPy over the request's columns,
the tree ensemble in ONNX Runtime.

``sagemaker_jobs.compile`` writes ``compiled.json`` (the fitted imputation, scaling, category
codes and date parameters, the output link and classes) and ``trees.onnx`` (every tree, float64
thresholds and leaf values) at training time, after proving parity with scikit-learn. Here they
are loaded once and run per request: no DataFrame, no per-tree Python call, no scikit-learn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sagemaker_jobs.features import MISSING_CATEGORY  # what a missing category cell becomes

SPEC_FILE = "compiled.json"
TREES_FILE = "trees.onnx"
FORMAT = 2  # 2: categories may be codes (ordinal blocks); 1: one-hot blocks only
READABLE_FORMATS = (1, 2)  # packages registered before format 2 keep their compiled form


@dataclass
class Columns:
    """One request's feature columns: numeric ones as float arrays (NaN = missing), the others
    as lists of canonical text (``features.category_text``) or None."""

    values: dict[str, Any]
    rows: int


class CompiledModel:
    def __init__(self, spec: dict[str, Any], trees: bytes) -> None:
        import onnxruntime as ort  # only a compiled model needs it

        if spec.get("format") not in READABLE_FORMATS:
            raise ValueError(
                f"compiled.json format {spec.get('format')!r}, expected one of {READABLE_FORMATS}"
            )
        self.spec = spec
        self.link: str = spec["link"]
        self.classes = np.asarray(spec["classes"], dtype=object) if spec["classes"] else None
        self.baseline = np.asarray(spec["baseline"], dtype=np.float64)
        self.width: int = spec["width"]
        self.blocks = [_Block(b) for b in spec["blocks"]]
        options = ort.SessionOptions()
        # One compute thread: the server's workers are the parallelism.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(trees, options, providers=["CPUExecutionProvider"])
        self.runtime = f"onnxruntime {ort.__version__}"

    @classmethod
    def load(cls, spec_path: Path, trees_path: Path) -> CompiledModel:
        return cls(json.loads(spec_path.read_text(encoding="utf-8")), trees_path.read_bytes())

    def transform(self, columns: Columns) -> np.ndarray:
        """The ColumnTransformer's output for these rows, float64, in its column order."""
        out = np.zeros((columns.rows, self.width), dtype=np.float64)
        for block in self.blocks:
            block.fill(columns, out)
        return out

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        scores = self.session.run(None, {"X": matrix})[0]
        return np.asarray(scores, dtype=np.float64) + self.baseline

    def predict(self, columns: Columns, probabilities: bool = False) -> tuple[list[Any], Any]:
        """Labels (or values) as plain Python values, and class probabilities when asked."""
        raw = self.raw(self.transform(columns))
        if self.link == "identity":
            return raw[:, 0].tolist(), None
        assert self.classes is not None
        if self.link == "logistic":
            margin = raw[:, 0]
            labels = self.classes[(margin > 0).astype(np.intp)]  # as scikit-learn: > 0, not >= 0
            if not probabilities:
                return labels.tolist(), None
            positive = 1.0 / (1.0 + np.exp(-margin))
            return labels.tolist(), np.column_stack([1.0 - positive, positive])
        labels = self.classes[np.argmax(raw, axis=1)]
        if not probabilities:
            return labels.tolist(), None
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return labels.tolist(), shifted / shifted.sum(axis=1, keepdims=True)


class _Block:
    """One branch of the ColumnTransformer: numeric, categorical or datetime."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind: str = spec["kind"]
        self.columns: list[str] = spec["columns"]
        self.offset: int = spec["offset"]
        if self.kind == "categorical":
            self.encoding: str = spec.get("encoding", "one_hot")  # format 1 has no key
            self.maps: list[dict[str, int]] = spec["maps"]
            self.unknown: list[int | None] = spec["unknown"]
            if self.encoding == "one_hot":  # where each column's one-hot columns start
                self.offsets: list[int] = spec["offsets"]
        else:
            self.stop: int = spec["stop"]
            # Imputed and scaled, or read raw (gradient boosting's trees handle missing values).
            self.scaled = "fill" in spec
            if self.scaled:
                self.fill_values = np.asarray(spec["fill"], dtype=np.float64)
                self.mean = np.asarray(spec["mean"], dtype=np.float64)
                self.scale = np.asarray(spec["scale"], dtype=np.float64)

    def fill(self, columns: Columns, out: np.ndarray) -> None:
        if self.kind == "categorical":
            if self.encoding == "ordinal":
                self._codes(columns, out)
            else:
                self._one_hot(columns, out)
            return
        if self.kind == "numeric":
            block = np.column_stack([columns.values[name] for name in self.columns])
        else:
            block = np.hstack([date_parts(columns.values[name]) for name in self.columns])
        if self.scaled:
            block = block.astype(np.float64, copy=True)
            missing = np.isnan(block)
            if missing.any():
                block[missing] = np.broadcast_to(self.fill_values, block.shape)[missing]
            block -= self.mean
            block /= self.scale
        out[:, self.offset : self.stop] = block

    def _one_hot(self, columns: Columns, out: np.ndarray) -> None:
        for name, table, unknown, offset in zip(
            self.columns, self.maps, self.unknown, self.offsets, strict=True
        ):
            cells: Sequence[str | None] = columns.values[name]
            index = np.fromiter(
                (table.get(MISSING_CATEGORY if c is None else c, unknown) for c in cells),
                dtype=np.intp,
                count=len(cells),
            )
            rows = np.flatnonzero(index >= 0)  # an unknown category with no infrequent column
            out[rows, self.offset + offset + index[rows]] = 1.0

    def _codes(self, columns: Columns, out: np.ndarray) -> None:
        """One code per category; an unknown one is null in the spec, NaN here (the trees send
        it where missing values go)."""
        for j, (name, table) in enumerate(zip(self.columns, self.maps, strict=True)):
            cells: Sequence[str | None] = columns.values[name]
            unknown = self.unknown[j]
            out[:, self.offset + j] = np.fromiter(
                (_code(table.get(MISSING_CATEGORY if c is None else c, unknown)) for c in cells),
                dtype=np.float64,
                count=len(cells),
            )


def _code(value: int | None) -> float:
    return np.nan if value is None else value


def date_parts(cells: Sequence[str | None]) -> np.ndarray:
    """``features.date_parts`` for one column of text, without a DataFrame."""
    import pandas as pd

    from sagemaker_jobs.features import parse_dates

    when = parse_dates(pd.Series(cells, dtype=object))
    epoch_days = (when - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return np.column_stack(
        [when.dt.year, when.dt.month, when.dt.day, when.dt.day_of_week, epoch_days]
    ).astype(float)
