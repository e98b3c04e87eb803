"""The drift report: one self-contained HTML page per drift check, for a person to read."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlops.monitoring import DriftResult, FeatureDrift, Thresholds
from sagemaker_jobs.html_report import Section, new_figure, write_page

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BASELINE_COLOR, CURRENT_COLOR, DRIFT_COLOR = "#7b8794", "#2f80ed", "#cf222e"


def _number(value: float) -> float | str:
    return "" if math.isnan(value) else round(value, 4)


def _figure(feature: FeatureDrift, thresholds: Thresholds) -> Figure:
    figure = new_figure(4.6, 2.9)
    axes = figure.add_subplot()
    labels = feature.labels[:12]  # the most common categories; bins are 10 at most
    positions = np.arange(len(labels))
    width = 0.4
    current = CURRENT_COLOR if not feature.drifted else DRIFT_COLOR
    axes.bar(
        positions - width / 2,
        feature.baseline_shares[:12],
        width,
        label="baseline",
        color=BASELINE_COLOR,
    )
    axes.bar(
        positions + width / 2, feature.current_shares[:12], width, label="captured", color=current
    )
    axes.set_xticks(
        positions,
        labels,
        rotation=35 if feature.kind == "numeric" else 0,
        ha="right" if feature.kind == "numeric" else "center",
        fontsize=7,
    )
    axes.set_ylabel("share of rows")
    tallest = max([*feature.baseline_shares[:12], *feature.current_shares[:12], 0.01])
    axes.set_ylim(0, tallest * 1.25)  # headroom: the legend never covers a bar
    status = "drift" if feature.drifted else "no drift"
    axes.set_title(
        f"{feature.name}: PSI {feature.psi:.3f} ({status}, threshold {thresholds.psi})",
        fontsize=9,
    )
    axes.legend(fontsize=7, frameon=False)
    return figure


def write_report(
    path: Path,
    result: DriftResult,
    *,
    endpoint: str,
    baseline_source: str,
    thresholds: Thresholds,
    capture_files: int,
) -> Path:
    verdict = (
        f'<p class="fail">{len(result.violations)} violation(s): the captured traffic differs '
        "from the training data.</p>"
        if result.violations
        else '<p class="pass">No violation: the captured traffic looks like the training data.</p>'
    )
    summary = Section(
        "Summary",
        paragraphs=[
            f"{result.rows} captured rows from {capture_files} capture file(s) of endpoint "
            f"{endpoint}, against the baseline of {result.baseline_rows} training rows in "
            f"{baseline_source}.",
            f"A feature drifts when its population stability index (PSI) reaches "
            f"{thresholds.psi} and the two-sample test (Kolmogorov-Smirnov for numbers, "
            f"chi-square for categories) rejects 'same distribution' at p < {thresholds.p_value}. "
            "PSI under 0.1 is stable, 0.1 to 0.2 a moderate shift, above 0.2 a significant one.",
        ],
        raw_html=[verdict],
    )
    summary.table(
        [
            "feature",
            "column",
            "completeness (baseline -> captured)",
            "PSI",
            "test",
            "statistic",
            "p-value",
            "verdict",
        ],
        [
            [
                f.name,
                f.column,
                f"{f.baseline_completeness:.1%} -> "
                + ("absent" if not f.present else f"{f.completeness:.1%}"),
                _number(f.psi),
                f.test,
                _number(f.statistic),
                "" if math.isnan(f.p_value) else f"{f.p_value:.2g}",
                result.verdict(f),
            ]
            for f in result.features
        ],
    )
    sections = [summary]
    if result.violations:
        sections.append(
            Section(
                "Violations (constraint_violations.json)",
                paragraphs=["The check types are Model Monitor's."],
            ).table(
                ["feature", "check", "description"],
                [
                    [v["feature_name"], v["constraint_check_type"], v["description"]]
                    for v in result.violations
                ],
            )
        )
    plots = Section(
        "Distributions",
        paragraphs=[
            "Share of rows per baseline decile (numbers) or category, baseline in grey and "
            "captured traffic in blue (red when the feature drifted)."
        ],
    )
    for feature in result.features:
        if feature.labels:
            plots.figure(feature.name, _figure(feature, thresholds))
    sections.append(plots)
    return write_page(
        path,
        f"Drift report: {endpoint}",
        f"{len(result.violations)} violation(s) in {len(result.features)} features",
        sections,
    )
