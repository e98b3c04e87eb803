"""Drift detection: captured endpoint inputs against a Model Monitor baseline.

``read_captures`` decodes SageMaker capture records (CSV with or without a header, JSON, JSON
Lines) into the model's feature columns; ``detect_drift`` runs Model Monitor's checks (missing
and extra columns, data types, completeness, categorical domains) and a distribution check per
feature: the population stability index (PSI) over the baseline's decile bins or categories,
confirmed by a two-sample test from scipy (Kolmogorov-Smirnov for numbers, chi-square for
categories), so a small capture's noise alone never raises a violation.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops.errors import MlopsError, NotFound
from sagemaker_jobs.baseline import Baseline, BaselineFeature, column_name
from sagemaker_jobs.features import MISSING, category_text

PSI_BINS = 10  # deciles of the baseline
# A bin or category the other side never saw still counts this share, so PSI stays finite.
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class Thresholds:
    """When a check becomes a violation (data-type and domain shares come from constraints.json)."""

    psi: float = 0.2  # the usual "significant shift" level of the PSI
    p_value: float = 0.01  # the test must also reject "same distribution" at this level
    completeness: float = 0.05  # allowed drop of the non-missing share below the baseline's


@dataclass
class Captures:
    """Decoded captured inputs: one row per request row, columns as named by the request."""

    frame: pd.DataFrame
    files: int = 0
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> records not decoded


# Reading captures ---------------------------------------------------------------------------
def _payload(record: dict[str, Any]) -> tuple[str, str]:
    """(content type, text) of a capture record's endpoint input."""
    captured = record["captureData"]["endpointInput"]
    data = captured.get("data", "")
    if captured.get("encoding") == "BASE64":
        data = base64.b64decode(data, validate=True).decode("utf-8")
    content_type = str(captured.get("observedContentType", "")).split(";")[0].strip().lower()
    return content_type or "application/json", data


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_rows(text: str, names: list[str]) -> list[dict[str, Any]]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    header = [cell.strip() for cell in rows[0]] if rows else []
    # A header row: text cells, at least one of them a feature name (a broken one may lack some).
    if header and set(header) & set(names) and not any(map(_is_number, header)):
        return [dict(zip(header, row, strict=False)) for row in rows[1:]]
    return [_positional(row, names) for row in rows]


def _positional(row: list[Any], names: list[str]) -> dict[str, Any]:
    """Values without names belong to the features in the model's order; extras keep ``_c<i>``."""
    return {(names[i] if i < len(names) else column_name(i)): v for i, v in enumerate(row)}


def _json_rows(document: Any, names: list[str]) -> list[dict[str, Any]]:
    if isinstance(document, dict) and isinstance(document.get("instances"), list):
        document = document["instances"]
    if isinstance(document, dict) or (
        isinstance(document, list) and document and not isinstance(document[0], (list, dict))
    ):
        document = [document]  # one record, or one row of values
    if not isinstance(document, list):
        raise ValueError("not a list of rows or records")
    rows = []
    for item in document:
        if isinstance(item, dict):
            rows.append({str(k): v for k, v in item.items()})
        elif isinstance(item, list):
            rows.append(_positional(item, names))
        else:
            raise ValueError(f"a row is {type(item).__name__}")
    return rows


def decode(content_type: str, text: str, names: list[str]) -> list[dict[str, Any]]:
    """The rows of one captured request body, keyed by feature name (or ``_c<i>`` for extras)."""
    if content_type == "text/csv":
        return _csv_rows(text, names)
    if content_type == "application/json":
        return _json_rows(json.loads(text), names)
    if content_type in ("application/jsonlines", "application/x-jsonlines", "application/jsonl"):
        return [
            row
            for line in text.splitlines()
            if line.strip()
            for row in _json_rows(json.loads(line), names)
        ]
    raise ValueError(f"content type {content_type!r} is not decoded for monitoring")


def read_captures(files: Iterable[tuple[str, str]], names: list[str], since: str = "") -> Captures:
    """Decode capture files given as (name, JSON Lines text); bad records are counted, not fatal.
    ``since`` (``YYYY-MM-DDTHH:MM:SSZ``, the capture's own format) keeps only newer requests."""
    rows: list[dict[str, Any]] = []
    captures = Captures(pd.DataFrame())
    for _, text in files:
        captures.files += 1
        for line in filter(str.strip, text.splitlines()):
            try:
                record = json.loads(line)
                if since and str(record["eventMetadata"]["inferenceTime"]) < since:
                    continue  # outside the window
            except (ValueError, KeyError, TypeError):
                record = None
            captures.records += 1
            try:
                if not isinstance(record, dict):
                    raise ValueError("malformed capture record: not SageMaker's JSON shape")
                content_type, body = _payload(record)
                rows.extend(decode(content_type, body, names))
            except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
                reason = (
                    str(exc).split(":")[0][:80]
                    if isinstance(exc, ValueError)
                    else (f"malformed record ({type(exc).__name__})")
                )
                captures.skipped[reason] = captures.skipped.get(reason, 0) + 1
    if not captures.records:
        window = f" since {since}" if since else ""
        raise NotFound(f"the capture files hold no records{window}; send the endpoint requests")
    if not rows:
        reasons = ", ".join(f"{n} x {r}" for r, n in captures.skipped.items())
        raise MlopsError(f"none of the {captures.records} captured records decoded: {reasons}")
    captures.frame = pd.DataFrame(rows)
    return captures


# Checks -------------------------------------------------------------------------------------
@dataclass
class FeatureDrift:
    """What one feature looked like in the baseline and in the captures."""

    name: str
    column: str
    kind: str
    present: bool
    baseline_completeness: float
    completeness: float = math.nan
    psi: float = math.nan
    test: str = ""  # "KS" or "chi-square"
    statistic: float = math.nan
    p_value: float = math.nan
    drifted: bool = False
    labels: list[str] = field(default_factory=list)  # bins or categories, for the plots
    baseline_shares: list[float] = field(default_factory=list)
    current_shares: list[float] = field(default_factory=list)


@dataclass
class DriftResult:
    rows: int
    baseline_rows: int
    features: list[FeatureDrift]
    violations: list[dict[str, str]]
    extra_columns: list[str]

    def verdict(self, feature: FeatureDrift) -> str:
        if not feature.present:
            return "missing"
        if feature.drifted:
            return "DRIFT"
        named = any(v["feature_name"] == feature.name for v in self.violations)
        return "violation" if named else "ok"

    def violations_document(self) -> dict[str, Any]:
        """``constraint_violations.json`` as Model Monitor writes it."""
        return {"violations": self.violations}


def _violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def _missing(values: pd.Series) -> pd.Series:
    return values.isna() | values.map(lambda v: isinstance(v, str) and v.strip().lower() in MISSING)


def _shares(counts: np.ndarray) -> np.ndarray:
    shares = counts / max(counts.sum(), 1)
    return np.maximum(shares, PSI_FLOOR)


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)): the symmetric Kullback-Leibler divergence of the shares."""
    from scipy.special import rel_entr

    e, a = _shares(expected), _shares(actual)
    return float(np.sum(rel_entr(a, e) + rel_entr(e, a)))


def _numeric_drift(result: FeatureDrift, base: BaselineFeature, values: np.ndarray) -> None:
    from scipy.stats import ks_2samp

    reference = base.values
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1))[1:-1])
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    expected = np.histogram(reference, edges)[0].astype(float)
    actual = np.histogram(values, edges)[0].astype(float)
    result.psi = population_stability_index(expected, actual)
    test = ks_2samp(values, reference)
    result.test, result.statistic, result.p_value = "KS", float(test.statistic), float(test.pvalue)
    bounds = [f"{v:.4g}" for v in inner]
    middle = [f"{low} to {high}" for low, high in itertools.pairwise(bounds)]
    result.labels = [f"< {bounds[0]}", *middle, f">= {bounds[-1]}"] if bounds else ["all"]
    result.baseline_shares = (expected / expected.sum()).tolist()
    result.current_shares = (actual / actual.sum()).tolist()


def _categorical_drift(result: FeatureDrift, base: BaselineFeature, values: pd.Series) -> None:
    from scipy.stats import chi2_contingency

    known = base.category_counts
    current = values.value_counts()
    labels = sorted(set(known) | set(current.index), key=lambda c: (-known.get(c, 0), c))
    expected = np.array([known.get(c, 0.0) for c in labels])
    actual = np.array([float(current.get(c, 0)) for c in labels])
    result.psi = population_stability_index(expected, actual)
    if len(labels) > 1:
        test = chi2_contingency(np.vstack([expected, actual]))
        result.statistic, result.p_value = float(test.statistic), float(test.pvalue)
    else:
        result.statistic, result.p_value = 0.0, 1.0
    result.test = "chi-square"
    result.labels = labels
    result.baseline_shares = (expected / expected.sum()).tolist()
    result.current_shares = (actual / actual.sum()).tolist()


def _check_feature(
    base: BaselineFeature,
    column: pd.Series,
    config: dict[str, Any],
    thresholds: Thresholds,
    violations: list[dict[str, str]],
) -> FeatureDrift:
    completeness = float(base.constraints.get("completeness", 1.0))
    result = FeatureDrift(base.name, base.column, base.kind, True, completeness)
    label = f"{base.name} (column {base.column})"
    missing = _missing(column)
    result.completeness = float(1 - missing.mean()) if len(column) else 0.0
    if result.completeness < completeness - thresholds.completeness:
        violations.append(
            _violation(
                base.name,
                "completeness_check",
                f"{label}: {result.completeness:.1%} of the captured values are present; the "
                f"baseline had {completeness:.1%} (allowed drop {thresholds.completeness:.0%})",
            )
        )
    present = column[~missing]
    if present.empty:
        return result
    if base.numeric:
        numbers = pd.to_numeric(present, errors="coerce")
        bad = numbers.isna()
        if bad.mean() > float(config["datatype_check_threshold"]):
            examples = ", ".join(repr(str(v)) for v in present[bad].unique()[:3])
            violations.append(
                _violation(
                    base.name,
                    "data_type_check",
                    f"{label}: {bad.mean():.1%} of the values are not numbers ({examples}); the "
                    f"baseline type is {base.statistics['inferred_type']}",
                )
            )
        if (~bad).any() and len(base.values):
            _numeric_drift(result, base, numbers[~bad].to_numpy(dtype=float))
    else:
        texts = present.map(category_text).dropna()
        domain = base.constraints.get("string_constraints", {}).get("domains")
        if domain and len(texts):
            unknown = ~texts.isin(domain)
            if unknown.mean() > float(config["domain_content_threshold"]):
                examples = ", ".join(repr(v) for v in texts[unknown].unique()[:3])
                violations.append(
                    _violation(
                        base.name,
                        "categorical_values_check",
                        f"{label}: {unknown.mean():.1%} of the values are outside the baseline's "
                        f"domain {domain} ({examples})",
                    )
                )
        if base.kind == "categorical" and len(texts):
            _categorical_drift(result, base, texts)
    if result.psi >= thresholds.psi and result.p_value < thresholds.p_value:
        result.drifted = True
        violations.append(
            _violation(
                base.name,
                "baseline_drift_check",
                f"{label}: PSI {result.psi:.3f} >= {thresholds.psi} and {result.test} p-value "
                f"{result.p_value:.2g} < {thresholds.p_value}: the distribution has shifted",
            )
        )
    return result


def detect_drift(
    baseline: Baseline, captures: Captures, thresholds: Thresholds | None = None
) -> DriftResult:
    thresholds = thresholds or Thresholds()
    frame = baseline.with_date_parts(captures.frame)  # dates drift in their year, day of year
    violations: list[dict[str, str]] = []
    features = []
    for base in baseline.features:
        if base.name not in frame.columns:
            violations.append(
                _violation(
                    base.name,
                    "missing_column_check",
                    f"{base.name} (column {base.column}) is in the baseline but in none of the "
                    f"{len(frame)} captured rows",
                )
            )
            features.append(
                FeatureDrift(
                    base.name,
                    base.column,
                    base.kind,
                    False,
                    float(base.constraints.get("completeness", 1.0)),
                )
            )
            continue
        features.append(
            _check_feature(
                base, frame[base.name], baseline.monitoring_config, thresholds, violations
            )
        )
    known = {f.name for f in baseline.features}
    extra = [str(c) for c in frame.columns if c not in known]
    for name in extra:
        violations.append(
            _violation(
                name,
                "extra_column_check",
                f"{name} is in {int(frame[name].notna().sum())} captured rows but not in the "
                f"baseline's {len(known)} features",
            )
        )
    return DriftResult(len(frame), baseline.item_count, features, violations, extra)
