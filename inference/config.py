"""Server settings from the ``SAGEMAKER_*`` environment, read once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from inference.handler import ACCEPTS, media_type


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_dir: Path = Path("/opt/ml/model")
    host: str = "0.0.0.0"  # a container listens on all interfaces
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    timeout: int = Field(60, ge=1, le=3600, description="seconds a request may take")
    # Deadlines that close slow or silent connections (slowloris): a request's headers within
    # header_timeout of its first byte (or of the connection's start), its body within
    # body_timeout of its headers; a keep-alive connection idle for idle_timeout is closed.
    header_timeout: float = Field(20, gt=0, le=3600)
    body_timeout: float = Field(60, gt=0, le=3600)
    idle_timeout: int = Field(75, ge=1, le=3600)
    max_payload_mb: float = Field(6, gt=0, le=100)
    default_accept: str = "application/json"
    variant_name: str = "AllTraffic"
    endpoint_name: str = ""
    capture_dir: Path | None = None
    capture_percent: float = Field(100, ge=0, le=100)
    capture_max_mb: float = Field(64, gt=0)
    # Prometheus metrics on a port of their own; off by default (SageMaker only talks to 8080).
    metrics_port: int | None = Field(None, ge=1, le=65535)
    # Where the workers' metric files go (a local endpoint's own folder); default: temp dir.
    metrics_dir: Path | None = None

    @field_validator("default_accept")
    @classmethod
    def _known_accept(cls, value: str) -> str:
        kind, _ = media_type(value)
        if kind not in ACCEPTS:
            raise ValueError(f"must be one of {', '.join(ACCEPTS)}")
        return kind

    @field_validator("metrics_port")
    @classmethod
    def _own_port(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value == info.data.get("port"):
            raise ValueError(f"must differ from the serving port {value}")
        return value

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)


_ENV = {
    "SAGEMAKER_BIND_TO_PORT": "port",
    "SAGEMAKER_MODEL_SERVER_WORKERS": "workers",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT": "timeout",
    "SAGEMAKER_MAX_PAYLOAD_IN_MB": "max_payload_mb",
    "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "default_accept",
    "SAGEMAKER_VARIANT_NAME": "variant_name",
    "SM_MODEL_DIR": "model_dir",
    "MLOPS_HEADER_TIMEOUT": "header_timeout",
    "MLOPS_BODY_TIMEOUT": "body_timeout",
    "MLOPS_IDLE_TIMEOUT": "idle_timeout",
    # Local endpoints (mlops endpoint deploy) pass these:
    "MLOPS_ENDPOINT_NAME": "endpoint_name",
    "MLOPS_CAPTURE_DIR": "capture_dir",
    "MLOPS_CAPTURE_PERCENT": "capture_percent",
    "MLOPS_CAPTURE_MAX_MB": "capture_max_mb",
    "MLOPS_METRICS_PORT": "metrics_port",
    "MLOPS_METRICS_DIR": "metrics_dir",
}


class SettingsError(ValueError):
    pass


def from_env(env: Mapping[str, str] | None = None, **overrides: object) -> ServerSettings:
    env = os.environ if env is None else env
    values: dict[str, object] = {field: env[name] for name, field in _ENV.items() if env.get(name)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServerSettings.model_validate(values)
    except ValidationError as exc:
        names = {field: name for name, field in _ENV.items()}
        problems = "; ".join(
            f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise SettingsError(f"bad server settings: {problems}") from exc


def to_env(settings: ServerSettings) -> dict[str, str]:
    """The environment that makes ``from_env`` give these settings back (for worker processes)."""
    data = settings.model_dump()
    return {
        name: str(data[field]) for name, field in _ENV.items() if data.get(field) not in (None, "")
    }
