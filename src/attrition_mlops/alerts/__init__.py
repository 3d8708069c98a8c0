"""Alerts: one typed alert, a local JSON-lines log, and webhook and e-mail transports.

Airflow-free on purpose: jobs and tests can raise alerts without a scheduler. The only Airflow
piece, the SMTP provider's hook, is imported when an e-mail is actually sent. The notifier in
``attrition_mlops.orchestration.notifier`` builds alerts from Airflow callback contexts and
resolves the webhook connection; everything else happens here.

Delivery rule: the local log is written first and always; each configured transport is then
tried on its own, and a failing one is recorded (in the result and in the log), never raised.
Webhook URLs, tokens and routing keys never reach a log line or an exception message.

The modules, by responsibility:

- ``kinds``: the events, their default severity and wording;
- ``config``: ``ATTRITION_ALERT_*`` settings and the links alerts carry;
- ``model``: the ``Alert`` itself;
- ``local_log``: the append-only alert log;
- ``payloads``: what Slack, Teams, PagerDuty and a generic receiver get;
- ``webhook`` and ``mail``: the transports;
- ``delivery``: ``dispatch()``, which ties them together;
- ``incidents`` and ``incident_store``: one open incident per model version and signal (the
  pure lifecycle, and its SQL table), so a persistent problem pages once.

Import from ``attrition_mlops.alerts``; the submodules are an implementation detail.
"""

from attrition_mlops.alerts.config import (
    AlertSettings,
    get_alert_settings,
    mlflow_run_url,
    model_version_url,
    runbook_link,
    safe_alert_settings,
)
from attrition_mlops.alerts.delivery import DispatchResult, WebhookSource, dispatch
from attrition_mlops.alerts.kinds import (
    EVENTS,
    SEVERITY_RANK,
    Event,
    EventSpec,
    Severity,
    WebhookStyle,
)
from attrition_mlops.alerts.local_log import read_alert_log, write_alert_log
from attrition_mlops.alerts.mail import email_html, email_subject, send_email
from attrition_mlops.alerts.model import ALERT_SCHEMA, Alert
from attrition_mlops.alerts.payloads import (
    pagerduty_payload,
    slack_payload,
    teams_payload,
    webhook_payload,
)
from attrition_mlops.alerts.webhook import (
    AlertDeliveryError,
    WebhookDelivery,
    WebhookTarget,
    post_webhook,
    redact_url,
)

__all__ = [
    "ALERT_SCHEMA",
    "EVENTS",
    "SEVERITY_RANK",
    "Alert",
    "AlertDeliveryError",
    "AlertSettings",
    "DispatchResult",
    "Event",
    "EventSpec",
    "Severity",
    "WebhookDelivery",
    "WebhookSource",
    "WebhookStyle",
    "WebhookTarget",
    "dispatch",
    "email_html",
    "email_subject",
    "get_alert_settings",
    "mlflow_run_url",
    "model_version_url",
    "pagerduty_payload",
    "post_webhook",
    "read_alert_log",
    "redact_url",
    "runbook_link",
    "safe_alert_settings",
    "send_email",
    "slack_payload",
    "teams_payload",
    "webhook_payload",
    "write_alert_log",
]
