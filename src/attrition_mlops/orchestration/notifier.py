"""Alerts from Airflow: the failure-callback notifier, and ``notify()`` for events tasks raise.

``AttritionNotifier()`` goes in every DAG's ``default_args`` as ``on_failure_callback``: when a
task fails for good (retries exhausted) it sends a ``dag_failed`` alert naming the task, the
attempt, the error and a link to the task log. The same class with ``event=...`` announces
other events from a callback; tasks call :func:`notify` directly for drift, promotion and
rollback. Delivery (local log first, then webhook and e-mail, never raising) is
:func:`attrition_mlops.alerts.dispatch`; this module adds what only Airflow knows: the callback
context and the webhook connection.

Module scope stays cheap because DAG files import it: the SDK base class and the Airflow-free
alert core, nothing that needs the metadata database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from attrition_mlops.alerts import (
    EVENTS,
    Alert,
    AlertSettings,
    DispatchResult,
    WebhookTarget,
    dispatch,
    runbook_link,
    safe_alert_settings,
)

# Failures the jobs report as "<ClassName>: message" (exit code 2), or that a task raises itself
# (a failed image build, a rollout the Kubernetes API refused). Each has a runbook section with
# the anchor ``error-<classname>``, so the alert can link straight to it.
RUNBOOK_ERRORS = (
    "DataValidationError",
    "SnapshotConflictError",
    "SnapshotIntegrityError",
    "SnapshotError",
    "HoldoutError",
    "EvaluationError",
    "ConcurrentAliasMoveError",
    "RegistryLockError",
    "RollbackError",
    "TooManyRejectsError",
    "UnknownModelError",
    "ImageBuildError",
    "RolloutForbidden",
)
# How the production approval ends a rejection or a timeout, after sending its own alert
# (orchestration.approval); matched by name so this module does not import the HITL operator.
ANNOUNCED_FAILURES = ("HITLRejectException", "HITLTimeoutError")
_KNOWN_ERROR = re.compile(rf"\b({'|'.join(RUNBOOK_ERRORS)}): *(.*)")
_SCHEMES = ("http", "https")


def webhook_target(conn: Any) -> WebhookTarget:
    """The webhook an Airflow connection describes.

    URL: ``host`` when it is a full URL; otherwise ``schema`` (http/https, as the HTTP provider
    reads it) or the connection type, then host and port, then the path (``extra.endpoint``, or
    ``schema`` when a URI-form connection put the path there). ``extra.style`` picks the payload.
    The password (or ``extra.token``) is sent as a bearer token; for PagerDuty the password (or
    ``extra.routing_key``) is the routing key. ``extra.headers`` adds headers.
    """
    extra = conn.extra_dejson or {}
    host = conn.host or ""
    path = ""
    if "://" in host:
        base = host.rstrip("/")
    else:
        schema = conn.schema or ""
        scheme = (
            schema if schema in _SCHEMES else ("https" if conn.conn_type == "https" else "http")
        )
        base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        path = "" if schema in _SCHEMES else schema
    endpoint = extra.get("endpoint") or path
    url = f"{base}/{endpoint.lstrip('/')}" if endpoint else base
    style = extra.get("style", "generic")
    headers = {str(k): str(v) for k, v in (extra.get("headers") or {}).items()}
    routing_key = None
    if style == "pagerduty":
        routing_key = extra.get("routing_key") or conn.password
    elif token := conn.password or extra.get("token"):
        headers.setdefault("Authorization", f"Bearer {token}")
    _mask(url, routing_key, *headers.values())
    return WebhookTarget(url=url, style=style, headers=headers, routing_key=routing_key)


def _mask(*secrets: str | None) -> None:
    # Slack and Teams URLs carry their secret in the path: keep all of it out of task logs.
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret:
            mask_secret(secret)


def webhook_from_connection(conn_id: str) -> WebhookTarget | None:
    """The webhook in connection ``conn_id``, or None when no such connection exists."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None  # not configured: local log (and e-mail) only
    return webhook_target(conn)


def notify(alert: Alert, settings: AlertSettings | None = None) -> DispatchResult:
    """Send ``alert``: local log, the webhook connection (or ATTRITION_ALERT_WEBHOOK_URL), e-mail.

    Never raises; the result says which transports took it. Safe in a task, a callback, or a
    plain process (the connection then comes from ``AIRFLOW_CONN_*`` variables).
    """
    settings = settings or safe_alert_settings()
    return dispatch(
        alert, settings, webhook=lambda: webhook_from_connection(settings.webhook_conn_id)
    )


def airflow_links(
    settings: AlertSettings,
    dag_id: str | None,
    run_id: str | None,
    task_id: str | None = None,
    try_number: int | None = None,
    map_index: int | None = None,
) -> dict[str, str]:
    """Airflow UI links (the same routes the task instance's own ``log_url`` uses)."""
    if not dag_id:
        return {}
    base = settings.airflow_base_url.rstrip("/")
    links = {"Airflow DAG": f"{base}/dags/{quote(dag_id)}"}
    if run_id:
        run = f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
        links["Airflow run"] = run
        if task_id:
            mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
            attempt = f"?try_number={try_number}" if try_number else ""
            links["task log"] = f"{run}/tasks/{quote(task_id)}{mapped}{attempt}"
    return links


def _failure(context: Mapping[str, Any], where: str, settings: AlertSettings) -> dict[str, Any]:
    """Title, summary, details and runbook for a failed task (or DAG run)."""
    error = context.get("exception")
    reason = context.get("reason")
    details: dict[str, Any] = {}
    runbook = runbook_link("dag_failed", settings)
    if error is None:
        what = f"failed ({reason})" if reason else "failed"
        sentence = f"{where} {what}"
    else:
        text = str(error).strip()
        kind = type(error).__name__ if isinstance(error, BaseException) else "error"
        known = _KNOWN_ERROR.search(text)
        if known:
            kind, first = known.group(1), known.group(2)
        else:
            first = next((line for line in text.splitlines() if line.strip()), "")
        if kind in RUNBOOK_ERRORS:  # named in a job's output, or raised in the task itself
            runbook = f"{settings.runbook_url}#error-{kind.lower()}"
        details["error"] = {"type": kind, "message": text[-4000:]}
        sentence = f"{where} failed with {kind}: {first[:300]}".rstrip(": ")
    if reason:
        details["reason"] = reason
    summary = f"{sentence} — open the task log, follow the runbook, then clear the task to re-run."
    return {"summary": summary, "details": details, "runbook": runbook}


def alert_from_context(
    context: Mapping[str, Any],
    *,
    event: str = "dag_failed",
    settings: AlertSettings | None = None,
    **fields: Any,
) -> Alert:
    """An alert from an Airflow callback (task- or DAG-level) context.

    ``fields`` (severity, title, summary, details, links, ...) override what the context gives;
    ``None`` values are ignored, and given ``links``/``details`` are merged with the derived ones.
    """
    settings = settings or safe_alert_settings()
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None)
    run_id = (
        context.get("run_id") or getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None)
    )
    task_id = getattr(ti, "task_id", None)
    try_number = getattr(ti, "try_number", None)
    values: dict[str, Any] = {"details": {}}
    if event == "dag_failed":
        # A task-level callback carries the exception; a DAG-level one only a reason.
        where = f"Task {task_id} in {dag_id}" if "exception" in context else f"DAG run of {dag_id}"
        if task_id and "exception" not in context:
            where += f" (last task {task_id})"
        values = _failure(context, where, settings)
        values["title"] = f"{dag_id}: {task_id or 'run'} failed"
    values["details"] = {
        **values["details"],
        **{k: v for k, v in (("try_number", try_number), ("logical_date", _logical(context))) if v},
    }
    given = {k: v for k, v in fields.items() if v is not None}
    links = {
        **airflow_links(
            settings, dag_id, run_id, task_id, try_number, getattr(ti, "map_index", None)
        ),
        **given.pop("links", {}),
    }
    details = {**values.pop("details"), **given.pop("details", {})}
    return Alert(
        **{
            "event": event,
            "dag_id": dag_id,
            "run_id": run_id,
            "task_id": task_id,
            **values,
            **given,
            "links": links,
            "details": details,
        }
    )


def _logical(context: Mapping[str, Any]) -> str | None:
    value = context.get("logical_date")
    return value.isoformat() if hasattr(value, "isoformat") else None


class AttritionNotifier(BaseNotifier):
    """Send an alert from an Airflow callback.

    ``AttritionNotifier()`` (event ``dag_failed``) as ``on_failure_callback`` in default_args
    alerts once per task that fails for good; at DAG level it alerts once per failed run
    (including ``dagrun_timeout``), without the exception. Use one of the two per DAG, or both
    if you accept two messages (PagerDuty merges them: same dedup key). With ``event=...`` it
    announces other events, e.g. ``on_success_callback=AttritionNotifier(event="model_deployed")``.
    ``title``, ``summary``, ``details`` and ``links`` are Jinja templates over the context.
    """

    template_fields = ("title", "summary", "details", "links")

    def __init__(
        self,
        *,
        event: str = "dag_failed",
        severity: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        details: dict[str, Any] | None = None,
        links: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        if event not in EVENTS:
            raise ValueError(f"unknown alert event {event!r}; known: {sorted(EVENTS)}")
        self.event = event
        self.severity = severity
        self.title = title
        self.summary = summary
        self.details = details
        self.links = links

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        dag = context.get("dag")
        if jinja_env is None and dag is not None and not hasattr(dag, "get_template_env"):
            # Under dag.test() a DAG-level callback gets the SerializedDAG, which has no Jinja
            # environment, and BaseNotifier fails before notify() (apache/airflow#64649).
            jinja_env = self.get_template_env(dag=None)
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Any) -> None:
        error = context.get("exception")
        if self.event == "dag_failed" and type(error).__name__ in ANNOUNCED_FAILURES:
            # A rejected or unanswered approval is a decision the approval task announced itself
            # (approval_rejected / approval_timed_out): no second, critical page for it.
            self.log.info("%s: already announced by the task; no dag_failed alert", error)
            return
        settings = safe_alert_settings()
        fields = {
            "severity": self.severity,
            "title": self.title,
            "summary": self.summary,
            "details": self.details,
            "links": self.links,
        }
        try:
            alert = alert_from_context(context, event=self.event, settings=settings, **fields)
        except Exception as exc:  # a context we did not expect must still produce an alert
            self.log.exception("could not build the alert from the callback context")
            alert = Alert(event=self.event, summary=f"alert could not be built: {exc}")
        result = notify(alert, settings)  # the module-level function, not this method
        self.log.info(
            "alert %s sent via %s; failed: %s", alert.alert_id, result.succeeded, result.failed
        )
