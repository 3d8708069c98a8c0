"""The webhook transport: one JSON POST, retried on 5xx, 429 and connection errors.

Webhook URLs, tokens and routing keys never reach a log line or an exception message: errors
name the host only.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from attrition_mlops.alerts.kinds import WebhookStyle
from attrition_mlops.alerts.model import Alert, clip
from attrition_mlops.alerts.payloads import webhook_payload

log = logging.getLogger(__name__)


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
        return clip(error.read().decode("utf-8", "replace").strip(), 200)
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
