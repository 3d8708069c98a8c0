"""Alerts: one typed alert, a local JSON-lines log, and webhook and e-mail transports.

Airflow-free on purpose: jobs and tests can raise alerts without a scheduler. The only Airflow
piece, the SMTP provider's hook, is imported when an e-mail is actually sent. The notifier in
``attrition_mlops.orchestration.notifier`` builds alerts from Airflow callback contexts and
resolves the webhook connection; everything else happens here.

Delivery rule: the local log is written first and always; each configured transport is then
tried on its own, and a failing one is recorded (in the result and in the log), never raised.
Webhook URLs, tokens and routing keys never reach a log line or an exception message.
"""

from __future__ import annotations

import fcntl
import html
import http.client
import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from attrition_mlops.settings import get_settings

log = logging.getLogger(__name__)

Severity = Literal["info", "warning", "critical"]
WebhookStyle = Literal["generic", "slack", "teams", "pagerduty"]
Event = Literal[
    "dag_failed",
    "drift_confirmed",
    "drift_insufficient_data",
    "champion_promoted",
    "approval_requested",
    "approval_rejected",
    "model_deployed",
    "deployment_rolled_back",
]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
ALERT_SCHEMA = "attrition-mlops/alert/1"
_MAX_DETAILS_CHARS = 16_000


@dataclass(frozen=True)
class EventSpec:
    """Defaults for one event; the runbook has a section with anchor ``alert-<event>``."""

    severity: Severity
    title: str
    summary: str


EVENTS: dict[str, EventSpec] = {
    "dag_failed": EventSpec(
        "critical",
        "Pipeline task failed",
        "A pipeline task failed: open the task log and follow the runbook entry for its error.",
    ),
    "drift_confirmed": EventSpec(
        "warning",
        "Input drift confirmed",
        "Serving inputs drifted from the training profile: open the drift report and decide "
        "between retraining and fixing the upstream data.",
    ),
    "drift_insufficient_data": EventSpec(
        "info",
        "Too little traffic for a drift check",
        "The drift window held too few requests to test: check that traffic and the "
        "inference-log export are flowing.",
    ),
    "champion_promoted": EventSpec(
        "info",
        "New champion promoted",
        "The gate promoted a new champion: review its decision report before it is deployed.",
    ),
    "approval_requested": EventSpec(
        "info",
        "Production rollout awaits approval",
        "Staging passed its smoke test: approve or reject the production rollout in Airflow.",
    ),
    "approval_rejected": EventSpec(
        "info",
        "Production rollout rejected",
        "A reviewer rejected the production rollout: production keeps its current model.",
    ),
    "model_deployed": EventSpec(
        "info",
        "Model deployed",
        "A new model version is serving: watch latency and error rates for the next hour.",
    ),
    "deployment_rolled_back": EventSpec(
        "warning",
        "Deployment rolled back",
        "A rollout failed its checks and was rolled back: find out why before retrying it.",
    ),
}


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


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: Any) -> Any:
    """Strict JSON: numpy scalars and arrays (p-values, PSI) become numbers, NaN and infinity
    become null (receivers such as Slack reject them), anything else unknown becomes text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()  # numpy scalar or array
        if isinstance(value, list):
            return _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class Alert(BaseModel):
    """One alert. Only ``event`` is required; the rest defaults from ``EVENTS`` and the clock."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str = Field(min_length=1)
    event: Event
    severity: Severity
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1, description="one actionable sentence")
    details: dict[str, Any] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict, description="name -> URL")
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    runbook: str
    dedup_key: str = Field(description="one incident per key in PagerDuty (max 255 chars)")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        data["alert_id"] = data.get("alert_id") or uuid.uuid4().hex
        event = data.get("event")
        if event not in EVENTS:
            return data  # field validation reports the bad event
        spec = EVENTS[event]
        for key, default in (("severity", spec.severity), ("title", spec.title)):
            data[key] = data.get(key) or default
        data["summary"] = data.get("summary") or spec.summary
        data["runbook"] = data.get("runbook") or runbook_link(event)
        if not data.get("dedup_key"):
            # One incident per event and DAG run; an alert from outside a run stands alone.
            scope = (
                [data.get("dag_id"), data["run_id"]] if data.get("run_id") else [data["alert_id"]]
            )
            data["dedup_key"] = "/".join(str(p) for p in [event, *scope] if p)
        data["links"] = {k: v for k, v in (data.get("links") or {}).items() if v}
        return data

    @field_validator("title")
    @classmethod
    def _short_title(cls, value: str) -> str:
        return _clip(" ".join(value.split()), 150)

    @field_validator("summary")
    @classmethod
    def _short_summary(cls, value: str) -> str:
        return _clip(" ".join(value.split()), 1000)

    @field_validator("dedup_key")
    @classmethod
    def _short_key(cls, value: str) -> str:
        return value[:255]

    @field_validator("details", mode="before")
    @classmethod
    def _json_details(cls, value: Any) -> Any:
        text = json.dumps(_plain(value or {}), sort_keys=True, allow_nan=False)
        if len(text) > _MAX_DETAILS_CHARS:
            return {"truncated": True, "preview": text[: _MAX_DETAILS_CHARS // 2]}
        return json.loads(text)

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- the local alert log --------------------------------------------------------------------


def _append_line(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode()
    with path.open("ab") as fh:
        # The lock keeps lines whole when a DAG callback and a task write at the same moment.
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_alert_log(alert: Alert, path: Path | None = None) -> Path:
    """Append the alert as one JSON line (record ``alert``); returns the log path."""
    target = path or get_alert_settings().resolved_log_path
    _append_line(target, {"record": "alert", "schema": ALERT_SCHEMA, **alert.as_json()})
    return target


def read_alert_log(path: Path | None = None) -> list[dict[str, Any]]:
    """Every record in the log, oldest first (``alert`` and ``delivery`` records)."""
    target = path or get_alert_settings().resolved_log_path
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text().splitlines() if line.strip()]


# --- payloads -------------------------------------------------------------------------------

_SLACK_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}
_TEAMS_COLOR = {"info": "Accent", "warning": "Warning", "critical": "Attention"}


def _links(alert: Alert) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(web links, other references). Chat buttons and PagerDuty links must be absolute URLs;
    file paths (a local report, a repo-relative runbook) are shown as text instead, so one of
    them cannot make the whole message invalid."""
    web: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    for name, url in [*alert.links.items(), ("runbook", alert.runbook)]:
        (web if url.startswith(("http://", "https://")) else other).append((name, url))
    return web, other


def _facts(alert: Alert) -> list[tuple[str, str]]:
    facts = [("Severity", alert.severity), ("Event", alert.event)]
    facts += [(k, v) for k, v in (("DAG", alert.dag_id), ("Run", alert.run_id)) if v]
    if alert.task_id:
        facts.append(("Task", alert.task_id))
    return facts


def slack_payload(alert: Alert) -> dict[str, Any]:
    def esc(text: str) -> str:  # Slack mrkdwn control characters
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(alert.title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(esc(alert.summary), 3000)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _clip(f"*{k}*\n{esc(v)}", 2000)}
                for k, v in _facts(alert)[:10]
            ],
        },
    ]
    if alert.details:
        text = json.dumps(alert.details, indent=1, sort_keys=True)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"```{_clip(esc(text), 2900)}```"},
            }
        )
    web, other = _links(alert)
    buttons = [
        {"type": "button", "text": {"type": "plain_text", "text": _clip(name, 75)}, "url": url}
        for name, url in web
        if len(url) <= 3000
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:25]})
    if other:
        text = "\n".join(f"*{esc(name)}*: `{esc(path)}`" for name, path in other)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, 3000)}})
    context = f"alert `{alert.alert_id}` · {alert.created_at:%Y-%m-%d %H:%M:%S} UTC"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    fallback = f"{_SLACK_EMOJI[alert.severity]} [{alert.severity.upper()}] {alert.title}"
    return {"text": _clip(f"{fallback}: {alert.summary}", 3000), "blocks": blocks}


def teams_payload(alert: Alert) -> dict[str, Any]:
    """An Adaptive Card in the message envelope that Teams Workflows webhooks accept."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": alert.title,
            "size": "Medium",
            "weight": "Bolder",
            "color": _TEAMS_COLOR[alert.severity],
            "wrap": True,
        },
        {"type": "TextBlock", "text": alert.summary, "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(alert)]},
    ]
    if alert.details:
        text = _clip(json.dumps(alert.details, indent=1, sort_keys=True), 4000)
        body.append({"type": "TextBlock", "text": text, "fontType": "Monospace", "wrap": True})
    web, other = _links(alert)
    if other:
        facts = [{"title": name, "value": path} for name, path in other]
        body.append({"type": "FactSet", "facts": facts})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": name, "url": url} for name, url in web],
        "msteams": {"width": "Full"},
    }
    attachment = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": card,
    }
    return {"type": "message", "attachments": [attachment]}


def pagerduty_payload(alert: Alert, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 ``trigger`` event."""
    if not routing_key:
        raise ValueError("the pagerduty style needs a routing key (connection password)")
    web, other = _links(alert)
    custom = {
        **alert.details,
        "alert_id": alert.alert_id,
        "event": alert.event,
        "run_id": alert.run_id,
        "task_id": alert.task_id,
        "references": dict(other) or None,
    }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": _clip(f"{alert.title}: {alert.summary}", 1024),
            "source": alert.dag_id or "attrition-mlops",
            "severity": alert.severity,
            "timestamp": alert.created_at.isoformat(),
            "component": "attrition-mlops",
            "group": alert.dag_id or "attrition-mlops",
            "class": alert.event,
            "custom_details": {k: v for k, v in custom.items() if v is not None},
        },
        "links": [{"href": url, "text": name} for name, url in web],
        "client": "attrition-mlops",
    }


def webhook_payload(alert: Alert, style: WebhookStyle, routing_key: str | None = None) -> dict:
    if style == "slack":
        return slack_payload(alert)
    if style == "teams":
        return teams_payload(alert)
    if style == "pagerduty":
        return pagerduty_payload(alert, routing_key or "")
    if style == "generic":
        return {"schema": ALERT_SCHEMA, **alert.as_json()}
    raise ValueError(f"unknown webhook style {style!r}; use one of {get_args(WebhookStyle)}")


# --- transports -----------------------------------------------------------------------------


class AlertDeliveryError(RuntimeError):
    """A transport gave up. The message names the host, never the URL's path or a secret."""


def redact_url(url: str) -> str:
    """Scheme, host and port only: webhook paths and queries often *are* the secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


@dataclass(frozen=True)
class WebhookTarget:
    """A resolved webhook. ``repr`` shows the host only, so it is safe to log."""

    url: str = field(repr=False)
    style: WebhookStyle = "generic"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    routing_key: str | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True)
class WebhookDelivery:
    status: int
    attempts: int


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would re-send a redirected POST as a body-less GET and report success: a webhook
    # that redirects is misconfigured, so its 3xx surfaces as an error instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _retry_delay(error: urllib.error.HTTPError | None, backoff: float, attempt: int) -> float:
    if error is not None and error.code == 429:
        try:
            return min(float(error.headers.get("Retry-After", "")), 30.0)
        except ValueError:
            pass
    return backoff * 2**attempt


def _reply_text(error: urllib.error.HTTPError) -> str:
    try:
        return _clip(error.read().decode("utf-8", "replace").strip(), 200)
    except (OSError, http.client.HTTPException):
        return ""


def post_webhook(
    alert: Alert,
    url: str,
    *,
    style: WebhookStyle = "generic",
    headers: Mapping[str, str] | None = None,
    routing_key: str | None = None,
    timeout: float = 10.0,
    retries: int = 3,
    backoff_seconds: float = 1.0,
) -> WebhookDelivery:
    """POST the alert as JSON. Retries 5xx, 429 and connection errors with exponential backoff;
    any other 4xx is final (the payload or the credentials are wrong, so retrying cannot help).
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise AlertDeliveryError(f"webhook URL must be http(s), got {urlsplit(url).scheme!r}")
    body = json.dumps(webhook_payload(alert, style, routing_key)).encode()
    request_headers = {"Content-Type": "application/json", "User-Agent": "attrition-mlops-alerts"}
    request_headers.update(headers or {})
    host = redact_url(url)
    problem = ""
    for attempt in range(retries + 1):
        request = urllib.request.Request(url, data=body, headers=request_headers, method="POST")
        http_error: urllib.error.HTTPError | None = None
        try:
            with _opener.open(request, timeout=timeout) as response:
                return WebhookDelivery(status=response.status, attempts=attempt + 1)
        except urllib.error.HTTPError as exc:
            http_error = exc
            problem = f"{host} answered HTTP {exc.code}: {_reply_text(exc)}"
            if exc.code != 429 and exc.code < 500:
                raise AlertDeliveryError(f"{problem} (not retried)") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            problem = f"{host} unreachable: {type(reason).__name__}: {reason}"
        if attempt < retries:
            delay = _retry_delay(http_error, backoff_seconds, attempt)
            log.warning(
                "alert webhook attempt %d failed (%s); retry in %.1fs", attempt + 1, problem, delay
            )
            time.sleep(delay)
    raise AlertDeliveryError(f"{problem} (gave up after {retries + 1} attempts)")


def email_subject(alert: Alert) -> str:
    return f"[{alert.severity.upper()}] attrition-mlops: {alert.title}"


def email_html(alert: Alert) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><th align='left'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _facts(alert)
    )
    links = [*alert.links.items(), ("runbook", alert.runbook)]
    items = "".join(f"<li><a href='{esc(u, quote=True)}'>{esc(n)}</a></li>" for n, u in links)
    details = esc(json.dumps(alert.details, indent=2, sort_keys=True)) if alert.details else ""
    return (
        f"<h2>{esc(alert.title)}</h2><p>{esc(alert.summary)}</p><table>{rows}</table>"
        f"<ul>{items}</ul>"
        + (f"<pre>{details}</pre>" if details else "")
        + f"<p><small>alert {esc(alert.alert_id)} at {alert.created_at.isoformat()}</small></p>"
    )


def send_email(
    alert: Alert,
    to: Sequence[str],
    *,
    smtp_conn_id: str = "smtp_default",
    from_email: str | None = None,
) -> None:
    """Send through the Airflow SMTP provider's hook (server, login and TLS from the connection)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook  # Airflow only when mail is sent

    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(
            to=list(to),
            subject=email_subject(alert),
            html_content=email_html(alert),
            from_email=from_email,
        )


# --- dispatch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchResult:
    alert_id: str
    log_path: str | None
    succeeded: tuple[str, ...]
    failed: dict[str, str]
    skipped: dict[str, str]

    @property
    def delivered(self) -> bool:
        """True when at least one transport besides the local log took the alert."""
        return any(name != "log" for name in self.succeeded)


WebhookSource = WebhookTarget | Callable[[], WebhookTarget | None] | None


def _resolve_webhook(source: WebhookSource, settings: AlertSettings) -> WebhookTarget | None:
    target = source() if callable(source) else source
    if target is None and settings.webhook_url is not None:
        target = WebhookTarget(settings.webhook_url.get_secret_value(), settings.webhook_style)
    return target


def _send_webhook(alert: Alert, source: WebhookSource, settings: AlertSettings) -> str | None:
    """Deliver to the webhook; returns why it was skipped, or None once delivered."""
    target = _resolve_webhook(source, settings)
    if target is None:
        return "not configured"
    if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[settings.webhook_min_severity]:
        return f"below webhook_min_severity={settings.webhook_min_severity}"
    delivery = post_webhook(
        alert,
        target.url,
        style=target.style,
        headers=target.headers,
        routing_key=target.routing_key,
        timeout=settings.webhook_timeout_seconds,
        retries=settings.webhook_retries,
        backoff_seconds=settings.webhook_backoff_seconds,
    )
    log.info("alert %s posted to %s (HTTP %d)", alert.alert_id, target.host, delivery.status)
    return None


def _send_mail(alert: Alert, settings: AlertSettings) -> str | None:
    if not settings.email_to:
        return "not configured"
    if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[settings.email_min_severity]:
        return f"below email_min_severity={settings.email_min_severity}"
    send_email(
        alert, settings.email_to, smtp_conn_id=settings.smtp_conn_id, from_email=settings.email_from
    )
    return None


def dispatch(
    alert: Alert, settings: AlertSettings | None = None, *, webhook: WebhookSource = None
) -> DispatchResult:
    """Log the alert locally, then try the webhook and e-mail. Never raises.

    ``webhook`` is a resolved target, or a callable resolving one (the notifier passes an
    Airflow connection look-up, so a broken connection is recorded like any failed transport);
    when it yields nothing, ``ATTRITION_ALERT_WEBHOOK_URL`` is used if set.
    """
    settings = settings or safe_alert_settings()
    succeeded: list[str] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    log_path: Path | None = None
    try:
        log_path = write_alert_log(alert, settings.resolved_log_path)
        succeeded.append("log")
    except Exception as exc:
        failed["log"] = f"{type(exc).__name__}: {exc}"
        log.exception("could not write alert %s to the local log", alert.alert_id)

    senders: dict[str, Callable[[], str | None]] = {
        "webhook": lambda: _send_webhook(alert, webhook, settings),
        "email": lambda: _send_mail(alert, settings),
    }
    for name, send in senders.items():
        if alert.event in settings.silence:
            skipped[name] = f"event {alert.event} silenced"
            continue
        try:
            reason = send()
        except Exception as exc:  # one broken transport must not stop the others
            failed[name] = f"{type(exc).__name__}: {exc}"
            log.error("alert %s: %s transport failed: %s", alert.alert_id, name, failed[name])
            continue
        if reason is None:
            succeeded.append(name)
        else:
            skipped[name] = reason

    result = DispatchResult(
        alert.alert_id, str(log_path) if log_path else None, tuple(succeeded), failed, skipped
    )
    if log_path is not None:
        try:
            _append_line(
                log_path,
                {
                    "record": "delivery",
                    "alert_id": alert.alert_id,
                    "at": datetime.now(UTC).isoformat(),
                    "succeeded": list(result.succeeded),
                    "failed": failed,
                    "skipped": skipped,
                },
            )
        except Exception:
            log.exception("could not record the delivery of alert %s", alert.alert_id)
    log.log(
        logging.ERROR if failed else logging.INFO,
        "alert %s [%s] %s: sent via %s; failed %s",
        alert.alert_id,
        alert.severity,
        alert.event,
        list(result.succeeded),
        sorted(failed),
    )
    return result
