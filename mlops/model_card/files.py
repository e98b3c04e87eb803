"""Where a registered version's card sources and reports are, locally or in AWS, and writing
its card and report under ``MLOPS_HOME`` (or a folder given)."""

from __future__ import annotations

import json
import tarfile
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

from mlops.errors import MlopsError, NotFound
from mlops.home import Home
from mlops.model_card.content import CardSources, build_card, render_markdown
from mlops.registry import ModelPackage
from sagemaker_jobs.digests import file_sha256

CARD_JSON, CARD_MARKDOWN = "model-card.json", "model-card.md"
REPORT_FILE, PROFILE_FILE, MANIFEST_FILE = "report.html", "profile.json", "manifest.json"
CardFormat = Literal["json", "markdown"]


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
