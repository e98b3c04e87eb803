"""Which columns become features: the one place for selection rules, and their one record.

Preprocess types every column, then asks ``select`` which to keep. Each rule that drops a column
says why; a column the user declared with ``--column-types`` is never dropped by a rule that
guesses (only an empty column is, as nothing can be learnt from it). The record (``Selection``)
goes into ``schema.json``, the data profile and the model's manifest, so a reader of any of them
sees the same decisions and the rules' settings.

Rules, in order:
- ``empty``: every value is missing.
- ``identifier``: a text column unique per row, or an integer column unique per row and
  increasing (a row number).
- ``near_unique_text``: a text column whose distinct values are at least ``NEAR_UNIQUE_SHARE``
  of its non-missing rows (an item's name, a free-text note). A category learnt from it is
  rarely seen again; one-hot encoding it fits noise. Keep it with
  ``--column-types NAME=categorical``.
- ``constant``: a text column with a single value.
A text column with many distinct values (``WARN_DISTINCT`` or more, and at least
``WARN_SHARE`` of its rows) that is kept gets a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Rules need enough rows to mean anything.
MIN_ROWS = 20
NEAR_UNIQUE_SHARE = 0.7
WARN_SHARE = 0.1
WARN_DISTINCT = 50


@dataclass
class Selection:
    """What the rules decided: dropped columns with their reason, and warnings on kept ones."""

    dropped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        rules = {
            "min_rows": MIN_ROWS,
            "near_unique_share": NEAR_UNIQUE_SHARE,
            "warn_share": WARN_SHARE,
            "warn_distinct": WARN_DISTINCT,
        }
        return {**asdict(self), "rules": rules}


def _is_identifier(column: pd.Series, kind: str) -> bool:
    # Only text and integers can be identifiers: a float or date column is never one, and is not
    # counted (a hash table of every distinct value, 0.1 s a column at 1M rows).
    integers = kind == "numeric" and pd.api.types.is_integer_dtype(column)
    if kind != "categorical" and not integers:
        return False
    non_null = column.dropna()
    if len(non_null) < MIN_ROWS or non_null.nunique() != len(column):
        return False
    # An integer column unique per row and strictly increasing is a row number, not a feature.
    return kind == "categorical" or bool(column.is_monotonic_increasing)


def rule_for(name: str, column: pd.Series, kind: str, declared: bool) -> tuple[str | None, str]:
    """(reason to drop or None, a warning or "") for one typed column."""
    present = int(column.notna().sum())
    if present == 0:
        return "empty", ""
    if declared:
        return None, ""
    if _is_identifier(column, kind):
        return "identifier", ""
    if kind != "categorical":
        return None, ""
    distinct = int(column.nunique())
    if distinct == 1:
        return "constant", ""
    share = distinct / present
    if present >= MIN_ROWS and share >= NEAR_UNIQUE_SHARE:
        return "near_unique_text", ""
    if distinct >= WARN_DISTINCT and share >= WARN_SHARE:
        return None, (
            f"column {name!r} has {distinct} distinct values in {present} rows; only the "
            "most frequent become categories (max_categories), the rest one 'infrequent' group"
        )
    return None, ""


_EXPLAIN = {
    "empty": "it is empty",
    "identifier": "unique per row, so an identifier, not a feature",
    "near_unique_text": (
        f"at least {NEAR_UNIQUE_SHARE:.0%} of its values are distinct, so it is free text or a "
        "name; keep it with --column-types {name}=categorical"
    ),
    "constant": "it has a single value",
}


def explain(name: str, reason: str) -> str:
    return f"dropped column {name!r}: " + _EXPLAIN[reason].replace("{name}", name)


def select(
    table: pd.DataFrame, kinds: Mapping[str, str], declared: set[str]
) -> tuple[dict[str, str], Selection]:
    """The features to keep (name -> kind, in table order) and the selection record."""
    selection = Selection()
    features: dict[str, str] = {}
    for name, kind in kinds.items():
        reason, warning = rule_for(name, table[name], kind, name in declared)
        if reason:
            selection.dropped[name] = reason
            selection.warnings.append(explain(name, reason))
            continue
        if warning:
            selection.warnings.append(warning)
        features[name] = kind
    return features, selection


# Training-time selection ----------------------------------------------------------------------
# Train applies these to its own split, after Preprocess's rules above: ``rules`` (the default)
# drops constant and near-constant features and exact duplicates; ``importance:K`` then keeps
# the K features with the largest permutation importance on a bounded sample of the validation
# split and refits on them. The record goes into the model's manifest under
# ``feature_selection.training``, beside Preprocess's.
NEAR_CONSTANT_SHARE = 0.99  # the most frequent value's share of the rows (caret's nearZeroVar
# flags 95/5; 99% keeps a rare but real indicator, such as a 2% fraud flag)
IMPORTANCE_MAX_ROWS = 2000
IMPORTANCE_REPEATS = 3
MODES = "rules, or importance:K with K a whole number from 1 (keep the K most important)"


def parse_mode(text: str) -> int | None:
    """The K of ``importance:K``, None for ``rules``; a bad value raises ValueError."""
    value = text.strip()
    if value == "rules":
        return None
    kind, _, k = value.partition(":")
    if kind == "importance" and k.isdigit() and int(k) >= 1:
        return int(k)
    raise ValueError(f"FeatureSelection {text!r} is not {MODES}")


def check_feature_selection(values: Mapping[str, Any]) -> None:
    """A pipeline execution's FeatureSelection parameter, checked before any job runs."""
    if "FeatureSelection" in values:
        parse_mode(str(values["FeatureSelection"]))


def _top_count(present: pd.Series) -> int:
    """How many rows hold the most frequent value, or a smaller count when no value has half
    of them. Numbers skip the hash table of every distinct value (0.2 s a column at 700k rows):
    a value on more than half the rows is the median."""
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        values = present.to_numpy(dtype=np.float64)
        return int((values == np.median(values)).sum())
    return int(present.value_counts().iloc[0])


def training_rules(table: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, str]:
    """Features of the training split to drop, with why: constant, near-constant, duplicate."""
    dropped: dict[str, str] = {}
    kept_by_digest: dict[int, list[str]] = {}
    for name in kinds:
        column = table[name]
        present = column.dropna()
        if present.empty or (present == present.iloc[0]).all():
            dropped[name] = "constant: a single value in the training split"
            continue
        top = _top_count(present) / len(column)
        if top >= NEAR_CONSTANT_SHARE:
            dropped[name] = (
                f"near_constant: its most frequent value is {top:.1%} of the training rows "
                f"(at least {NEAR_CONSTANT_SHARE:.0%})"
            )
            continue
        digest = int(pd.util.hash_pandas_object(column, index=False).sum())
        twin = next((k for k in kept_by_digest.get(digest, []) if column.equals(table[k])), None)
        if twin is not None:
            dropped[name] = f"duplicate: the same values as {twin!r}"
            continue
        kept_by_digest.setdefault(digest, []).append(name)
    return dropped


def training_record(
    mode: str, kept: list[str], dropped: Mapping[str, str], importance: Mapping[str, float]
) -> dict[str, Any]:
    return {
        "mode": mode,
        "kept": list(kept),
        "dropped": dict(dropped),
        "importance": {k: round(float(v), 6) for k, v in importance.items()},
        "rules": {
            "near_constant_share": NEAR_CONSTANT_SHARE,
            "importance_max_rows": IMPORTANCE_MAX_ROWS,
            "importance_repeats": IMPORTANCE_REPEATS,
        },
    }
