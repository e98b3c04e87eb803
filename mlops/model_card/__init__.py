"""Model cards and evaluation reports of registered versions, locally and in AWS.

A card is JSON in the shape of SageMaker Model Cards content (``model_overview``,
``intended_uses``, ``training_details``, ``evaluation_details``, ``additional_information``,
``model_package_details``), so it can be given to ``CreateModelCard`` as it is, plus the same
facts rendered as Markdown for a reviewer. It is built from what the pipeline recorded, never
from guesses: the package (metrics, lineage metadata, artifact URI), the manifest inside
``model.tar.gz`` (features, hyperparameters, libraries), the artifact's own sha256 and the data
profile the Evaluate step keeps beside ``evaluation.json`` and ``report.html``.
"""

from mlops.model_card.content import CardSources, build_card, known_limits, render_markdown
from mlops.model_card.files import (
    CARD_JSON,
    CARD_MARKDOWN,
    MANIFEST_FILE,
    PROFILE_FILE,
    REPORT_FILE,
    AwsVersionFiles,
    CardFormat,
    LocalVersionFiles,
    VersionFiles,
    read_manifest,
)

__all__ = [
    "CARD_JSON",
    "CARD_MARKDOWN",
    "MANIFEST_FILE",
    "PROFILE_FILE",
    "REPORT_FILE",
    "AwsVersionFiles",
    "CardFormat",
    "CardSources",
    "LocalVersionFiles",
    "VersionFiles",
    "build_card",
    "known_limits",
    "read_manifest",
    "render_markdown",
]
