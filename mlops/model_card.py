"""Model cards and evaluation reports of registered versions, locally and in AWS.

A card is JSON in the shape of SageMaker Model Cards content (``model_overview``,
``intended_uses``, ``training_details``, ``evaluation_details``, ``additional_information``,
``model_package_details``), so it can be given to ``CreateModelCard`` as it is, plus the same
facts rendered as Markdown for a reviewer. It is built from what the pipeline recorded, never
from guesses: the package (metrics, lineage metadata, artifact URI), the manifest inside
``model.tar.gz`` (features, hyperparameters, libraries), the artifact's own sha256 and the data
profile the Evaluate step keeps beside ``evaluation.json`` and ``report.html``.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlops.errors import MlopsError, NotFound
from mlops.home import Home
from mlops.registry import ModelPackage
from sagemaker_jobs.digests import file_sha256

CARD_JSON, CARD_MARKDOWN = "model-card.json", "model-card.md"
REPORT_FILE, PROFILE_FILE, MANIFEST_FILE = "report.html", "profile.json", "manifest.json"
CardFormat = Literal["json", "markdown"]


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
    verdict = "passed" if gate["passed"] else "failed"
    return (
        f"Quality gate {verdict}: {gate['metric']} = {gate['value']} against a threshold of "
        f"{gate['threshold']} (higher is better)."
    )


def _training_observations(manifest: dict[str, Any], profile: dict[str, Any]) -> str:
    parts = [f"Trained on {manifest.get('train_rows', '?')} rows"]
    if dataset := profile.get("dataset"):
        parts[0] += f" of the {dataset['rows']} kept from {dataset['raw_rows']} read"
    if counts := profile.get("target", {}).get("class_counts"):
        parts.append("classes " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "; ".join(parts) + "."


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
    counts = profile.get("target", {}).get("class_counts", {})
    if rare := [f"{k} ({v} rows)" for k, v in counts.items() if v < 30]:
        limits.append(f"Few training examples for: {', '.join(rare)}.")
    missing = {k: v for k, v in profile.get("missing_values", {}).items() if v}
    if missing:
        limits.append(
            "Missing values were imputed in: "
            + ", ".join(f"{k} ({v})" for k, v in sorted(missing.items()))
            + "."
        )
    if dropped := profile.get("dropped_columns"):
        limits.append(
            "Columns dropped before training, so never used: "
            + ", ".join(f"{k} ({why})" for k, why in sorted(dropped.items()))
            + "."
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


def _sentences(text: str) -> list[str]:
    return [s.strip() + ("" if s.strip().endswith(".") else ".") for s in text.split(". ") if s]


def _table(header: list[str], rows: Any) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def read_manifest(archive: Path) -> dict[str, Any]:
    """manifest.json from model.tar.gz, without unpacking the model."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile(MANIFEST_FILE)
            if member is None:
                raise KeyError(MANIFEST_FILE)
            return dict(json.loads(member.read()))
    except (KeyError, tarfile.TarError, OSError, ValueError) as exc:
        raise MlopsError(
            f"cannot read {MANIFEST_FILE} from {archive.name}: {exc}; the artifact was not "
            "written by this project's training job"
        ) from exc


# where a version's files are ---------------------------------------------------------------
class VersionFiles(ABC):
    """One registered version's artifacts and evaluation folder, local or in S3."""

    label: str  # "local" or "aws-<stage>": keeps the two apart under MLOPS_HOME

    def __init__(self, home: Home, package: ModelPackage) -> None:
        self.home, self.package = home, package

    @abstractmethod
    def evaluation_file(self, name: str) -> bytes | None:
        """A file of the Evaluate step's output folder, or None when it is not there."""

    @abstractmethod
    def model_archive(self, into: Path) -> Path:
        """model.tar.gz as a local file (downloaded into `into` if need be)."""

    def rebuild_report(self, into: Path) -> Path:
        raise NotFound(
            f"no {REPORT_FILE} beside the evaluation of {self.package.group} version "
            f"{self.package.version}: it was registered before the Evaluate step wrote "
            "reports; run the pipeline again to get one"
        )

    def default_dir(self) -> Path:
        return (
            self.home.root / "models" / self.label / self.package.group / str(self.package.version)
        )

    def sources(self) -> CardSources:
        with tempfile.TemporaryDirectory() as scratch:
            archive = self.model_archive(Path(scratch))
            model_sha256, manifest = file_sha256(archive), read_manifest(archive)
        raw_profile = self.evaluation_file(PROFILE_FILE)
        try:
            profile = json.loads(raw_profile) if raw_profile else None
        except ValueError as exc:
            raise MlopsError(f"the data profile beside the evaluation is not JSON: {exc}") from exc
        return CardSources(self.package, manifest, model_sha256, profile)

    def write_card(self, output: Path | None, fmt: CardFormat) -> Path:
        card = build_card(self.sources())
        folder = output or self.default_dir()
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "json":
            path = folder / CARD_JSON
            path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        else:
            path = folder / CARD_MARKDOWN
            path.write_text(render_markdown(card), encoding="utf-8")
        return path

    def write_report(self, output: Path | None) -> Path:
        folder = output or self.default_dir()
        folder.mkdir(parents=True, exist_ok=True)
        body = self.evaluation_file(REPORT_FILE)
        if body is None:
            return self.rebuild_report(folder / REPORT_FILE)
        path = folder / REPORT_FILE
        path.write_bytes(body)
        return path


class LocalVersionFiles(VersionFiles):
    label = "local"

    def __init__(self, home: Home, package: ModelPackage) -> None:
        from mlops.executor.records import find_execution
        from mlops.store import LocalObjectStore

        super().__init__(home, package)
        self.store = LocalObjectStore(home.store)
        execution = package.metadata.get("PipelineExecutionId")
        if not execution:
            raise MlopsError(
                f"{package.group} version {package.version} has no PipelineExecutionId: it was "
                "not registered by the pipeline, so it has no evaluation to report"
            )
        self.record = find_execution(home.runs, execution)
        self.outputs = {step.name: step.outputs for step in self.record.steps}
        evaluation = self.outputs.get("Evaluate", {}).get("evaluation")
        if not evaluation:
            raise NotFound(f"execution {execution} has no Evaluate output")
        self.evaluation_dir = self.store.path_for(evaluation)

    def evaluation_file(self, name: str) -> bytes | None:
        path = self.evaluation_dir / name
        profile = self.outputs.get("Preprocess", {}).get("profile")
        if not path.exists() and name == PROFILE_FILE and profile:  # older runs: Preprocess's
            path = self.store.path_for(profile) / PROFILE_FILE
        return path.read_bytes() if path.exists() else None

    def model_archive(self, into: Path) -> Path:
        path = self.store.path_for(self.package.model_data_url)
        if not path.is_file():
            raise NotFound(f"model artifact {self.package.model_data_url} is gone ({path})")
        return path

    def rebuild_report(self, into: Path) -> Path:
        """A version from before reports: score its model on its test split again."""
        from sagemaker_jobs import artifacts
        from sagemaker_jobs.contract import JobError
        from sagemaker_jobs.evaluate import evaluate
        from sagemaker_jobs.report import write_report

        test = self.outputs.get("Preprocess", {}).get("test")
        if not test:
            return super().rebuild_report(into)
        gate = self.package.metrics.get("quality_gate", {})
        threshold = self.record.parameters.get("QualityThreshold")
        raw_profile = self.evaluation_file(PROFILE_FILE)
        try:
            with tempfile.TemporaryDirectory() as scratch:
                model_dir = artifacts.unpack(self.model_archive(Path(scratch)), Path(scratch))
                _, inputs = evaluate(
                    model_dir,
                    self.store.path_for(test),
                    gate.get("metric", "auto"),
                    None if threshold is None else float(threshold),
                    json.loads(raw_profile) if raw_profile else None,
                )
        except JobError as exc:
            raise MlopsError(f"cannot rebuild the report: {exc}") from exc
        return write_report(into, inputs)


class AwsVersionFiles(VersionFiles):
    def __init__(self, home: Home, package: ModelPackage, aws: Any) -> None:
        from mlops.aws import explained

        super().__init__(home, package)
        self.aws, self.label = aws, f"aws-{aws.stage.name}"
        with explained("sagemaker:DescribeModelPackage", package.arn):
            described = aws.client("sagemaker").describe_model_package(ModelPackageName=package.arn)
        statistics = (
            described.get("ModelMetrics", {})
            .get("ModelQuality", {})
            .get("Statistics", {})
            .get("S3Uri", "")
        )
        if not statistics:
            raise NotFound(
                f"{package.group} version {package.version} has no ModelQuality statistics: it "
                "was not registered by the pipeline, so it has no evaluation to report"
            )
        self.evaluation_prefix = statistics.rsplit("/", 1)[0]

    def _get(self, uri: str) -> Any:
        from mlops.aws import explained, split_s3_uri

        bucket, key = split_s3_uri(uri)
        with explained("s3:GetObject", uri):
            return self.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"]

    def evaluation_file(self, name: str) -> bytes | None:
        try:
            return bytes(self._get(f"{self.evaluation_prefix}/{name}").read())
        except NotFound:
            return None

    def model_archive(self, into: Path) -> Path:
        path = into / "model.tar.gz"
        body = self._get(self.package.model_data_url)
        with path.open("wb") as handle:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                handle.write(chunk)
        return path


def version_files(
    home: Home, target: str, stage: str, group: str | None, version: int
) -> VersionFiles:
    """The files of one registered version in the registry that --target names."""
    from mlops.registry import open_registry

    chosen = open_registry(home, target, stage, group)
    package = chosen.registry.describe_model_package(chosen.group, version)
    if chosen.aws is not None:
        return AwsVersionFiles(home, package, chosen.aws)
    return LocalVersionFiles(home, package)
