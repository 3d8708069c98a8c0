"""What the rollout backends and the driver share: environments, errors, settings, the protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from attrition_mlops.settings import PipelineSettings

Environment = Literal["staging", "production"]
ENVIRONMENTS: tuple[str, ...] = ("staging", "production")
ROLLOUT_REASON = "deployment"
ROLLBACK_REASON = "deployment rollback"
PRODUCTION_EXPORT = "inference-logs"  # what the drift job reads by default (jobs/drift.py)


class RolloutError(RuntimeError):
    """A rollout did not reach its target. ``observed`` is the last state seen."""

    def __init__(self, environment: str, target: str, observed: str, message: str) -> None:
        self.environment, self.target, self.observed = environment, target, observed
        super().__init__(message)


class RolloutFailed(RolloutError):
    def __init__(self, environment: str, target: str, observed: str) -> None:
        super().__init__(
            environment, target, observed, f"{environment}: rollout of {target} failed: {observed}"
        )


class RolloutRefused(RolloutFailed):
    """The platform refused the request before anything changed (e.g. Kubernetes RBAC): the
    environment is as it was, so there is nothing to roll back."""


class RolloutTimeout(RolloutError):
    def __init__(self, environment: str, target: str, observed: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(
            environment,
            target,
            observed,
            f"{environment}: {target} not rolled out within {timeout_s:g} s; last observed: "
            f"{observed}",
        )


@dataclass(frozen=True)
class Deployed:
    """What runs in an environment: the model version and (on Kubernetes) the image."""

    environment: str
    model_version: str | None
    image: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deployed:
        return cls(data["environment"], data.get("model_version"), data.get("image"))


def describe(model_version: str | None, image: str | None) -> str:
    parts = [f"model version {model_version}" if model_version else "no model version"]
    if image:
        parts.append(f"image {image}")
    return ", ".join(parts)


def version_str(model_version: str | int | None) -> str | None:
    """Registry versions are strings ("3"); accept the int a caller may hold."""
    return None if model_version is None else str(model_version)


def check_environment(env: str) -> str:
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    return env


class RolloutBackend(Protocol):
    def current(self, env: str) -> Deployed: ...

    def roll_out(self, env: str, *, model_version: str, image: str | None) -> Deployed: ...

    def wait(
        self,
        env: str,
        *,
        model_version: str | None,
        image: str | None,
        timeout_s: float | None = None,
    ) -> None: ...

    def roll_back(
        self, env: str, previous: Deployed, *, timeout_s: float | None = None
    ) -> None: ...


class DeploySettings(BaseSettings):
    """Where the environments are and how long a rollout may take (ATTRITION_DEPLOY_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_DEPLOY_", extra="ignore")

    staging_url: str | None = Field(None, description="azure: the staging API's base URL")
    production_url: str | None = Field(None, description="azure: the production API's base URL")
    staging_api_key: SecretStr | None = Field(None, description="staging API key (smoke test)")
    production_api_key: SecretStr | None = Field(None, description="production API key")
    staging_namespace: str = "attrition-staging"
    production_namespace: str = "attrition-production"
    deployment: str = "attrition-serving"
    container: str = "serving"
    kubernetes_conn_id: str = "kubernetes_default"
    # Longer than the Deployment's progressDeadlineSeconds (300), so a stuck rollout is reported
    # by Kubernetes (ProgressDeadlineExceeded) rather than by our own clock.
    rollout_timeout_s: float = Field(420.0, gt=0)
    poll_s: float = Field(2.0, gt=0, description="how often wait() looks")
    smoke_timeout_s: float = Field(30.0, gt=0, description="per smoke-test request")

    def url(self, env: str) -> str | None:
        return getattr(self, f"{check_environment(env)}_url")

    def api_key(self, env: str) -> str | None:
        key: SecretStr | None = getattr(self, f"{check_environment(env)}_api_key")
        return key.get_secret_value() if key else None

    def namespace(self, env: str) -> str:
        return getattr(self, f"{check_environment(env)}_namespace")


class LocalServingSettings(BaseSettings):
    """The local target's serving processes (ATTRITION_LOCAL_SERVING_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_LOCAL_SERVING_", extra="ignore")

    host: str = "127.0.0.1"
    staging_port: int = Field(8001, gt=0, lt=65536)
    production_port: int = Field(8002, gt=0, lt=65536)
    poll_seconds: float = Field(1.0, gt=0, description="how often a server checks its alias")
    graceful_shutdown_s: int = Field(20, ge=1, description="uvicorn's drain on SIGTERM")

    def port(self, env: str) -> int:
        return getattr(self, f"{check_environment(env)}_port")

    def base_url(self, env: str) -> str:
        return f"http://{self.host}:{self.port(env)}"

    def export_dir(self, env: str, pipeline: PipelineSettings) -> Path:
        """Production exports where the drift job looks; staging's smoke traffic stays apart."""
        name = PRODUCTION_EXPORT if env == "production" else f"{PRODUCTION_EXPORT}-{env}"
        return pipeline.state_dir.resolve() / name
