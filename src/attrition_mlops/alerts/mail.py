"""The e-mail transport: an HTML message through the Airflow SMTP provider's hook.

The hook is imported only when a message is actually sent, so the rest of the alert package
stays free of Airflow.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

from attrition_mlops.alerts.model import Alert
from attrition_mlops.alerts.payloads import facts


def email_subject(alert: Alert) -> str:
    return f"[{alert.severity.upper()}] attrition-mlops: {alert.title}"


def email_html(alert: Alert) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><th align='left'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts(alert)
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
