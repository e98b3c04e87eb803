"""Data-quality baselines in SageMaker Model Monitor's own shape: statistics.json, constraints.json.

The preprocess job writes them from the train split, so the same files serve a Model Monitor
data-quality schedule in AWS and ``mlops monitor drift`` locally.

Column names. Model Monitor reads a header-less CSV capture (what clients send the endpoint) with
Spark, which names its columns ``_c0``, ``_c1``, ...; a baseline keyed by our feature names would
make every captured column "missing" and "extra". So the two Model Monitor files name each feature
by its position in the model's feature order (``_c<i>``), and ``schema.json`` beside them (the
schema the splits carry) maps each position back to the feature's name and kind for our reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sagemaker_jobs.contract import JobError
from sagemaker_jobs.data import Schema
from sagemaker_jobs.features import drift_date_parts

STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
SCHEMA_FILE = "schema.json"
# Our own file beside Model Monitor's: statistics of the parts of each date feature (year, day of
# year). Model Monitor sees a date as text; drift on dates shows in these numbers.
DATE_PARTS_FILE = "date_parts.json"
# A KLL sketch with k items per compactor keeps a column of up to k values exactly (level 0).
KLL_K, KLL_C = 2048, 0.64
HISTOGRAM_BUCKETS = 10
# Categorical columns with at most this many values get a domain (Model Monitor: "small
# cardinality"); more than that and unseen values are expected, not a violation.
MAX_DOMAIN_SIZE = 50
# Model Monitor's suggested defaults (monitoring_config of constraints.json).
MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 0.1,
    "domain_content_threshold": 0.1,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}


def column_name(position: int) -> str:
    """Spark's (and so Model Monitor's) name for a header-less CSV column."""
    return f"_c{position}"


def _common(column: pd.Series) -> dict[str, int]:
    present = int(column.notna().sum())
    return {"num_present": present, "num_missing": int(len(column) - present)}


def _sketch_values(values: np.ndarray) -> list[float]:
    """Every value when they fit a sketch (as KLL holds them), else k evenly spaced order
    statistics: the quantiles a drift check bins by either way."""
    ordered = np.sort(values)
    if len(ordered) > KLL_K:
        ordered = ordered[np.linspace(0, len(ordered) - 1, KLL_K).round().astype(int)]
    return [float(v) for v in ordered]


def numerical_statistics(column: pd.Series) -> tuple[str, dict[str, Any]]:
    values = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=float)
    integral = bool(len(values)) and bool(np.all(np.mod(values, 1) == 0))
    stats: dict[str, Any] = {"common": _common(column)}
    if len(values):
        counts, edges = np.histogram(values, bins=HISTOGRAM_BUCKETS)
        stats.update(
            mean=float(values.mean()),
            sum=float(values.sum()),
            std_dev=float(values.std()),  # population, as Deequ computes it
            min=float(values.min()),
            max=float(values.max()),
            distribution={
                "kll": {
                    "buckets": [
                        {"lower_bound": float(lo), "upper_bound": float(hi), "count": float(n)}
                        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)
                    ],
                    "sketch": {
                        "parameters": {"c": KLL_C, "k": float(KLL_K)},
                        "data": [_sketch_values(values)],
                    },
                }
            },
        )
    return ("Integral" if integral else "Fractional"), stats


def string_statistics(column: pd.Series) -> dict[str, Any]:
    counts = column.dropna().astype(str).value_counts()
    return {
        "common": _common(column),
        "distinct_count": float(len(counts)),
        "distribution": {
            "categorical": {
                "buckets": [{"value": str(v), "count": float(n)} for v, n in counts.items()]
            }
        },
    }


def _column(frame: pd.DataFrame, name: str, rows: np.ndarray | None) -> pd.Series:
    """One column of ``frame``, only its ``rows`` (positions) when given: a baseline of a part of
    a table copies a column at a time, not the part (a 1M-row table's train part is 150 MB)."""
    if name not in frame.columns:
        raise JobError(f"cannot baseline feature {name!r}: the table has no such column")
    return frame[name] if rows is None else frame[name].iloc[rows]


def statistics(
    frame: pd.DataFrame, schema: Schema, rows: np.ndarray | None = None
) -> dict[str, Any]:
    """``statistics.json`` of the schema's feature columns of ``frame`` (other columns ignored),
    of its ``rows`` when given."""
    features = []
    for position, (name, kind) in enumerate(schema.features.items()):
        column = _column(frame, name, rows)
        entry: dict[str, Any] = {"name": column_name(position)}
        if kind == "numeric":
            entry["inferred_type"], entry["numerical_statistics"] = numerical_statistics(column)
        else:  # categorical and datetime values are text to Model Monitor
            entry["inferred_type"] = "String"
            entry["string_statistics"] = string_statistics(column)
        features.append(entry)
    count = len(frame) if rows is None else len(rows)
    return {"version": 0.0, "dataset": {"item_count": float(count)}, "features": features}


def constraints(stats: dict[str, Any]) -> dict[str, Any]:
    """The constraints Model Monitor's baseline job suggests from these statistics."""
    features = []
    for feature in stats["features"]:
        numeric = "numerical_statistics" in feature
        body = feature["numerical_statistics" if numeric else "string_statistics"]
        common = body["common"]
        total = common["num_present"] + common["num_missing"]
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": feature["inferred_type"],
            "completeness": common["num_present"] / total if total else 1.0,
        }
        if numeric:
            entry["num_constraints"] = {"is_non_negative": bool(body.get("min", 0) >= 0)}
        elif body["distinct_count"] <= MAX_DOMAIN_SIZE:
            buckets = body["distribution"]["categorical"]["buckets"]
            entry["string_constraints"] = {"domains": sorted(b["value"] for b in buckets)}
        features.append(entry)
    return {"version": 0.0, "features": features, "monitoring_config": MONITORING_CONFIG}


def date_part_statistics(
    frame: pd.DataFrame, schema: Schema, rows: np.ndarray | None = None
) -> dict[str, Any]:
    """Numeric statistics and completeness of each date feature's drift parts."""
    features = []
    for position, (name, kind) in enumerate(schema.features.items()):
        if kind != "datetime":
            continue
        for part, values in drift_date_parts(_column(frame, name, rows)).items():
            inferred, stats = numerical_statistics(values)
            common = stats["common"]
            total = common["num_present"] + common["num_missing"]
            features.append(
                {
                    "name": f"{column_name(position)}.{part}",
                    "feature": f"{name}.{part}",
                    "source": name,
                    "inferred_type": inferred,
                    "numerical_statistics": stats,
                    "completeness": common["num_present"] / total if total else 1.0,
                }
            )
    return {"version": 0.0, "features": features}


def write_baseline(
    directory: Path, frame: pd.DataFrame, schema: Schema, rows: np.ndarray | None = None
) -> list[Path]:
    """Write statistics.json, constraints.json, schema.json and date_parts.json of ``frame``,
    or of its ``rows`` (positions) when given."""
    directory.mkdir(parents=True, exist_ok=True)
    stats = statistics(frame, schema, rows)
    documents = {
        STATISTICS_FILE: stats,
        CONSTRAINTS_FILE: constraints(stats),
        SCHEMA_FILE: schema.to_dict(),
        DATE_PARTS_FILE: date_part_statistics(frame, schema, rows),
    }
    paths = []
    for name, document in documents.items():
        path = directory / name
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


@dataclass(frozen=True)
class BaselineFeature:
    """One feature of a baseline: its Model Monitor column, its name, and what it looked like."""

    column: str
    name: str
    kind: str  # numeric | categorical | datetime
    statistics: dict[str, Any]
    constraints: dict[str, Any]

    @property
    def numeric(self) -> bool:
        return "numerical_statistics" in self.statistics

    @property
    def values(self) -> np.ndarray:
        """The sketch's values (numeric features), the sample the distribution checks use."""
        numbers = self.statistics["numerical_statistics"]
        if "distribution" not in numbers:  # the training column had no value at all
            return np.empty(0)
        sketch = numbers["distribution"]["kll"]["sketch"]
        return np.array([v for level in sketch["data"] for v in level], dtype=float)

    @property
    def category_counts(self) -> dict[str, float]:
        buckets = self.statistics["string_statistics"]["distribution"]["categorical"]["buckets"]
        return {str(b["value"]): float(b["count"]) for b in buckets}


@dataclass(frozen=True)
class Baseline:
    features: list[BaselineFeature]
    item_count: int
    monitoring_config: dict[str, Any]
    source: str
    date_sources: dict[str, str] = field(default_factory=dict)  # "when.year" -> "when"

    def feature(self, name: str) -> BaselineFeature:
        return next(f for f in self.features if f.name == name)

    def with_date_parts(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the date parts the baseline has statistics of, derived from the date
        columns it holds: they are then checked like any numeric feature."""
        parts: dict[str, pd.Series] = {}
        for source in sorted(set(self.date_sources.values()) & set(frame.columns)):
            for part, values in drift_date_parts(frame[source]).items():
                if f"{source}.{part}" in self.date_sources:
                    parts[f"{source}.{part}"] = values.set_axis(frame.index)
        return frame.assign(**parts) if parts else frame


def read_baseline(directory: Path) -> Baseline:
    """Read a baseline folder; without schema.json (a baseline Model Monitor suggested from a
    table with a header) the Model Monitor names are the feature names."""
    documents: dict[str, Any] = {}
    for name in (STATISTICS_FILE, CONSTRAINTS_FILE):
        path = directory / name
        if not path.exists():
            raise JobError(
                f"{directory} has no {name}; a baseline needs {STATISTICS_FILE} and "
                f"{CONSTRAINTS_FILE} (mlops monitor baseline VERSION writes them)"
            )
        try:
            documents[name] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise JobError(f"{path} is not JSON: {exc}") from exc
    stats, limits = documents[STATISTICS_FILE], documents[CONSTRAINTS_FILE]
    schema_path = directory / SCHEMA_FILE
    named: list[tuple[str, str]] = []
    if schema_path.exists():
        try:
            schema = Schema.from_dict(json.loads(schema_path.read_text("utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise JobError(
                f"{schema_path} is not the schema preprocess writes ({exc!r}); delete it to name "
                "features by Model Monitor's column names, or write the baseline again"
            ) from exc
        named = list(schema.features.items())
    try:
        by_column = {c["name"]: c for c in limits["features"]}
        features = []
        for position, entry in enumerate(stats["features"]):
            name, kind = (
                named[position]
                if position < len(named)
                else (
                    entry["name"],
                    "numeric" if "numerical_statistics" in entry else "categorical",
                )
            )
            features.append(
                BaselineFeature(entry["name"], name, kind, entry, by_column.get(entry["name"], {}))
            )
        date_sources = {}
        for entry in _read_date_parts(directory):
            date_sources[entry["feature"]] = entry["source"]
            completeness = {"completeness": entry["completeness"]}
            features.append(
                BaselineFeature(entry["name"], entry["feature"], "date part", entry, completeness)
            )
        return Baseline(
            features=features,
            item_count=int(stats["dataset"]["item_count"]),
            monitoring_config={**MONITORING_CONFIG, **limits.get("monitoring_config", {})},
            source=str(directory),
            date_sources=date_sources,
        )
    except (KeyError, TypeError, IndexError) as exc:
        raise JobError(f"{directory} is not a Model Monitor baseline: missing field {exc}") from exc


def _read_date_parts(directory: Path) -> list[dict[str, Any]]:
    """The date parts' statistics (absent from baselines written before them, or by AWS)."""
    path = directory / DATE_PARTS_FILE
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text(encoding="utf-8"))["features"])
    except (ValueError, KeyError, TypeError) as exc:
        raise JobError(f"{path} is not the date parts file preprocess writes: {exc!r}") from exc
