"""boto3 done once: clients per command (never at import), the stage's region, retries for
throttling, and AWS errors turned into messages that say what to check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import MlopsError, NotFound

if TYPE_CHECKING:
    from mlops.stages import Names

DEFAULT_PROJECT = "mlops-tabular"  # mlops.stages.DEFAULT_PROJECT (a test keeps them equal)

# Standard mode retries throttling and transient faults with backoff; 10 attempts outlast bursts.
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Stage:
    """What a command needs to know about a deployed stage (from cdk.json and ``names``).

    The model package group and pipeline are the project's, built in the build stage: every
    stage deploys (and CI/CD promotes) the versions registered there (docs/deploy.md)."""

    name: str
    region: str
    model_package_group: str
    pipeline_name: str
    project: str = DEFAULT_PROJECT
    build_stage: str = "dev"

    @property
    def names(self) -> Names:
        from mlops.stages import names

        return names(self.project, self.name)

    @property
    def build_names(self) -> Names:
        from mlops.stages import names

        return names(self.project, self.build_stage)

    @classmethod
    def load(cls, name: str, project: str | None = None) -> Stage:
        """``project`` defaults to cdk.json's ``project`` setting (else mlops-tabular)."""
        from mlops.stages import build_stage, load_context, names, project_name, stage_settings

        context = {**load_context(), "stage": name}
        project = project or project_name(context)
        _, settings = stage_settings(context)
        built = names(project, build_stage(context))
        return cls(
            name,
            settings.region,
            built.model_package_group,
            built.pipeline,
            project,
            built.stage,
        )


class Aws:
    """Clients for one command, in the stage's region."""

    def __init__(self, stage: Stage, session: Any = None) -> None:
        import boto3

        self.stage = stage
        self.session = session or boto3.Session(region_name=stage.region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            self._clients[service] = self.session.client(
                service, config=Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS})
            )
        return self._clients[service]


@contextlib.contextmanager
def explained(action: str, resource: str = "", missing_hint: str = "") -> Iterator[None]:
    """Turn botocore's errors into one clear line: what failed, on what, and what to check."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except NoCredentialsError as exc:
        raise MlopsError(
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(or use --target local)"
        ) from exc
    except NoRegionError as exc:
        raise MlopsError("no AWS region: set the stage's region in cdk.json or AWS_REGION") from exc
    except EndpointConnectionError as exc:
        raise MlopsError(
            f"cannot reach AWS for {action}: {exc}; check the region and the network"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        on = f" on {resource}" if resource else ""
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            raise MlopsError(
                f"access denied: {action}{on}. Check the IAM policy of the role you are using "
                f"(aws sts get-caller-identity shows it): it needs {action}. AWS said: {message}"
            ) from exc
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            raise MlopsError(
                "your AWS session token has expired: log in again (aws sso login, ...)"
            ) from exc
        if code in ("ThrottlingException", "Throttling", "TooManyRequestsException"):
            raise MlopsError(
                f"AWS kept throttling {action} after {MAX_ATTEMPTS} tries; try later"
            ) from exc
        if code in (
            "ResourceNotFound",
            "ResourceNotFoundException",
            "NoSuchBucket",
            "NoSuchKey",
        ) or (
            code == "ValidationException"
            and ("does not exist" in message or "Could not find" in message)
        ):
            raise NotFound(f"{resource or action} does not exist. {missing_hint}".strip()) from exc
        raise MlopsError(f"{action}{on} failed: {code}: {message}") from exc


# S3 ---------------------------------------------------------------------------------------
def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key). Not urlparse: keys may hold '#' and '?'."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise MlopsError(f"{uri!r} is not an s3://bucket/key URI")
    return bucket, key


def read_object(aws: Any, uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    with explained("s3:GetObject", uri):
        return bytes(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def download_prefix(aws: Any, uri: str, into: Path) -> Path:
    """Every object under an S3 prefix (a processing output) into a local folder."""
    bucket, prefix = split_s3_uri(uri)
    prefix = prefix.rstrip("/")
    s3 = aws.client("s3")
    into.mkdir(parents=True, exist_ok=True)
    with explained("s3:ListBucket", uri):
        pages = list(
            s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        )
    for page in pages:
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) + 1 :]
            target = (into / relative).resolve()
            if not relative or not target.is_relative_to(into.resolve()):
                continue  # a folder marker, or a key that would escape the folder
            target.parent.mkdir(parents=True, exist_ok=True)
            with explained("s3:GetObject", f"s3://{bucket}/{item['Key']}"):
                s3.download_file(bucket, item["Key"], str(target))
    return into
