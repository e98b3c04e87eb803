"""The evaluation report: one self-contained HTML page on how a model did on the test split.

It shows the metrics against the quality gate, the plots a reviewer looks at before approving a
model (confusion matrix, ROC and precision-recall curves for classifiers; predicted against
actual and residuals for regressors; permutation feature importance for both) and the profile
of the data the model was trained on. ``build_report`` returns the sections, so a test can look
at the very figures that go into the page; ``write_report`` writes the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sagemaker_jobs import importance
from sagemaker_jobs.html_report import Section, new_figure, write_page
from sagemaker_jobs.metric_directions import higher_is_better
from sagemaker_jobs.metrics import Predictions, predictions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_FILE = "report.html"
PASS, FAIL = '<span class="pass">passed</span>', '<span class="fail">failed</span>'


@dataclass(frozen=True)
class ReportInputs:
    """What the evaluate job already holds when it writes the report."""

    model: Any
    manifest: dict[str, Any]
    test: pd.DataFrame
    evaluation: dict[str, Any]  # evaluation.json's content
    profile: dict[str, Any] | None  # preprocess's profile.json, if the job was given it
    answers: Predictions | None = None  # the model's on the test split, if already computed


def build_report(inputs: ReportInputs) -> list[Section]:
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    # A test split is small: OpenMP threads in each of the dozens of predict calls below cost
    # far more than they save (seconds instead of a fraction of one on a busy machine).
    with threadpool_limits(limits=1):
        return _sections(inputs)


def _sections(inputs: ReportInputs) -> list[Section]:
    features = [f["name"] for f in inputs.manifest["features"]]
    target = inputs.manifest["target"]
    x, y = inputs.test[features], inputs.test[target]
    answers = inputs.answers or predictions(inputs.model, x)
    sections = [_gate_section(inputs.evaluation)]
    if inputs.evaluation["problem_type"] == "classification":
        sections += _classification_sections(inputs.model, y, inputs.evaluation, answers)
    else:
        sections += _regression_sections(y, answers)
    sections.append(_importance_section(inputs.model, x, y, inputs))
    sections += _profile_sections(inputs.profile)
    sections += _selection_sections(inputs.manifest)
    return sections


def write_report(path: Path, inputs: ReportInputs) -> Path:
    evaluation, manifest = inputs.evaluation, inputs.manifest
    estimator = manifest.get("hyperparameters", {}).get("estimator", "model")
    subtitle = (
        f"{evaluation['problem_type'].capitalize()} of '{manifest['target']}' by "
        f"{estimator.replace('_', ' ')}, scored on {evaluation['test_rows']} held-out test rows. "
        f"Model sha256 {manifest['sha256'][:12]}."
    )
    return write_page(path, "Evaluation report", subtitle, build_report(inputs))


# the gate ------------------------------------------------------------------------------
def _gate_section(evaluation: dict[str, Any]) -> Section:
    gate = evaluation["quality_gate"]
    threshold, passed = gate.get("threshold"), gate.get("passed")
    section = Section("Quality gate")
    if passed is None:
        section.raw_html.append(
            f"<p>Gate metric <b>{gate['metric']}</b> = {gate['value']:.4g}; no threshold was "
            "given to this evaluation, so there is no verdict.</p>"
        )
    else:
        section.raw_html.append(
            f"<p>The model {PASS if passed else FAIL} the gate. "
            + (
                "The pipeline registers it for approval.</p>"
                if passed
                else "The pipeline stops at its Fail step; nothing is registered.</p>"
            )
        )
        section.paragraphs.append(gate.get("message", ""))
    if chosen := gate.get("chosen"):
        section.paragraphs.append(f"Gate metric {gate['metric']}: {chosen}.")
    section.paragraphs.append(
        "Every metric is computed on the test split, which neither training nor tuning saw. "
        "The gate compares one of them with the QualityThreshold pipeline parameter: a lower "
        "bound for metrics where higher is better, an upper bound for errors such as rmse and "
        "mae. An averaged metric names its averaging."
    )
    rows = []
    for name, metric in evaluation["metrics"].items():
        is_gate = name == gate["metric"]
        verdict = "" if not is_gate or passed is None else ("pass" if passed else "fail")
        bound = "" if threshold is None else f"at least {threshold:.6g}"
        if threshold is not None and not higher_is_better(name):
            bound = f"at most {threshold:.6g}"
        rows.append(
            [
                name,
                "undefined" if metric["value"] is None else metric["value"],
                metric.get("averaging", ""),
                bound if is_gate else "",
                verdict,
            ]
        )
    section.table(["Metric", "Value", "Averaging", "Threshold", "Gate"], rows)
    if per_class := evaluation.get("per_class"):
        section.paragraphs.append(
            "Per class: precision is the share of the rows predicted as the class that are it; "
            "recall the share of the class's rows found; support its rows in the test split."
        )
        section.table(
            ["Class", "Precision", "Recall", "F1", "Support"],
            [[c["class"], c["precision"], c["recall"], c["f1"], c["support"]] for c in per_class],
        )
    return section


# classification ------------------------------------------------------------------------
def _classification_sections(
    model: Any, y: pd.Series, evaluation: dict[str, Any], answers: Predictions
) -> list[Section]:
    from sklearn import metrics as skm

    labels = evaluation["confusion_matrix"]["labels"]
    matrix = np.array(evaluation["confusion_matrix"]["matrix"])
    confusion = Section(
        "Confusion matrix",
        paragraphs=[
            "Rows are the true classes, columns what the model predicted: the diagonal counts "
            "right answers, every other cell one kind of mistake. Read a row to see what a class "
            "is mistaken for."
        ],
    )
    confusion.table(
        ["true \\ predicted", *labels],
        [[label, *(int(n) for n in row)] for label, row in zip(labels, matrix, strict=True)],
    )
    confusion.figure("Confusion matrix on the test split", _confusion_figure(labels, matrix))
    sections = [confusion]
    if answers.proba is not None:
        proba = answers.proba
        classes = [str(c) for c in model.classes_]
        # Binary: the curves of the positive class; multiclass: one-vs-rest, one per class.
        shown = classes[1:] if len(classes) == 2 else classes
        truth = y.astype(str).to_numpy()
        curves = Section(
            "ROC and precision-recall curves",
            paragraphs=[
                "Each curve sweeps the decision threshold for one class against all others "
                "(one-vs-rest). ROC: a curve hugging the top-left corner separates the class "
                "well; the diagonal is guessing. Precision-recall: the higher the curve stays as "
                "recall grows, the fewer false alarms it costs to find the class; it is the "
                "fairer view for rare classes. A class absent from the test split has no curve."
            ],
        )
        roc, pr = new_figure(5.2, 4.2), new_figure(5.2, 4.2)
        roc_axes, pr_axes = roc.add_subplot(), pr.add_subplot()
        rows = []
        for name in shown:
            positive = truth == name
            if positive.all() or not positive.any():
                continue
            score = proba[:, classes.index(name)]
            fpr, tpr, _ = skm.roc_curve(positive, score)
            precision, recall, _ = skm.precision_recall_curve(positive, score)
            auc, ap = skm.auc(fpr, tpr), skm.average_precision_score(positive, score)
            roc_axes.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
            pr_axes.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
            rows.append([name, int(positive.sum()), float(auc), float(ap)])
        roc_axes.plot([0, 1], [0, 1], linestyle="--", color="#9aa5b1", label="chance")
        _labels(roc_axes, "ROC curve (one-vs-rest)", "false positive rate", "true positive rate")
        _labels(pr_axes, "Precision-recall curve (one-vs-rest)", "recall", "precision")
        for axes in (roc_axes, pr_axes):
            axes.set_xlim(-0.02, 1.02)
            axes.set_ylim(-0.02, 1.05)
            axes.legend(fontsize=8, loc="lower right" if axes is roc_axes else "lower left")
        curves.table(["Class", "Test rows", "ROC AUC", "Average precision"], rows)
        curves.figure("ROC curves", roc).figure("Precision-recall curves", pr)
        sections.append(curves)
    return sections


def _confusion_figure(labels: list[str], matrix: np.ndarray) -> Figure:
    size = max(4.0, 0.7 * len(labels) + 2.5)
    figure = new_figure(size + 0.8, size)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, label="test rows")
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels, rotation=30 if len(labels) > 4 else 0, ha="right")
    axes.set_yticks(ticks, labels)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        axes.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "#1f2933",
        )
    _labels(axes, "Confusion matrix", "predicted class", "true class")
    return figure


# regression ----------------------------------------------------------------------------
def _regression_sections(y: pd.Series, answers: Predictions) -> list[Section]:
    predicted = np.asarray(answers.labels, dtype=float)
    actual = y.to_numpy(dtype=float)
    residuals = actual - predicted
    section = Section(
        "Predictions and residuals",
        paragraphs=[
            "Left: each test row's prediction against its true value; on the dashed line the "
            "model is exact. Middle: the residual (actual minus predicted) against the "
            "prediction; a good model leaves a shapeless band around zero, while a funnel or a "
            "curve means its error depends on the value. Right: the residuals' spread; a long "
            "tail on one side means the model systematically under- or over-predicts."
        ],
    )
    section.table(
        ["Residuals", "Mean", "Std", "Median absolute", "Largest absolute"],
        [
            [
                "actual - predicted",
                float(residuals.mean()),
                float(residuals.std()),
                float(np.median(np.abs(residuals))),
                float(np.abs(residuals).max()),
            ]
        ],
    )
    scatter = new_figure(4.6, 4.2)
    axes = scatter.add_subplot()
    axes.scatter(actual, predicted, s=14, alpha=0.7)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="#9aa5b1", label="exact")
    axes.legend(fontsize=8)
    _labels(axes, "Predicted against actual", "actual", "predicted")
    spread = new_figure(4.6, 4.2)
    axes = spread.add_subplot()
    axes.scatter(predicted, residuals, s=14, alpha=0.7)
    axes.axhline(0, linestyle="--", color="#9aa5b1")
    _labels(axes, "Residuals against prediction", "predicted", "actual - predicted")
    histogram = new_figure(4.6, 4.2)
    axes = histogram.add_subplot()
    axes.hist(residuals, bins="auto", color="#2f80ed", alpha=0.8)
    axes.axvline(0, linestyle="--", color="#9aa5b1")
    _labels(axes, "Residual distribution", "actual - predicted", "test rows")
    section.figure("Predicted against actual", scatter)
    section.figure("Residuals against prediction", spread)
    return [section.figure("Residual distribution", histogram)]


# both ----------------------------------------------------------------------------------
def _importance_section(model: Any, x: pd.DataFrame, y: pd.Series, inputs: ReportInputs) -> Section:
    evaluation = inputs.evaluation
    kinds = {f["name"]: f["kind"] for f in inputs.manifest["features"]}
    scoring = importance.scorer_name(
        evaluation["quality_gate"]["metric"], evaluation["problem_type"]
    )
    result = importance.permutation_importance(model, x, y, scoring=scoring, kinds=kinds)
    ascending = list(reversed(range(len(result.names))))
    figure = new_figure(5.6, max(2.5, 0.4 * len(result.names) + 1.2))
    axes = figure.add_subplot()
    axes.barh(
        [result.names[i] for i in ascending],
        result.means[ascending],
        xerr=result.stds[ascending],
        color="#2f80ed",
        ecolor="#52606d",
    )
    axes.axvline(0, color="#9aa5b1", linewidth=0.8)
    _labels(axes, "Permutation feature importance", f"drop in {scoring} when shuffled", "")
    paragraphs = [
        f"Each feature's column in the test split ({result.rows} rows of it, at most "
        f"{importance.MAX_ROWS}) is shuffled {importance.REPEATS} times (seed {importance.SEED}) "
        f"and the model scored again: the drop in {scoring} is how "
        "much the model relies on that feature (bars: mean, whiskers: standard deviation). "
        "Near zero means the model barely uses it; a negative value is noise. Correlated "
        "features share their importance, so each can look smaller than it is."
    ]
    if result.screened_out:
        paragraphs.append(
            f"Only the {len(result.names)} features the model's output varies with most "
            "(squared correlation for numbers and dates, correlation ratio for categories) were "
            f"shuffled; {result.screened_out} weaker ones were left out to bound the cost."
        )
    section = Section("Permutation feature importance", paragraphs=paragraphs)
    rows = [
        [name, float(mean), float(std)]
        for name, mean, std in zip(result.names, result.means, result.stds, strict=True)
    ]
    section.table(["Feature", f"Mean drop in {scoring}", "Std"], rows)
    return section.figure("Permutation feature importance on the test split", figure)


def _selection_sections(manifest: dict[str, Any]) -> list[Section]:
    """Train's feature selection (sagemaker_jobs.feature_selection), from the manifest."""
    record = manifest.get("feature_selection", {}).get("training")
    if not record:
        return []  # a model from before selection (manifest format 1)
    section = Section(
        "Feature selection in training",
        paragraphs=[
            f"Mode {record['mode']}: {len(record['kept'])} features kept, "
            f"{len(record['dropped'])} dropped. Requests may still send the dropped ones; "
            "the server ignores them."
        ],
    )
    importance = record.get("importance", {})
    section.table(
        ["Feature", "Kept", "Why dropped", "Permutation importance"],
        [[name, "yes", "", importance.get(name, "")] for name in record["kept"]]
        + [[name, "no", why, importance.get(name, "")] for name, why in record["dropped"].items()],
    )
    return [section]


def _profile_sections(profile: dict[str, Any] | None) -> list[Section]:
    if profile is None:
        return [
            Section(
                "Training data",
                paragraphs=["No data profile was given to this evaluation (--profile)."],
            )
        ]
    dataset, target = profile["dataset"], profile["target"]
    section = Section(
        "Training data",
        paragraphs=[
            "The profile preprocess wrote of the modelling table (all rows it kept, before the "
            "train/validation/test split). A column with many missing values, a target class "
            "with few rows or a dropped column is where to look when a metric disappoints."
        ],
    )
    section.table(
        ["Dataset sha256", "Rows read", "Rows kept", "Target", "Problem type"],
        [
            [
                dataset["sha256"],
                dataset["raw_rows"],
                dataset["rows"],
                target["name"],
                profile["problem_type"],
            ]
        ],
    )
    missing = profile.get("missing_values", {})
    numeric_rows = [
        [name, missing.get(name, 0), *(s.get(k) for k in ("mean", "std", "min", "50%", "max"))]
        for name, s in profile.get("numeric_summary", {}).items()
    ]
    if numeric_rows:
        section.table(
            ["Numeric feature", "Missing", "Mean", "Std", "Min", "Median", "Max"],
            [[n, m, *("" if v is None else v for v in rest)] for n, m, *rest in numeric_rows],
        )
    categorical_rows = [
        [
            name,
            missing.get(name, 0),
            s["distinct"],
            ", ".join(f"{k} ({v})" for k, v in s["top"].items()),
        ]
        for name, s in profile.get("categorical_summary", {}).items()
    ]
    if categorical_rows:
        section.table(
            ["Categorical feature", "Missing", "Distinct", "Most common"], categorical_rows
        )
    date_rows = [
        [name, missing.get(name, 0), s["min"], s["max"], s["distinct"], s["unparseable"]]
        for name, s in profile.get("datetime_summary", {}).items()
    ]
    if date_rows:  # drift on dates is checked on their year and day of year
        section.table(
            ["Date feature", "Missing", "Earliest", "Latest", "Distinct", "Unparseable"], date_rows
        )
    if warnings := profile.get("warnings"):
        section.table(["Feature selection note"], [[w] for w in warnings])
    if dropped := profile.get("dropped_columns"):
        section.table(["Dropped column", "Why"], sorted(dropped.items()))
    if counts := target.get("class_counts"):
        figure = new_figure(5.0, max(2.2, 0.4 * len(counts) + 1.0))
        axes = figure.add_subplot()
        bars = axes.barh([str(k) for k in counts], list(counts.values()), color="#7b8794")
        axes.bar_label(bars, padding=3, fontsize=8)
        axes.invert_yaxis()
        _labels(axes, f"Target '{target['name']}': rows per class", "rows", "")
        section.figure("Class balance of the modelling table", figure)
    elif "mean" in target:
        section.table(
            ["Target", "Mean", "Std", "Min", "Median", "Max"],
            [[target["name"], *(target.get(k) for k in ("mean", "std", "min", "50%", "max"))]],
        )
    return [section]


def _labels(axes: Any, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.25)
