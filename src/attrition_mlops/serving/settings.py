"""Settings of the online API (ATTRITION_SERVING_*). No side effects: nothing is created here.

Where the model comes from, in order: ``model_dir`` (an MLflow model directory baked into the
image), ``model_uri`` (one fixed MLflow model URI), else the registry alias ``alias`` of the
pipeline's registered model (falling back to ``fallback_alias`` while ``alias`` holds nothing),
followed every ``poll_seconds``. Registry location and model name come from the pipeline's own
settings (ATTRITION_TRACKING_URI, ATTRITION_STATE_DIR, ATTRITION_MODEL_NAME).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from attrition_mlops.settings import PipelineSettings

EXPORT_SUBDIR = "inference-logs"


class ServingSettings(BaseSettings):
    """The serving process (ATTRITION_SERVING_*)."""

    model_config = SettingsConfigDict(
        env_prefix="ATTRITION_SERVING_", extra="ignore", protected_namespaces=()
    )

    model_dir: Path | None = Field(None, description="MLflow model directory baked into the image")
    model_uri: str | None = Field(None, description="a fixed MLflow model URI (models:/name/3)")
    alias: str = Field("production", description="registry alias to serve and follow")
    fallback_alias: str | None = Field(
        "champion", description="served while `alias` holds no version (nothing deployed yet)"
    )
    poll_seconds: float = Field(5.0, ge=0, description="how often to check the source; 0: never")
    max_records: int = Field(1000, ge=1, description="records per request")
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="request body limit")
    api_key: SecretStr | None = Field(
        None, description="X-API-Key / bearer token; unset: auth off (local target only)"
    )
    log_export_dir: Path | None = Field(
        None,
        description="inference log export folder; default <ATTRITION_STATE_DIR>/inference-logs",
    )
    log_export: bool | None = Field(
        None, description="write the export folder; default: only when ATTRITION_TARGET=local"
    )
    log_stdout: bool = Field(True, description="also write each log line to stdout")
    log_flush_seconds: float = Field(1.0, gt=0, description="export flush interval")
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC key for EmployeeNumber; random per process when unset (local)"
    )
    fast_path: bool = Field(True, description="compiled numpy inference (False: sklearn path)")
    threads: int = Field(1, ge=1, description="native (OpenMP/BLAS) threads per inference")
    inline_max_records: int = Field(
        32, ge=0, description="requests up to this size score on the event loop (no thread hop)"
    )

    @field_validator("api_key")
    @classmethod
    def _key_not_empty(cls, key: SecretStr | None) -> SecretStr | None:
        # An empty value used to mean "auth off": a Secret created with an empty field, or a
        # `KEY=` line in .env, would silently open the API. Unset the variable to turn auth off.
        if key is not None and not key.get_secret_value().strip():
            raise ValueError(
                "ATTRITION_SERVING_API_KEY is set but empty: set a key, or unset the variable "
                "to run without authentication (local target only)"
            )
        return key

    def export_dir(self, pipeline: PipelineSettings) -> Path | None:
        """Where the export goes, or None when this target does not export to a folder."""
        enabled = self.log_export if self.log_export is not None else pipeline.target == "local"
        if not enabled:
            return None
        return self.log_export_dir or pipeline.state_dir / EXPORT_SUBDIR


@lru_cache
def get_serving_settings() -> ServingSettings:
    return ServingSettings()


FACTORY = "attrition_mlops.serving.app:create_app"
PROTOCOL = "attrition_mlops.serving.protocol:GuardedHttpToolsProtocol"

#: uvloop named, so a missing one fails the start instead of silently costing ~0.3 ms per
#: request. The access log is off: ~0.3 ms per request at low load, and every /predict is
#: already in the inference log, every request in /metrics.
UVICORN_OPTIONS: dict[str, Any] = {"loop": "uvloop", "http": PROTOCOL, "access_log": False}


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int


class ServerSettings(BaseSettings):
    """Where the server listens and the limits it puts on each connection."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_SERVING_", extra="ignore")

    host: str = Field("127.0.0.1", description="listen address (0.0.0.0 in containers)")
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes (1 in Kubernetes)")
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="request line + headers; more gets 431"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="from a request's first byte (or the connect) to its last header"
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="from the last header to the last body byte"
    )
    keep_alive_seconds: int = Field(5, ge=1, description="idle keep-alive connections close")
    max_connections: int = Field(
        256, ge=1, description="open connections; one more gets 503 and is closed"
    )
    graceful_shutdown_seconds: int = Field(
        20, ge=1, description="drain time after SIGTERM (below the orchestrator's kill deadline)"
    )

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            max_header_bytes=self.max_header_bytes,
            header_timeout=self.header_timeout_seconds,
            body_timeout=self.body_timeout_seconds,
            max_connections=self.max_connections,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """Everything ``uvicorn.run`` gets besides the app."""
        return {
            **UVICORN_OPTIONS,
            "factory": True,
            "host": self.host,
            "port": self.port,
            "workers": self.workers,
            "timeout_keep_alive": self.keep_alive_seconds,
            "timeout_graceful_shutdown": self.graceful_shutdown_seconds,
        }


@lru_cache
def get_server_settings() -> ServerSettings:
    return ServerSettings()
