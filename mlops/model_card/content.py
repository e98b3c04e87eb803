"""A model card's content and its Markdown, built from what the pipeline recorded.

Pure functions of ``CardSources`` (no files, no clients): ``files`` gathers the sources, locally
or from AWS, and writes what these functions build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.registry import ModelPackage


@dataclass(frozen=True)
class CardSources:
    package: ModelPackage
    manifest: dict[str, Any]  # manifest.json from model.tar.gz
    model_sha256: str  # of model.tar.gz, the bytes an endpoint loads
    profile: dict[str, Any] | None  # preprocess's profile of the training data


# the card ------------------------------------------------------------------------------
def build_card(sources: CardSources) -> dict[str, Any]:
    """The card content, in the SageMaker Model Cards JSON schema (snake_case keys)."""
    package, manifest, profile = sources.package, sources.manifest, sources.profile or {}
    evaluation = package.metrics
    gate = evaluation.get("quality_gate", {})
    hp = manifest.get("hyperparameters", {})
    estimator = str(hp.get("estimator", "unknown estimator")).replace("_", " ")
    problem, target = manifest["problem_type"], manifest["target"]
    features = [f"{f['name']} ({f['kind']})" for f in manifest["features"]]
    sklearn = manifest.get("libraries", {}).get("scikit-learn", "?")
    meta = package.metadata
    dataset_uri, dataset_sha = meta.get("DatasetUri", ""), meta.get("DatasetSha256", "")
    test_metrics = [
        {"name": name, "type": "number", "value": m["value"], **_gate_note(name, gate)}
        for name, m in evaluation.get("metrics", {}).items()
        if m.get("value") is not None
    ]
    groups: list[dict[str, Any]] = [{"name": "test split", "metric_data": test_metrics}]
    if matrix := evaluation.get("confusion_matrix"):
        groups.append(
            {
                "name": "confusion matrix",
                "metric_data": [
                    {
                        "name": "confusion matrix (rows: true class, columns: predicted)",
                        "type": "matrix",
                        "value": matrix["matrix"],
                        "x_axis_name": matrix["labels"],
                        "y_axis_name": matrix["labels"],
                    }
                ],
            }
        )
    if per_class := evaluation.get("per_class"):
        columns = ["precision", "recall", "f1", "support"]
        groups.append(
            {
                "name": "per class",
                "metric_data": [
                    {
                        "name": "per class on the test split (support: test rows)",
                        "type": "matrix",
                        "value": [[row[c] for c in columns] for row in per_class],
                        "x_axis_name": columns,
                        "y_axis_name": [row["class"] for row in per_class],
                    }
                ],
            }
        )
    lineage = {
        "pipeline_execution_id": meta.get("PipelineExecutionId", ""),
        "code_version": meta.get("CodeVersion", ""),
        "dataset_uri": dataset_uri,
        "dataset_sha256": dataset_sha,
        "model_artifact_uri": package.model_data_url,
        "model_artifact_sha256": sources.model_sha256,
        "model_file_sha256": manifest.get("sha256", ""),
    }
    return {
        "model_overview": {
            "model_name": f"{package.group}-{package.version}",
            "model_version": package.version,
            "model_description": (
                f"{estimator.capitalize()} {problem} of '{target}' from {len(features)} "
                f"features, trained and evaluated by the SageMaker pipeline of this repository."
            ),
            "problem_type": problem,
            "algorithm_type": f"{estimator} (scikit-learn {sklearn} pipeline)",
            "model_creator": "mlops pipeline (sagemaker_jobs)",
            "model_artifact": [package.model_data_url],
            "inference_environment": {"container_image": [package.image_uri]},
        },
        "intended_uses": {
            "purpose_of_model": f"Predict '{target}' ({problem}) for one row of features.",
            "intended_uses": (
                "Scoring rows with the training data's columns and types (see the features) "
                "through the model server, after a person approved this version in the registry."
            ),
            "factors_affecting_model_efficiency": (
                "Inputs unlike the training data: numbers outside the ranges in the data "
                "profile, categories never seen in training (treated as unknown), more missing "
                "values than in training. Watch captured traffic with `mlops monitor drift`."
            ),
            "risk_rating": "Unknown",
            "explanations_for_risk_rating": (
                "The pipeline cannot know the business impact of a wrong prediction; the "
                "approver sets the rating."
            ),
        },
        "training_details": {
            "training_observations": _training_observations(manifest, profile),
            "training_job_details": {
                "training_datasets": [dataset_uri] if dataset_uri else [],
                "training_environment": {"container_image": [package.image_uri]},
                "training_metrics": [
                    {"name": f"validation:{name}", "value": value}
                    for name, value in manifest.get("validation_metrics", {}).items()
                    if value is not None
                ],
                "hyper_parameters": [
                    {"name": name, "value": str(value)} for name, value in sorted(hp.items())
                ],
            },
        },
        "evaluation_details": [
            {
                "name": "held-out test split",
                "evaluation_observation": _gate_sentence(gate),
                "datasets": [dataset_uri] if dataset_uri else [],
                "metadata": {
                    "test_rows": str(evaluation.get("test_rows", "")),
                    "gate_metric": str(gate.get("metric", "")),
                    "gate_threshold": str(gate.get("threshold", "")),
                    "gate_passed": str(gate.get("passed", "")),
                },
                "metric_groups": groups,
            }
        ],
        "additional_information": {
            "ethical_considerations": (
                "Check that the training data represents the population the model will score "
                "and that no feature stands in for a protected attribute."
            ),
            "caveats_and_recommendations": " ".join(known_limits(evaluation, manifest, profile)),
            "custom_details": {
                **lineage,
                "features": ", ".join(features),
                "libraries": ", ".join(
                    f"{k} {v}" for k, v in manifest.get("libraries", {}).items()
                ),
            },
        },
        "model_package_details": {
            "model_package_group_name": package.group,
            "model_package_arn": package.arn,
            "model_package_version": package.version,
            "model_approval_status": package.approval_status,
            "approval_description": package.approval_description,
            "inference_specification": {
                "containers": [
                    {"image": package.image_uri, "model_data_url": package.model_data_url}
                ]
            },
        },
    }


def _gate_note(name: str, gate: dict[str, Any]) -> dict[str, str]:
    if name != gate.get("metric"):
        return {}
    return {"notes": _gate_sentence(gate)}


def _gate_sentence(gate: dict[str, Any]) -> str:
    if not gate:
        return "No quality gate was recorded."
    if gate.get("passed") is None:
        return f"Quality gate metric {gate['metric']} = {gate['value']} (no threshold recorded)."
    if message := gate.get("message"):  # says which direction the gate checked
        return f"{message}."
    verdict = "passed" if gate["passed"] else "failed"
    return (
        f"Quality gate {verdict}: {gate['metric']} = {gate['value']} against a threshold of "
        f"{gate['threshold']} (higher is better)."
    )


def _training_observations(manifest: dict[str, Any], profile: dict[str, Any]) -> str:
    parts = [f"Trained on {manifest.get('train_rows', '?')} rows"]
    if dataset := profile.get("dataset"):
        parts[0] += f" of the {dataset['rows']} kept from {dataset['raw_rows']} read"
    if counts := _class_counts(manifest, profile):
        parts.append("classes " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "; ".join(parts) + "."


def _class_counts(manifest: dict[str, Any], profile: dict[str, Any]) -> dict[str, int]:
    """Rows per class of the training split (the manifest's); older models only have the
    whole file's, from the profile."""
    counts = manifest.get("class_counts") or profile.get("target", {}).get("class_counts")
    return dict(counts or {})


def known_limits(
    evaluation: dict[str, Any], manifest: dict[str, Any], profile: dict[str, Any]
) -> list[str]:
    """What a reviewer should know before trusting the numbers, from the run's own facts."""
    limits = []
    if rows := evaluation.get("test_rows"):
        limits.append(
            f"The test metrics come from {rows} held-out rows of one split"
            + (
                f" (one row moves accuracy by {100 / rows:.1f} points)."
                if rows < 1000 and evaluation.get("problem_type") == "classification"
                else "."
            )
        )
    counts = _class_counts(manifest, profile)
    if rare := [f"{k} ({v} rows)" for k, v in counts.items() if v < 30]:
        limits.append(f"Few training examples for: {', '.join(rare)}.")
    missing = {k: v for k, v in profile.get("missing_values", {}).items() if v}
    if missing:
        limits.append(
            "Missing values in: "
            + ", ".join(f"{k} ({v})" for k, v in sorted(missing.items()))
            + " (gradient boosting learns which side of each split they go; other models fill "
            "them with the median or the category 'missing')."
        )
    if dropped := profile.get("dropped_columns"):
        limits.append(
            "Columns dropped before training, so never used: "
            + ", ".join(f"{k} ({why})" for k, why in sorted(dropped.items()))
            + "."
        )
    training = manifest.get("feature_selection", {}).get("training") or {}
    if selected := training.get("dropped"):
        limits.append(
            f"Feature selection in training ({training.get('mode')}) dropped: "
            + ", ".join(f"{k} ({why})" for k, why in selected.items())
            + "; requests may send them, the server ignores them."
        )
    limits.append(
        "The model knows only the data with the sha256 above; a shift in inputs makes these "
        "metrics stale, so check drift and retrain."
    )
    return limits


def render_markdown(card: dict[str, Any]) -> str:
    """The card for people: the same facts as the JSON, as Markdown."""
    overview, uses = card["model_overview"], card["intended_uses"]
    training = card["training_details"]
    job = training["training_job_details"]
    evaluation = card["evaluation_details"][0]
    info = card["additional_information"]
    custom = info["custom_details"]
    package = card["model_package_details"]
    lines = [
        f"# Model card: {package['model_package_group_name']} version "
        f"{package['model_package_version']}",
        "",
        f"{overview['model_description']} Status: **{package['model_approval_status']}**"
        + (f" ({package['approval_description']})" if package["approval_description"] else "")
        + ".",
        "",
        "## Intended use",
        "",
        f"{uses['purpose_of_model']} {uses['intended_uses']}",
        "",
        f"**Affects quality:** {uses['factors_affecting_model_efficiency']}",
        "",
        f"**Risk rating:** {uses['risk_rating']}. {uses['explanations_for_risk_rating']}",
        "",
        "## Training data",
        "",
        f"- Dataset: `{custom['dataset_uri']}`",
        f"- sha256: `{custom['dataset_sha256']}`",
        f"- {training['training_observations']}",
        "",
        "## Features",
        "",
        custom["features"],
        "",
        "## Hyperparameters",
        "",
        *_table(["Name", "Value"], [[h["name"], h["value"]] for h in job["hyper_parameters"]]),
        "",
        "## Metrics",
        "",
        *_table(
            ["Metric", "Split", "Value", "Note"],
            [
                *(
                    [m["name"], "test", m["value"], m.get("notes", "")]
                    for m in evaluation["metric_groups"][0]["metric_data"]
                ),
                *(
                    [m["name"].removeprefix("validation:"), "validation", m["value"], ""]
                    for m in job["training_metrics"]
                ),
            ],
        ),
        "",
        *_per_class(evaluation["metric_groups"]),
        "## Quality gate",
        "",
        evaluation["evaluation_observation"],
        "",
        "## Lineage",
        "",
        *_table(
            ["", ""],
            [
                ["Pipeline execution", custom["pipeline_execution_id"]],
                ["Code version", custom["code_version"]],
                ["Dataset", custom["dataset_uri"]],
                ["Dataset sha256", custom["dataset_sha256"]],
                ["Model artifact", custom["model_artifact_uri"]],
                ["Model artifact sha256", custom["model_artifact_sha256"]],
                ["Model package", package["model_package_arn"]],
                ["Image", overview["inference_environment"]["container_image"][0]],
                ["Libraries", custom["libraries"]],
            ],
        ),
        "",
        "## Known limits",
        "",
        *(f"- {limit}" for limit in _sentences(info["caveats_and_recommendations"])),
        "",
        f"**Ethical considerations:** {info['ethical_considerations']}",
        "",
    ]
    return "\n".join(lines)


def _per_class(groups: list[dict[str, Any]]) -> list[str]:
    matrix = next((g["metric_data"][0] for g in groups if g["name"] == "per class"), None)
    if matrix is None:
        return []
    rows = [[name, *row] for name, row in zip(matrix["y_axis_name"], matrix["value"], strict=True)]
    header = ["Class", *(c.capitalize() for c in matrix["x_axis_name"])]
    return ["## Per class (test split)", "", *_table(header, rows), ""]


def _sentences(text: str) -> list[str]:
    return [s.strip() + ("" if s.strip().endswith(".") else ".") for s in text.split(". ") if s]


def _table(header: list[str], rows: Any) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out
