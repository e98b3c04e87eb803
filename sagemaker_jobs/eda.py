"""The exploratory data analysis report, ``eda.html``: what a data scientist looks at first.

Preprocess writes it beside ``profile.json`` in every run, and ``mlops data report`` writes it for
a file before any run. It is computed on a bounded sample of the modelling table (``MAX_ROWS``
rows, drawn with a fixed seed; the page says so), so its cost does not grow with the data, and
at most ``MAX_PLOTTED`` columns get a distribution plot.

Each flag names the rule that raised it (the thresholds are below and printed in the page):

- ``constant``: one distinct value (missing values aside);
- ``near_constant``: the most frequent value covers at least ``NEAR_CONSTANT_SHARE`` of the rows;
- ``near_unique``: a text column whose distinct values are at least
  ``feature_selection.NEAR_UNIQUE_SHARE`` of its rows, or an integer column unique per row (an
  identifier; Preprocess drops the text ones, and the page lists what it dropped and why);
- ``duplicate``: the same values as an earlier column;
- ``leakage_suspect``: a feature whose association with the target is at least
  ``LEAKAGE_ASSOCIATION`` (it nearly equals the target: was it known before the outcome?);
- ``extreme_skew``: a numeric column whose sample skewness is at least ``SKEW_LIMIT`` in size.

Association with the target, from 0 to 1: for a numeric feature and a numeric target, the
absolute Pearson correlation; for a numeric feature and a class, or a category and a number, the
correlation ratio (eta); for a category and a class, Cramer's V. Dates count by their ordinal day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sagemaker_jobs import feature_selection
from sagemaker_jobs.data import Schema
from sagemaker_jobs.features import parse_dates
from sagemaker_jobs.html_report import Section, new_figure, write_page

EDA_FILE = "eda.html"
MAX_ROWS = 20_000
MAX_PLOTTED = 24
MAX_HEATMAP = 30
NEAR_CONSTANT_SHARE = 0.99
LEAKAGE_ASSOCIATION = 0.98
SKEW_LIMIT = 5.0
SEED = 0


@dataclass(frozen=True)
class Flag:
    column: str
    rule: str
    detail: str


@dataclass
class Analysis:
    """What the page shows, computed on the sample; pure data, no plotting."""

    rows: int
    sampled: int
    target: str
    problem_type: str
    kinds: dict[str, str]
    missing: dict[str, float]  # share of rows
    association: dict[str, float]  # feature -> 0..1
    flags: list[Flag] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # Preprocess's: column -> reason


def sample(table: pd.DataFrame, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    return table if len(table) <= max_rows else table.sample(max_rows, random_state=SEED)


def _as_numbers(column: pd.Series, kind: str) -> pd.Series:
    if kind == "datetime":
        dates = parse_dates(column)
        return pd.Series(
            np.where(dates.isna(), np.nan, dates.dt.day_of_year + 366.0 * dates.dt.year),
            index=column.index,
        )
    return pd.to_numeric(column, errors="coerce").astype("float64")


def _correlation_ratio(categories: pd.Series, values: pd.Series) -> float:
    """eta: the share of the values' spread explained by the categories, square-rooted."""
    frame = pd.DataFrame({"c": categories.astype(str), "v": values}).dropna()
    if len(frame) < 2 or frame["v"].var() == 0:
        return 0.0
    means = frame.groupby("c")["v"].transform("mean")
    between = float(((means - frame["v"].mean()) ** 2).sum())
    total = float(((frame["v"] - frame["v"].mean()) ** 2).sum())
    return float(np.sqrt(between / total)) if total > 0 else 0.0


def _cramers_v(a: pd.Series, b: pd.Series) -> float:
    table = pd.crosstab(a.astype(str), b.astype(str))
    if min(table.shape) < 2:
        return 0.0
    n = float(table.to_numpy().sum())
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table.to_numpy() - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))


def association(feature: pd.Series, kind: str, target: pd.Series, problem_type: str) -> float:
    categorical_feature = kind == "categorical"
    if problem_type == "classification":
        if categorical_feature:
            return _cramers_v(feature.fillna("(missing)"), target)
        return _correlation_ratio(target, _as_numbers(feature, kind))
    numbers = pd.to_numeric(target, errors="coerce")
    if categorical_feature:
        return _correlation_ratio(feature.fillna("(missing)"), numbers)
    values = _as_numbers(feature, kind)
    both = pd.DataFrame({"x": values, "y": numbers}).dropna()
    if len(both) < 2 or both["x"].std() == 0 or both["y"].std() == 0:
        return 0.0
    return float(abs(both["x"].corr(both["y"])))


def _flags(frame: pd.DataFrame, kinds: dict[str, str], scores: dict[str, float]) -> list[Flag]:
    flags: list[Flag] = []
    seen: dict[int, str] = {}
    for name, kind in kinds.items():
        column = frame[name]
        present = column.dropna()
        distinct = int(present.nunique())
        if distinct <= 1:
            flags.append(Flag(name, "constant", f"{distinct} distinct value"))
        elif len(present) and (top := float(present.value_counts(normalize=True).iloc[0])) >= (
            NEAR_CONSTANT_SHARE
        ):
            flags.append(
                Flag(name, "near_constant", f"its most frequent value is {top:.1%} of the rows")
            )
        if kind == "categorical" and len(present) >= feature_selection.MIN_ROWS:
            share = distinct / len(present)
            if share >= feature_selection.NEAR_UNIQUE_SHARE:
                flags.append(Flag(name, "near_unique", f"{share:.0%} of its values are distinct"))
        elif kind == "numeric" and len(present) >= feature_selection.MIN_ROWS:
            numbers = pd.to_numeric(present, errors="coerce")
            if distinct == len(column) and bool((numbers == numbers.round()).all()):
                flags.append(Flag(name, "near_unique", "an integer unique per row: an identifier?"))
            skew = float(numbers.skew()) if distinct > 2 else 0.0
            if abs(skew) >= SKEW_LIMIT:
                flags.append(Flag(name, "extreme_skew", f"skewness {skew:.1f}"))
        digest = int(pd.util.hash_pandas_object(column.astype(str), index=False).sum())
        if digest in seen and column.astype(str).equals(frame[seen[digest]].astype(str)):
            flags.append(Flag(name, "duplicate", f"the same values as {seen[digest]!r}"))
        seen.setdefault(digest, name)
        if scores.get(name, 0.0) >= LEAKAGE_ASSOCIATION:
            flags.append(
                Flag(
                    name,
                    "leakage_suspect",
                    f"association with the target {scores[name]:.3f}: known before the outcome?",
                )
            )
    return flags


# Preprocess's selection rules (sagemaker_jobs.feature_selection) as this page's flags.
_DROPPED_AS = {
    "identifier": "near_unique",
    "near_unique_text": "near_unique",
    "constant": "constant",
    "empty": "constant",
}


def _dropped_flags(dropped: dict[str, str]) -> list[Flag]:
    return [
        Flag(name, _DROPPED_AS.get(reason, reason), f"dropped by Preprocess: {reason}")
        for name, reason in dropped.items()
    ]


def analyse(table: pd.DataFrame, schema: Schema) -> tuple[Analysis, pd.DataFrame]:
    """The analysis of a modelling table (Preprocess's, typed), and the sample it used."""
    part = sample(table)
    kinds: dict[str, str] = dict(schema.features)
    target = part[schema.target]
    scores = {
        name: association(part[name], kind, target, schema.problem_type)
        for name, kind in kinds.items()
    }
    analysis = Analysis(
        rows=len(table),
        sampled=len(part),
        target=schema.target,
        problem_type=schema.problem_type,
        kinds=kinds,
        missing={name: float(part[name].isna().mean()) for name in kinds},
        association=scores,
        flags=[*_dropped_flags(schema.dropped), *_flags(part, kinds, scores)],
        dropped=dict(schema.dropped),
    )
    return analysis, part


# The page -----------------------------------------------------------------------------------
def _distributions(part: pd.DataFrame, kinds: dict[str, str]) -> Any:
    names = list(kinds)[:MAX_PLOTTED]
    columns = 4
    rows = max(1, -(-len(names) // columns))
    figure = new_figure(12, 2.4 * rows, layout=None)
    figure.subplots_adjust(
        left=0.1, right=0.98, top=1 - 0.3 / rows, bottom=0.1 / rows, wspace=0.45, hspace=0.6
    )
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        kind = kinds[name]
        if kind == "categorical":
            counts = part[name].fillna("(missing)").astype(str).value_counts().head(8)
            axes.barh([str(c)[:18] for c in counts.index[::-1]], counts.to_numpy()[::-1])
        else:
            values = _as_numbers(part[name], kind).dropna()
            if kind == "datetime":
                values = values // 366.0  # the year
            _histogram(axes, values.to_numpy())
        axes.set_title(f"{name[:28]} ({kind})", fontsize=8)
        axes.tick_params(labelsize=7)
    return figure


def _histogram(axes: Any, values: np.ndarray) -> None:
    """One filled outline, not a patch per bin: a page drawn in every run stays cheap."""
    if len(values):
        counts, edges = np.histogram(values, bins=30)
        axes.stairs(counts, edges, fill=True)


def _bars(labels: list[str], values: list[float], title: str, limit: float | None = None) -> Any:
    figure = new_figure(6, max(2.0, 0.28 * len(labels) + 1), layout=None)
    figure.subplots_adjust(left=0.35, right=0.97)
    axes = figure.add_subplot()
    axes.barh([label[:30] for label in labels[::-1]], values[::-1])
    if limit is not None:
        axes.set_xlim(0, limit)
    axes.set_title(title, fontsize=10)
    return figure


def _heatmap(part: pd.DataFrame, numeric: list[str]) -> Any:
    names = numeric[:MAX_HEATMAP]
    matrix = part[names].apply(pd.to_numeric, errors="coerce").corr().fillna(0.0).to_numpy()
    size = 3 + 0.3 * len(names)
    figure = new_figure(size, size, layout=None)
    figure.subplots_adjust(left=0.3, bottom=0.3, right=0.95, top=0.92)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    axes.set_xticks(range(len(names)), [n[:16] for n in names], rotation=90, fontsize=7)
    axes.set_yticks(range(len(names)), [n[:16] for n in names], fontsize=7)
    figure.colorbar(image, ax=axes, shrink=0.7)
    axes.set_title("Pearson correlation among numeric features", fontsize=10)
    return figure


def sections(analysis: Analysis, part: pd.DataFrame) -> list[Section]:
    sampled = (
        f"Computed on a random sample of {analysis.sampled:,} of {analysis.rows:,} rows (seed "
        f"{SEED})."
        if analysis.sampled < analysis.rows
        else f"Computed on all {analysis.rows:,} rows."
    )
    overview = Section("Overview", paragraphs=[sampled]).table(
        ["target", "problem type", "rows", "features"],
        [[analysis.target, analysis.problem_type, analysis.rows, len(analysis.kinds)]],
    )
    rules = (
        f"Rules: constant (one distinct value); near_constant (the top value is at least "
        f"{NEAR_CONSTANT_SHARE:.0%} of the rows); near_unique (text with distinct values at "
        f"least {feature_selection.NEAR_UNIQUE_SHARE:.0%} of its rows, or an integer unique per "
        f"row); duplicate (the same values as an earlier column); leakage_suspect (association "
        f"with the target at least {LEAKAGE_ASSOCIATION}); extreme_skew (|skewness| at least "
        f"{SKEW_LIMIT:g})."
    )
    flagged = Section("Flags", paragraphs=[rules])
    if analysis.flags:
        flagged.table(
            ["column", "rule", "why"], [[f.column, f.rule, f.detail] for f in analysis.flags]
        )
    else:
        flagged.paragraphs.append("No column raised a flag.")
    if analysis.dropped:
        flagged.table(
            ["dropped by Preprocess", "reason"], [[c, r] for c, r in analysis.dropped.items()]
        )
    target = part[analysis.target]
    balance = Section("The target")
    if analysis.problem_type == "classification":
        counts = target.astype(str).value_counts()
        balance.table(
            ["class", "rows", "share"],
            [[c, int(n), f"{n / len(target):.1%}"] for c, n in counts.items()],
        )
        balance.figure(
            "Rows per class",
            _bars([str(c) for c in counts.index], [float(n) for n in counts], "rows per class"),
        )
    else:
        figure = new_figure(6, 3, layout=None)
        _histogram(figure.add_subplot(), pd.to_numeric(target, errors="coerce").dropna().to_numpy())
        balance.figure(f"Distribution of {analysis.target}", figure)
    kinds = analysis.kinds
    distributions = Section(
        "Distributions",
        paragraphs=[
            f"The first {MAX_PLOTTED} of {len(kinds)} features."
            if len(kinds) > MAX_PLOTTED
            else "Every feature: categories by count (top 8), numbers and dates (by year) as "
            "histograms."
        ],
    ).figure("Per-feature distributions", _distributions(part, kinds))
    missing = Section("Missing values").table(
        ["column", "missing share"],
        [[c, f"{s:.1%}"] for c, s in sorted(analysis.missing.items(), key=lambda i: -i[1])],
    )
    if any(analysis.missing.values()):
        with_missing = {c: s for c, s in analysis.missing.items() if s > 0}
        missing.figure(
            "Share of missing values",
            _bars(list(with_missing), list(with_missing.values()), "missing share", 1.0),
        )
    ranked = sorted(analysis.association.items(), key=lambda i: -i[1])
    associated = (
        Section(
            "Association with the target",
            paragraphs=[
                "0 to 1: |Pearson r| (number and number), correlation ratio (number and "
                "class, category and number), Cramer's V (category and class)."
            ],
        )
        .table(["feature", "kind", "association"], [[n, kinds[n], v] for n, v in ranked])
        .figure(
            "Association with the target",
            _bars([n for n, _ in ranked], [v for _, v in ranked], "association", 1.0),
        )
    )
    result = [overview, flagged, balance, distributions, missing, associated]
    numeric = [n for n, k in kinds.items() if k == "numeric"]
    if len(numeric) >= 2:
        result.append(
            Section("Correlations").figure("Correlation heatmap", _heatmap(part, numeric))
        )
    return result


def write_report(path: Path, table: pd.DataFrame, schema: Schema, source: str) -> Analysis:
    """Analyse ``table`` (Preprocess's modelling table) and write the page; return the analysis."""
    analysis, part = analyse(table, schema)
    write_page(
        path,
        f"Exploratory data analysis: {source}",
        f"target {schema.target}",
        sections(analysis, part),
    )
    return analysis
