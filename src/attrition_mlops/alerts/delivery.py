"""Dispatch: the local log first and always, then each configured transport on its own.

A failing transport is recorded (in the result and in the log's ``delivery`` line), never
raised, so an alert cannot fail the task that sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from attrition_mlops.alerts.config import AlertSettings, safe_alert_settings
from attrition_mlops.alerts.kinds import SEVERITY_RANK
from attrition_mlops.alerts.local_log import append_line, write_alert_log
from attrition_mlops.alerts.mail import send_email
from attrition_mlops.alerts.model import Alert
from attrition_mlops.alerts.webhook import WebhookTarget, post_webhook

log = logging.getLogger(__name__)


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


def _record_delivery(log_path: Path, result: DispatchResult) -> None:
    try:
        append_line(
            log_path,
            {
                "record": "delivery",
                "alert_id": result.alert_id,
                "at": datetime.now(UTC).isoformat(),
                "succeeded": list(result.succeeded),
                "failed": result.failed,
                "skipped": result.skipped,
            },
        )
    except Exception:
        log.exception("could not record the delivery of alert %s", result.alert_id)


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
        _record_delivery(log_path, result)
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
