"""Where alerts go (``ATTRITION_ALERT_*``), and the links an alert carries (runbook, MLflow)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from attrition_mlops.alerts.kinds import EVENTS, Severity, WebhookStyle
from attrition_mlops.settings import get_settings

log = logging.getLogger(__name__)


def _split_csv(value: Any) -> Any:
    # Comma-separated in the environment ("a@x.org, b@x.org"), a list when given in code.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class AlertSettings(BaseSettings):
    """Where alerts go (ATTRITION_ALERT_*). Secrets come from connections or the environment."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_ALERT_", extra="ignore")

    log_path: Path | None = Field(None, description="default: <state_dir>/alerts/alerts.jsonl")
    webhook_conn_id: str = "attrition_alerts_webhook"
    # Outside Airflow (a job run by hand) there is no connection: a URL from the environment.
    webhook_url: SecretStr | None = None
    webhook_style: WebhookStyle = "generic"
    webhook_min_severity: Severity = "info"
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_retries: int = Field(3, ge=0, le=10)
    webhook_backoff_seconds: float = Field(1.0, ge=0)
    email_to: Annotated[tuple[str, ...], NoDecode] = ()
    email_from: str | None = None
    email_min_severity: Severity = "warning"
    smtp_conn_id: str = "smtp_default"
    silence: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="events only logged locally, never sent (comma-separated)"
    )
    airflow_base_url: str = "http://127.0.0.1:8080"
    mlflow_base_url: str | None = Field(None, description="default: ATTRITION_MLFLOW_UI_URL")
    runbook_url: str = "docs/runbook.md"
    incident_db_url: str | None = Field(
        None, description="SQLAlchemy URL of the incidents table; default: SQLite in state_dir"
    )
    incident_resolve_after_nights: int = Field(
        3, ge=1, le=60, description="clear nights in a row that resolve an open incident"
    )

    split_lists = field_validator("email_to", "silence", mode="before")(_split_csv)

    @field_validator("silence")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(EVENTS))
        if unknown:
            raise ValueError(f"unknown alert events {unknown}; known: {sorted(EVENTS)}")
        return value

    @property
    def resolved_log_path(self) -> Path:
        return self.log_path or get_settings().state_dir / "alerts" / "alerts.jsonl"

    @property
    def resolved_incident_db_url(self) -> str:
        if self.incident_db_url:
            return self.incident_db_url
        path = get_settings().state_dir / "alerts" / "incidents.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path.resolve()}"

    @property
    def resolved_mlflow_base_url(self) -> str:
        return (self.mlflow_base_url or get_settings().mlflow_ui_url).rstrip("/")


@lru_cache
def get_alert_settings() -> AlertSettings:
    return AlertSettings()


def safe_alert_settings() -> AlertSettings:
    try:
        return get_alert_settings()
    except Exception:  # a typo in ATTRITION_ALERT_* must not swallow the alert itself
        log.exception("invalid ATTRITION_ALERT_* settings; alerting with defaults")
        return AlertSettings.model_construct()


def runbook_link(event: str, settings: AlertSettings | None = None) -> str:
    base = (settings or safe_alert_settings()).runbook_url
    return f"{base}#alert-{event.replace('_', '-')}"


def mlflow_run_url(
    run_id: str, experiment_id: str | None = None, settings: AlertSettings | None = None
) -> str:
    base = (settings or safe_alert_settings()).resolved_mlflow_base_url
    if experiment_id:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{base}/#/runs/{run_id}"


def model_version_url(name: str, version: str | int, settings: AlertSettings | None = None) -> str:
    base = (settings or safe_alert_settings()).resolved_mlflow_base_url
    return f"{base}/#/models/{quote(name, safe='')}/versions/{version}"
