"""What each webhook style receives: Slack blocks, a Teams Adaptive Card, a PagerDuty Events
API v2 event, or the alert itself as JSON (``generic``)."""

from __future__ import annotations

import json
from typing import Any, get_args

from attrition_mlops.alerts.kinds import WebhookStyle
from attrition_mlops.alerts.model import ALERT_SCHEMA, Alert, clip

_SLACK_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}
_TEAMS_COLOR = {"info": "Accent", "warning": "Warning", "critical": "Attention"}


def split_links(alert: Alert) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(web links, other references). Chat buttons and PagerDuty links must be absolute URLs;
    file paths (a local report, a repo-relative runbook) are shown as text instead, so one of
    them cannot make the whole message invalid."""
    web: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    for name, url in [*alert.links.items(), ("runbook", alert.runbook)]:
        (web if url.startswith(("http://", "https://")) else other).append((name, url))
    return web, other


def facts(alert: Alert) -> list[tuple[str, str]]:
    """The short facts every channel shows beside the summary (severity, event, where)."""
    rows = [("Severity", alert.severity), ("Event", alert.event)]
    rows += [(k, v) for k, v in (("DAG", alert.dag_id), ("Run", alert.run_id)) if v]
    if alert.task_id:
        rows.append(("Task", alert.task_id))
    return rows


def slack_payload(alert: Alert) -> dict[str, Any]:
    def esc(text: str) -> str:  # Slack mrkdwn control characters
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(alert.title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(esc(alert.summary), 3000)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": clip(f"*{k}*\n{esc(v)}", 2000)}
                for k, v in facts(alert)[:10]
            ],
        },
    ]
    if alert.details:
        text = json.dumps(alert.details, indent=1, sort_keys=True)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"```{clip(esc(text), 2900)}```"},
            }
        )
    web, other = split_links(alert)
    buttons = [
        {"type": "button", "text": {"type": "plain_text", "text": clip(name, 75)}, "url": url}
        for name, url in web
        if len(url) <= 3000
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:25]})
    if other:
        text = "\n".join(f"*{esc(name)}*: `{esc(path)}`" for name, path in other)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}})
    context = f"alert `{alert.alert_id}` · {alert.created_at:%Y-%m-%d %H:%M:%S} UTC"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    fallback = f"{_SLACK_EMOJI[alert.severity]} [{alert.severity.upper()}] {alert.title}"
    return {"text": clip(f"{fallback}: {alert.summary}", 3000), "blocks": blocks}


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
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts(alert)]},
    ]
    if alert.details:
        text = clip(json.dumps(alert.details, indent=1, sort_keys=True), 4000)
        body.append({"type": "TextBlock", "text": text, "fontType": "Monospace", "wrap": True})
    web, other = split_links(alert)
    if other:
        references = [{"title": name, "value": path} for name, path in other]
        body.append({"type": "FactSet", "facts": references})
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
    web, other = split_links(alert)
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
            "summary": clip(f"{alert.title}: {alert.summary}", 1024),
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
