"""Alerts: payload styles, retries and the local log against a real HTTP receiver on loopback,
e-mail through the Airflow SMTP provider to a real SMTP receiver on loopback, the notifier as
the failure callback of a DAG that really runs (``dag.test()`` on a throwaway Airflow home), and
the decision alerts: a drift window too small to test, confirmed drift and a new champion (each
naming its run, with links), and a rejected production approval (answered through Airflow's own
HITL response handler while the DAG run waits).
"""

from __future__ import annotations

import email
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args
from urllib.parse import quote

import pytest
from support import REPO, clear_settings_caches

from attrition_mlops import alerts
from attrition_mlops.alerts import (
    EVENTS,
    Alert,
    AlertDeliveryError,
    AlertSettings,
    Event,
    WebhookTarget,
    dispatch,
    post_webhook,
    read_alert_log,
)

SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxSECRETtoken"
CONN_ENV = "AIRFLOW_CONN_ATTRITION_ALERTS_WEBHOOK"


# --- real receivers on loopback ---------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                reply = json.dumps({"status": "ok" if status < 400 else "error"}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]


@pytest.fixture
def receiver():
    rec = Receiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


class SMTPReceiver(socketserver.ThreadingTCPServer):
    """Just enough SMTP (RFC 5321 without extensions) to accept what smtplib sends."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _SMTPSession)


class _SMTPSession(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 127.0.0.1 test receiver")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            address = re.search(r"<([^>]*)>", command)
            if verb in ("EHLO", "HELO"):
                self.reply("250 127.0.0.1")
            elif verb == "MAIL":
                sender, recipients = address.group(1), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(address.group(1))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                self.server.messages.append(
                    {"from": sender, "to": recipients, "data": b"".join(lines)}
                )
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


@pytest.fixture
def smtp_receiver():
    server = SMTPReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- settings isolation -----------------------------------------------------------------------


@pytest.fixture
def alert_env(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ambient alert configuration, fast retries, a fresh state dir; returns the log path."""
    for name in list(os.environ):
        if name.startswith("ATTRITION_ALERT_") or name.startswith("AIRFLOW_CONN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ATTRITION_ALERT_WEBHOOK_BACKOFF_SECONDS", "0.01")
    alerts.get_alert_settings.cache_clear()
    yield state_dir / "alerts" / "alerts.jsonl"
    alerts.get_alert_settings.cache_clear()


def _drift_alert(**overrides: Any) -> Alert:
    import numpy as np

    fields: dict[str, Any] = {
        "event": "drift_confirmed",
        "title": "Input drift confirmed: MonthlyIncome, OverTime",
        "summary": "2 features drifted <& beyond thresholds>; open the report and decide.",
        "details": {
            "drifted": [
                {"feature": "MonthlyIncome", "p_adjusted": np.float64(1.2e-9), "psi": 0.41},
                {"feature": "OverTime", "p_adjusted": 3.4e-5, "psi": np.float32(0.22)},
            ],
            "undefined": float("nan"),
            "window": ("2026-11-20", "2026-11-21"),
        },
        "links": {
            "report": "/srv/state/drift/2026-11-21/report.html",
            "MLflow run": "http://127.0.0.1:5000/#/runs/abc123",
            "retraining": None,
        },
        "dag_id": "attrition_drift",
        "run_id": "scheduled__2026-11-21T02:00:00+00:00",
        "task_id": "check_drift",
    }
    fields.update(overrides)
    return Alert(**fields)


# --- the alert itself -------------------------------------------------------------------------


def test_every_event_has_defaults_and_a_runbook_section():
    from attrition_mlops.orchestration.notifier import RUNBOOK_ERRORS

    runbook = (REPO / "docs" / "runbook.md").read_text()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', runbook))
    assert set(EVENTS) == set(get_args(Event))
    for event in EVENTS:
        alert = Alert(event=event)
        assert alert.severity == EVENTS[event].severity
        assert alert.summary and alert.title
        assert alert.runbook.split("#", 1)[1] in anchors, f"runbook lacks a section for {event}"
    for error in RUNBOOK_ERRORS:
        assert f"error-{error.lower()}" in anchors, f"runbook lacks a section for {error}"


def test_alert_details_are_strict_json_and_links_drop_empty_values(alert_env):
    alert = _drift_alert()
    assert alert.details["drifted"][0]["p_adjusted"] == pytest.approx(1.2e-9)
    assert alert.details["undefined"] is None  # NaN is not JSON
    assert alert.details["window"] == ["2026-11-20", "2026-11-21"]
    assert "retraining" not in alert.links
    json.dumps(alert.as_json(), allow_nan=False)
    assert alert.created_at.utcoffset().total_seconds() == 0
    assert alert.dedup_key == "drift_confirmed/attrition_drift/scheduled__2026-11-21T02:00:00+00:00"
    assert Alert(event="champion_promoted").dedup_key != Alert(event="champion_promoted").dedup_key
    with pytest.raises(ValueError, match="event"):
        Alert(event="disk_full")


# --- payload styles over real HTTP ------------------------------------------------------------


def test_generic_payload_is_the_alert_as_json(alert_env, receiver):
    alert = _drift_alert()
    delivery = post_webhook(alert, receiver.url(), headers={"X-Api-Key": "k"})
    assert (delivery.status, delivery.attempts) == (200, 1)
    (request,) = receiver.requests
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["X-Api-Key"] == "k"
    assert request["body"] == {"schema": alerts.ALERT_SCHEMA, **alert.as_json()}


def test_slack_payload_has_fallback_text_and_valid_blocks(alert_env, receiver):
    alert = _drift_alert()
    post_webhook(alert, receiver.url(), style="slack")
    body = receiver.bodies()[0]
    assert set(body) == {"text", "blocks"}
    assert alert.title in body["text"] and "[WARNING]" in body["text"]
    blocks = body["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": alert.title}}
    assert "&lt;&amp; beyond thresholds&gt;" in blocks[1]["text"]["text"]  # mrkdwn escaped
    fields = next(b["fields"] for b in blocks if "fields" in b)
    assert {"type": "mrkdwn", "text": "*Task*\ncheck_drift"} in fields and len(fields) <= 10
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    # Only absolute URLs become buttons; the report path and runbook path are shown as text.
    assert [e["url"] for e in actions["elements"]] == ["http://127.0.0.1:5000/#/runs/abc123"]
    assert all(e["type"] == "button" and len(e["text"]["text"]) <= 75 for e in actions["elements"])
    text = json.dumps(blocks)
    assert "/srv/state/drift/2026-11-21/report.html" in text
    assert "docs/runbook.md#alert-drift-confirmed" in text
    assert "MonthlyIncome" in text
    assert all(b["type"] in {"header", "section", "actions", "context"} for b in blocks)
    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000


def test_teams_payload_is_an_adaptive_card_in_a_message(alert_env, receiver):
    alert = _drift_alert(severity="critical")
    post_webhook(alert, receiver.url(), style="teams")
    body = receiver.bodies()[0]
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == alert.title
    assert card["body"][0]["color"] == "Attention"
    assert card["body"][1]["text"] == alert.summary
    facts = {
        f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]
    }
    assert facts["Severity"] == "critical" and facts["DAG"] == "attrition_drift"
    assert facts["report"] == "/srv/state/drift/2026-11-21/report.html"
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "MLflow run",
            "url": "http://127.0.0.1:5000/#/runs/abc123",
        }
    ]


def test_pagerduty_payload_follows_events_api_v2(alert_env, receiver):
    alert = _drift_alert(summary="x" * 1500)
    post_webhook(alert, receiver.url("/v2/enqueue"), style="pagerduty", routing_key="R" * 32)
    request = receiver.requests[0]
    assert request["path"] == "/v2/enqueue"
    body = request["body"]
    assert set(body) >= {"routing_key", "event_action", "dedup_key", "payload", "links"}
    assert body["routing_key"] == "R" * 32
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == alert.dedup_key and len(body["dedup_key"]) <= 255
    payload = body["payload"]
    assert payload["severity"] in {"critical", "error", "warning", "info"}
    assert payload["severity"] == "warning"
    assert payload["source"] == "attrition_drift"
    assert len(payload["summary"]) <= 1024 and payload["summary"].startswith(alert.title)
    assert payload["custom_details"]["drifted"][1]["feature"] == "OverTime"
    assert payload["custom_details"]["alert_id"] == alert.alert_id
    assert body["links"] == [{"href": "http://127.0.0.1:5000/#/runs/abc123", "text": "MLflow run"}]
    with pytest.raises(ValueError, match="routing key"):
        alerts.webhook_payload(alert, "pagerduty")


# --- retries ----------------------------------------------------------------------------------


def test_server_errors_are_retried_until_success(alert_env, receiver):
    receiver.script = [(500, {}), (503, {})]
    delivery = post_webhook(_drift_alert(), receiver.url(), retries=3, backoff_seconds=0.01)
    assert (delivery.status, delivery.attempts) == (200, 3)
    assert len(receiver.requests) == 3
    assert receiver.bodies()[0] == receiver.bodies()[2]


def test_rate_limit_is_retried_after_the_servers_delay(alert_env, receiver):
    receiver.script = [(429, {"Retry-After": "0"})]
    delivery = post_webhook(_drift_alert(), receiver.url(), retries=1, backoff_seconds=60)
    assert delivery.attempts == 2  # waited Retry-After (0 s), not the 60 s backoff


def test_client_errors_are_not_retried(alert_env, receiver):
    receiver.script = [(400, {}), (200, {})]
    with pytest.raises(AlertDeliveryError, match="HTTP 400") as raised:
        post_webhook(_drift_alert(), receiver.url(SECRET_PATH), retries=3, backoff_seconds=0.01)
    assert len(receiver.requests) == 1
    assert "SECRET" not in str(raised.value)  # the URL path is the credential


def test_redirects_are_errors_not_silent_successes(alert_env, receiver):
    # urllib would otherwise re-send a redirected POST as a GET without the alert in it.
    receiver.script = [(302, {"Location": "/elsewhere"})]
    with pytest.raises(AlertDeliveryError, match="HTTP 302"):
        post_webhook(_drift_alert(), receiver.url(), retries=2, backoff_seconds=0.01)
    assert [r["path"] for r in receiver.requests] == ["/hook"]


def test_retries_give_up_on_a_dead_endpoint(alert_env):
    url = f"http://127.0.0.1:{_dead_port()}{SECRET_PATH}"
    with pytest.raises(AlertDeliveryError, match="gave up after 3 attempts") as raised:
        post_webhook(_drift_alert(), url, retries=2, backoff_seconds=0.01)
    assert "SECRET" not in str(raised.value)
    with pytest.raises(AlertDeliveryError, match="http"):
        post_webhook(_drift_alert(), "file:///etc/passwd")


# --- dispatch ---------------------------------------------------------------------------------


def test_dead_endpoint_does_not_stop_the_local_log(alert_env):
    alert = _drift_alert()
    target = WebhookTarget(f"http://127.0.0.1:{_dead_port()}{SECRET_PATH}", "slack")
    result = dispatch(
        alert, AlertSettings(webhook_retries=1, webhook_backoff_seconds=0.01), webhook=target
    )
    assert result.succeeded == ("log",) and not result.delivered
    assert "webhook" in result.failed and "unreachable" in result.failed["webhook"]
    assert result.log_path == str(alert_env)
    entry, delivery = read_alert_log(alert_env)
    assert entry["record"] == "alert" and entry["alert_id"] == alert.alert_id
    assert Alert.model_validate({k: v for k, v in entry.items() if k not in ("record", "schema")})
    assert delivery["record"] == "delivery" and delivery["alert_id"] == alert.alert_id
    assert delivery["failed"]["webhook"] == result.failed["webhook"]
    assert delivery["skipped"] == {"email": "not configured"}
    assert "SECRET" not in alert_env.read_text()


def test_dispatch_never_raises(alert_env, receiver, tmp_path):
    def broken_resolver() -> WebhookTarget:
        raise RuntimeError("secrets backend down")

    result = dispatch(_drift_alert(), AlertSettings(), webhook=broken_resolver)
    assert result.failed == {"webhook": "RuntimeError: secrets backend down"}
    assert result.succeeded == ("log",)
    # An unwritable log does not stop the webhook either.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings = AlertSettings(log_path=blocker / "alerts.jsonl")
    result = dispatch(_drift_alert(), settings, webhook=WebhookTarget(receiver.url()))
    assert result.succeeded == ("webhook",) and "log" in result.failed
    assert result.log_path is None and len(receiver.requests) == 1


def test_severity_floor_and_silence_keep_alerts_local(alert_env, receiver, monkeypatch):
    monkeypatch.setenv("ATTRITION_ALERT_WEBHOOK_URL", receiver.url())
    monkeypatch.setenv("ATTRITION_ALERT_WEBHOOK_MIN_SEVERITY", "warning")
    monkeypatch.setenv("ATTRITION_ALERT_SILENCE", "drift_confirmed, model_deployed")
    alerts.get_alert_settings.cache_clear()
    promoted = dispatch(Alert(event="champion_promoted"))  # info < warning
    assert promoted.skipped["webhook"] == "below webhook_min_severity=warning"
    silenced = dispatch(_drift_alert())
    assert silenced.skipped["webhook"] == "event drift_confirmed silenced"
    failed = dispatch(Alert(event="dag_failed"))
    assert failed.succeeded == ("log", "webhook")
    assert [b["event"] for b in receiver.bodies()] == ["dag_failed"]
    assert [r["event"] for r in read_alert_log(alert_env) if r["record"] == "alert"] == [
        "champion_promoted",
        "drift_confirmed",
        "dag_failed",
    ]


def test_invalid_alert_settings_fall_back_to_defaults(alert_env, monkeypatch):
    monkeypatch.setenv("ATTRITION_ALERT_SILENCE", "no_such_event")
    alerts.get_alert_settings.cache_clear()
    with pytest.raises(ValueError, match="unknown alert events"):
        AlertSettings()
    result = dispatch(Alert(event="dag_failed"))
    assert result.succeeded == ("log",)
    assert read_alert_log(alert_env)[0]["event"] == "dag_failed"


# --- e-mail through the SMTP provider ---------------------------------------------------------


def test_email_goes_through_the_smtp_provider(alert_env, smtp_receiver, monkeypatch):
    port = smtp_receiver.server_address[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_ALERTS",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "airflow@example.org",
                    "retry_limit": 0,
                },
            }
        ),
    )
    monkeypatch.setenv("ATTRITION_ALERT_SMTP_CONN_ID", "smtp_alerts")
    monkeypatch.setenv("ATTRITION_ALERT_EMAIL_TO", "oncall@example.org, ml@example.org")
    alerts.get_alert_settings.cache_clear()
    quiet = dispatch(Alert(event="champion_promoted"))  # info is below the e-mail floor
    assert quiet.skipped["email"] == "below email_min_severity=warning"
    alert = _drift_alert()
    result = dispatch(alert)
    assert result.succeeded == ("log", "email"), result.failed
    (message,) = smtp_receiver.messages
    assert message["from"] == "airflow@example.org"
    assert message["to"] == ["oncall@example.org", "ml@example.org"]
    parsed = email.message_from_bytes(message["data"], policy=policy.default)
    assert parsed["Subject"] == f"[WARNING] attrition-mlops: {alert.title}"
    html_part = parsed.get_body(("html",)).get_content()
    assert "2 features drifted &lt;&amp; beyond thresholds&gt;" in html_part
    assert "http://127.0.0.1:5000/#/runs/abc123" in html_part and alert.alert_id in html_part


def test_email_failure_is_recorded_not_raised(alert_env, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://127.0.0.1:{_dead_port()}?disable_ssl=true&disable_tls=true&from_email=a%40b.org",
    )
    monkeypatch.setenv("ATTRITION_ALERT_EMAIL_TO", "oncall@example.org")
    alerts.get_alert_settings.cache_clear()
    result = dispatch(Alert(event="dag_failed"))
    assert result.succeeded == ("log",) and "email" in result.failed
    assert read_alert_log(alert_env)[-1]["failed"]["email"] == result.failed["email"]


# --- the Airflow side: connections, notify(), the notifier in a real DAG run ------------------


def test_webhook_connection_forms():
    from airflow.sdk import Connection

    from attrition_mlops.orchestration.notifier import webhook_target

    uri = Connection.from_uri(
        "https://:R0UTING@events.pagerduty.com/v2/enqueue?style=pagerduty", conn_id="x"
    )
    target = webhook_target(uri)
    assert (target.url, target.style) == ("https://events.pagerduty.com/v2/enqueue", "pagerduty")
    assert target.routing_key == "R0UTING" and "Authorization" not in target.headers
    http_style = Connection.from_json(
        json.dumps(
            {
                "conn_type": "http",
                "host": "hooks.example.org",
                "schema": "https",
                "port": 8443,
                "password": "tok",
                "extra": {"endpoint": "/alerts", "headers": {"X-Team": "ml"}},
            }
        ),
        conn_id="x",
    )
    target = webhook_target(http_style)
    assert target.url == "https://hooks.example.org:8443/alerts"
    assert target.headers == {"X-Team": "ml", "Authorization": "Bearer tok"}
    full = Connection(
        conn_id="x",
        conn_type="http",
        host=f"https://hooks.slack.com{SECRET_PATH}",
        extra='{"style": "slack"}',
    )
    target = webhook_target(full)
    assert target.url == f"https://hooks.slack.com{SECRET_PATH}" and target.style == "slack"
    assert "SECRET" not in repr(target)


@pytest.mark.parametrize("form", ["json", "uri"])
def test_notify_reads_the_webhook_connection_from_the_environment(
    alert_env, receiver, monkeypatch, form
):
    from attrition_mlops.orchestration.notifier import notify

    if form == "json":
        value = json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": receiver.port,
                "schema": "http",
                "password": "T0KEN-SECRET",
                "extra": {"style": "slack", "endpoint": SECRET_PATH},
            }
        )
    else:
        value = f"http://:T0KEN-SECRET@127.0.0.1:{receiver.port}{SECRET_PATH}?style=pagerduty"
    monkeypatch.setenv(CONN_ENV, value)
    result = notify(_drift_alert())
    assert result.succeeded == ("log", "webhook"), result.failed
    (request,) = receiver.requests
    assert request["path"] == SECRET_PATH
    if form == "json":
        assert request["headers"]["Authorization"] == "Bearer T0KEN-SECRET"
        assert "blocks" in request["body"]
    else:
        assert request["body"]["routing_key"] == "T0KEN-SECRET"
        assert request["body"]["event_action"] == "trigger"
    logged = alert_env.read_text()
    assert "T0KEN" not in logged and "SECRET" not in logged


def test_notify_without_a_connection_logs_locally(alert_env):
    from attrition_mlops.orchestration.notifier import notify

    result = notify(Alert(event="deployment_rolled_back"))
    assert result.succeeded == ("log",) and not result.failed
    assert result.skipped["webhook"] == "not configured"


@pytest.mark.integration  # starts a subprocess
def test_notifier_module_scope_is_cheap():
    code = (
        "import sys, attrition_mlops.orchestration.notifier as n; "
        "print([m for m in ('pandas', 'sklearn', 'scipy', 'mlflow') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_notifier_rejects_unknown_events():
    from attrition_mlops.orchestration.notifier import AttritionNotifier

    with pytest.raises(ValueError, match="unknown alert event"):
        AttritionNotifier(event="dag_exploded")


PROBE_DAG = '''
"""A DAG whose only task fails the way a job does (exit 2, a known error on stderr)."""
from datetime import datetime

from airflow.sdk import dag, task

from attrition_mlops.orchestration.notifier import AttritionNotifier


@dag(
    dag_id="alert_probe",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"owner": "test", "retries": 0, "on_failure_callback": AttritionNotifier()},
    on_failure_callback=AttritionNotifier(),
)
def alert_probe():
    @task
    def train_model():
        raise RuntimeError(
            "job train exited 2:\\nDataValidationError: column 'Age' has 3 values out of range"
        )

    train_model()


alert_probe()
'''

RUN_DAG = """
import runpy, sys
dag = runpy.run_path(sys.argv[1])["alert_probe"]()
run = dag.test()
print("RUN", run.run_id, run.state)
"""


def _probe_env(home: Path, dags: Path) -> dict[str, str]:
    # Only this module's Airflow: nothing inherited from the session's AIRFLOW_* configuration.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }


@pytest.fixture(scope="module")
def probe_airflow(tmp_path_factory) -> Path:
    """A throwaway Airflow home with a migrated SQLite metadata DB, shared by this module."""
    home = tmp_path_factory.mktemp("airflow")
    airflow = Path(sys.executable).with_name("airflow")
    migrate = subprocess.run(
        [str(airflow), "db", "migrate"],
        env=_probe_env(home, home / "dags"),
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:] + migrate.stdout[-3000:]
    return home


@pytest.mark.integration
def test_notifier_as_failure_callback_of_a_real_dag_run(
    alert_env, receiver, tmp_path, probe_airflow
):
    (tmp_path / "dags").mkdir()
    dag_file = tmp_path / "dags" / "alert_probe.py"
    dag_file.write_text(textwrap.dedent(PROBE_DAG))
    env = _probe_env(probe_airflow, dag_file.parent) | {
        CONN_ENV: json.dumps({"conn_type": "http", "host": receiver.url("/alerts")}),
        "ATTRITION_ALERT_AIRFLOW_BASE_URL": "http://airflow.test:8080/",
    }
    proc = subprocess.run(
        [sys.executable, "-c", RUN_DAG, str(dag_file)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id, state = re.search(r"^RUN (\S+) (\S+)$", proc.stdout, re.M).groups()
    assert state == "failed"

    by_level = {("task" if "error" in b["details"] else "dag"): b for b in receiver.bodies()}
    assert set(by_level) == {"task", "dag"} and len(receiver.requests) == 2
    task_alert, dag_alert = by_level["task"], by_level["dag"]
    run_url = f"http://airflow.test:8080/dags/alert_probe/runs/{quote(run_id, safe='')}"
    assert task_alert["event"] == "dag_failed" and task_alert["severity"] == "critical"
    assert (task_alert["dag_id"], task_alert["run_id"], task_alert["task_id"]) == (
        "alert_probe",
        run_id,
        "train_model",
    )
    assert task_alert["details"]["error"]["type"] == "DataValidationError"
    assert "column 'Age' has 3 values out of range" in task_alert["summary"]
    assert task_alert["details"]["try_number"] == 1
    assert task_alert["links"]["task log"] == f"{run_url}/tasks/train_model?try_number=1"
    assert task_alert["links"]["Airflow run"] == run_url
    assert task_alert["runbook"] == "docs/runbook.md#error-datavalidationerror"
    assert dag_alert["details"]["reason"] == "task_failure"
    assert dag_alert["summary"].startswith("DAG run of alert_probe (last task train_model) failed")
    assert dag_alert["dedup_key"] == task_alert["dedup_key"] == f"dag_failed/alert_probe/{run_id}"

    records = read_alert_log(alert_env)
    assert [r["record"] for r in records].count("alert") == 2
    assert all(r["succeeded"] == ["log", "webhook"] for r in records if r["record"] == "delivery")


# --- the decision alerts: a drift window too small to test, a rejected approval ---------------

DRIFT_RUN = "scheduled__2026-11-22T01:30:00+00:00"
DEPLOY_RUN = "asset_triggered__2026-11-22T09:12:00+00:00"


class _TaskInstance(SimpleNamespace):
    """The task-instance fields the alerts read, and the XCom push ApprovalOperator's skip does."""

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _ti(dag_id: str, run_id: str, task_id: str) -> _TaskInstance:
    return _TaskInstance(
        dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=1, map_index=-1, pushed={}
    )


def _webhook_conn(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "http", "host": receiver.url("/alerts")}))


def test_drift_window_too_small_to_test_alerts_on_call(alert_env, receiver, monkeypatch):
    from airflow.sdk.exceptions import AirflowSkipException

    from attrition_mlops.orchestration import events

    _webhook_conn(monkeypatch, receiver)
    # What check_window and jobs/drift.py return for a window of 37 records (minimum 200).
    summary = {
        "model_name": "employee_attrition",
        "checked_at": "2026-11-22T01:30:00+00:00",
        "status": "insufficient_data",
        "drift_confirmed": False,
        "n_records": 37,
        "versions": {
            "4": {
                "status": "insufficient_data",
                "drift_confirmed": False,
                "n_current": 37,
                "drifted_features": [],
                "drifted": [],
                "message": "insufficient data: 37 records < minimum 200",
                "reports": {"html": "/srv/state/drift/2026-11-21/model_version=4/report.html"},
            }
        },
        "window": ["2026-11-21", "2026-11-21"],
        "rejected_lines": [],
    }
    links = events.drift_links(summary, "http://127.0.0.1:5000/#/experiments/2/runs/r1")
    asset_event = SimpleNamespace(extra=None)
    ti = _ti("attrition_drift_monitoring", DRIFT_RUN, "signal_drift")
    with pytest.raises(AirflowSkipException, match="insufficient_data"):
        events.record_drift(summary, asset_event, links, ti=ti)
    assert asset_event.extra is None  # no Asset event: retraining is not scheduled

    (body,) = receiver.bodies()
    assert (body["event"], body["severity"]) == ("drift_insufficient_data", "info")
    assert body["title"] == (
        "No drift check: employee_attrition v4, window 2026-11-21, checked 2026-11-22 01:30 UTC: "
        "only 37 logged record(s), below ATTRITION_DRIFT_MIN_RECORDS"
    )
    assert (body["dag_id"], body["run_id"], body["task_id"]) == (
        "attrition_drift_monitoring",
        DRIFT_RUN,
        "signal_drift",
    )
    assert body["details"]["versions"] == {
        "4": {"n_current": 37, "message": "insufficient data: 37 records < minimum 200"}
    }
    assert body["links"]["report v4 (html)"].endswith("report.html")
    assert "task log" in body["links"] and "MLflow drift run" in body["links"]
    assert not any(name.startswith("retraining") for name in body["links"])
    assert body["runbook"] == "docs/runbook.md#alert-drift-insufficient-data"
    entry, delivery = read_alert_log(alert_env)
    assert entry["alert_id"] == body["alert_id"] and delivery["succeeded"] == ["log", "webhook"]

    # A quiet night with enough records and no drift sends nothing.
    quiet = summary | {"status": "no_drift", "n_records": 900}
    with pytest.raises(AirflowSkipException, match="no_drift"):
        events.record_drift(quiet, asset_event, links, ti=ti)
    assert len(receiver.requests) == 1


TRAIN_RUN = "asset_triggered__2026-11-22T01:41:07+00:00"


def test_confirmed_drift_and_a_new_champion_name_their_run_and_link_to_it(
    alert_env, receiver, monkeypatch
):
    from attrition_mlops.orchestration import events

    _webhook_conn(monkeypatch, receiver)
    monkeypatch.setenv("ATTRITION_ALERT_AIRFLOW_BASE_URL", "http://airflow.test:8080/")
    alerts.get_alert_settings.cache_clear()
    # What jobs/drift.py returns for a drifted night, and jobs/evaluate.py for a promotion.
    drifted = {"feature": "MonthlyIncome", "p_adjusted": 1e-12, "psi": 0.61, "wasserstein": 0.3}
    summary = {
        "status": "drift",
        "drift_confirmed": True,
        "n_records": 2400,
        "versions": {
            "4": {
                "status": "drift",
                "drift_confirmed": True,
                "n_current": 2400,
                "drifted_features": ["MonthlyIncome"],
                "drifted": [drifted],
                "reports": {"html": "/srv/state/drift/2026-11-21/model_version=4/report.html"},
            }
        },
        "window": ["2026-11-21", "2026-11-21"],
        "rejected_lines": [],
    }
    evaluation = {
        "decision": "promoted",
        "challenger_version": "5",
        "champion_version": "4",
        "reason": "challenger won 97.1% of resamples",
        "delta_auc": 0.021,
        "win_rate": 0.971,
        "auc_challenger": 0.84,
        "evaluation_run_id": "e7",
    }
    drift_links = events.drift_links(summary, "http://127.0.0.1:5000/#/experiments/2/runs/r1")
    promotion_links = {
        "MLflow evaluation run": "http://127.0.0.1:5000/#/experiments/1/runs/e7",
        "MLflow model version": "http://127.0.0.1:5000/#/models/employee_attrition/versions/5",
    }
    drift_ti = _ti("attrition_drift_monitoring", DRIFT_RUN, "signal_drift")
    events.record_drift(summary, SimpleNamespace(extra=None), drift_links, ti=drift_ti)
    train_ti = _ti("attrition_training", TRAIN_RUN, "promote_champion")
    champion_event = SimpleNamespace(extra=None)
    events.record_promotion(evaluation, champion_event, promotion_links, ti=train_ti)
    assert champion_event.extra == {"version": "5", "previous": "4"}

    drift, promoted = receiver.bodies()
    assert (drift["event"], promoted["event"]) == ("drift_confirmed", "champion_promoted")
    for body, ti in ((drift, drift_ti), (promoted, train_ti)):
        # Like every alert: the DAG, run and task it came from, with links to the run and log.
        assert (body["dag_id"], body["run_id"], body["task_id"]) == (
            ti.dag_id,
            ti.run_id,
            ti.task_id,
        )
        run = f"http://airflow.test:8080/dags/{ti.dag_id}/runs/{quote(ti.run_id, safe='')}"
        assert body["links"]["Airflow run"] == run
        assert body["links"]["task log"] == f"{run}/tasks/{ti.task_id}?try_number=1"
        assert body["links"]["Airflow DAG"] == f"http://airflow.test:8080/dags/{ti.dag_id}"
        assert body["details"]["try_number"] == 1
    # A drift alert belongs to its incident (receivers fold every alert of one incident into one
    # page); other alerts to their DAG run.
    assert drift["dedup_key"] == drift["details"]["incident_id"]
    assert drift["dedup_key"].startswith("drift/v4/2026-11-21/")
    assert promoted["dedup_key"] == f"champion_promoted/attrition_training/{TRAIN_RUN}"
    # ... and what each adds: the report, the MLflow drift run and the retraining it scheduled;
    # the evaluation run holding the decision report, and the new version.
    assert drift["links"]["report v4 (html)"].endswith("report.html")
    assert drift["links"]["MLflow drift run"].endswith("/runs/r1")
    assert drift["links"]["retraining (attrition_training runs)"] == (
        "http://airflow.test:8080/dags/attrition_training/runs"
    )
    assert drift["details"]["drifted"] == [{"model_version": "4", **drifted}]
    assert promoted["links"].items() >= promotion_links.items()
    assert promoted["details"]["version"] == "5" and promoted["details"]["previous"] == "4"
    logged = read_alert_log(alert_env)  # alert, delivery, alert, delivery
    assert [entry["alert_id"] for entry in logged[::2]] == [drift["alert_id"], promoted["alert_id"]]
    assert all(delivery["succeeded"] == ["log", "webhook"] for delivery in logged[1::2])


def _approval_dag():
    """The deployment DAG's approval with its direct downstream task, nothing else."""
    from airflow.sdk import DAG
    from airflow.sdk.bases.operator import BaseOperator

    from attrition_mlops.orchestration.approval import DeploymentApprovalOperator

    with DAG("attrition_deployment", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC)):
        approve = DeploymentApprovalOperator(
            task_id="approve_production",
            version="7",
            subject="Deploy employee_attrition version 7 to production?",
            response_timeout=None,
        )
        approve >> BaseOperator(task_id="roll_out_production")
    return approve


def _approval_context(approve: Any) -> dict[str, Any]:
    # The keys Airflow's task runner puts in the context that execute_complete receives.
    ti = _ti("attrition_deployment", DEPLOY_RUN, "approve_production")
    return {
        "dag": approve.dag,
        "task": approve,
        "ti": ti,
        "task_instance": ti,
        "run_id": DEPLOY_RUN,
        "dag_run": SimpleNamespace(run_id=DEPLOY_RUN),
        "logical_date": datetime(2026, 11, 22, 9, 12, tzinfo=UTC),
    }


def _response(chosen: str, *, user: dict[str, str] | None, timedout: bool = False) -> dict:
    """The resume event exactly as Airflow builds it from a stored response (the Core API's
    HITL handler and the scheduler's timeout sweep both call ``as_resume_event_payload``)."""
    from airflow.models.hitl import HITLDetail

    detail = HITLDetail(
        ti_id="019a0000-0000-7000-8000-000000000001",
        options=["Approve", "Reject"],
        subject="Deploy employee_attrition version 7 to production?",
        chosen_options=[chosen],
        params_input={},
        responded_by=user,
        responded_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
    )
    return detail.as_resume_event_payload(timedout=timedout)


def test_rejected_approval_alerts_then_fails_the_task(alert_env, receiver, monkeypatch):
    from airflow.providers.standard.exceptions import HITLRejectException

    _webhook_conn(monkeypatch, receiver)
    approve = _approval_dag()
    context = _approval_context(approve)
    event = _response("Reject", user={"id": "42", "name": "Alice Reviewer"})
    # fail_on_reject by default: the run is marked failed, production's tasks never start.
    with pytest.raises(HITLRejectException):
        approve.execute_complete(context, event=event)
    assert context["ti"].pushed == {}  # nothing skipped: the failure stops production instead

    (body,) = receiver.bodies()
    assert (body["event"], body["severity"]) == ("approval_rejected", "info")
    assert body["title"] == "Production rollout of version 7 rejected by Alice Reviewer"
    assert body["summary"].startswith(
        "Alice Reviewer rejected the production rollout of version 7: production keeps its "
        "current version, staging keeps 7, and the run is marked failed."
    )
    assert body["details"] | {"logical_date": None} == {
        "version": "7",
        "production_version": None,
        "rejected_by": {"id": "42", "name": "Alice Reviewer"},
        "responded_at": "2026-11-22T10:00:00+00:00",
        "timed_out": False,
        "try_number": 1,
        "logical_date": None,
    }
    assert (body["dag_id"], body["run_id"], body["task_id"]) == (
        "attrition_deployment",
        DEPLOY_RUN,
        "approve_production",
    )
    assert body["links"]["task log"].endswith("/tasks/approve_production?try_number=1")
    assert body["dedup_key"] == f"approval_rejected/attrition_deployment/{DEPLOY_RUN}"
    assert [r["event"] for r in read_alert_log(alert_env) if r["record"] == "alert"] == [
        "approval_rejected"
    ]


def test_approval_alerts_on_rejection_and_timeout_never_on_approval(
    alert_env, receiver, monkeypatch
):
    from airflow.providers.standard.exceptions import HITLTimeoutError
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    from attrition_mlops.orchestration.approval import rejection_fields
    from attrition_mlops.orchestration.notifier import AttritionNotifier

    _webhook_conn(monkeypatch, receiver)
    monkeypatch.setenv("ATTRITION_WORKFLOW_APPROVERS", "alice, bob")
    monkeypatch.setenv("ATTRITION_WORKFLOW_APPROVAL_TIMEOUT_HOURS", "0.5")
    clear_settings_caches()
    approve = _approval_dag()
    approved = approve.execute_complete(
        _approval_context(approve), event=_response("Approve", user={"id": "7", "name": "Bob"})
    )
    assert approved["chosen_options"] == ["Approve"] and receiver.requests == []

    # The scheduler's timeout sweep resumes the task with this event (no defaults configured).
    timeout = {"error": "no response within the timeout", "error_type": "timeout"}
    context = _approval_context(approve)
    with pytest.raises(HITLTimeoutError) as timed_out:  # the run fails, production untouched
        approve.execute_complete(context, event=timeout)
    (body,) = receiver.bodies()
    assert (body["event"], body["severity"]) == ("approval_timed_out", "warning")
    assert body["title"] == "Production rollout of version 7: no answer within 0.5 h"
    assert body["summary"].startswith(
        "Nobody (alice, bob) answered the production approval of version 7 within 0.5 h: the "
        "run failed, production keeps its current version, staging keeps 7."
    )
    assert body["details"]["approvers"] == ["alice", "bob"]
    assert body["runbook"].endswith("#alert-approval-timed-out")
    # The failure callback that follows sends no second (critical) page for the same event.
    AttritionNotifier().notify(context | {"exception": timed_out.value})
    assert len(receiver.bodies()) == 1

    # Airflow's own ending of a rejection (skip production, task succeeds) is still available.
    approve.fail_on_reject = False
    with pytest.raises(DownstreamTasksSkipped):
        approve.execute_complete(
            _approval_context(approve), event=_response("Reject", user={"id": "7", "name": "Bob"})
        )
    assert [b["event"] for b in receiver.bodies()] == ["approval_timed_out", "approval_rejected"]
    # A "Reject" default applied by the response timeout has no person behind it.
    fields = rejection_fields(None, _response("Reject", user=None, timedout=True))
    assert fields["title"] == (
        "Production rollout of version unknown rejected by nobody (the response timeout "
        "applied the default)"
    )
    assert fields["details"]["timed_out"] is True and fields["details"]["rejected_by"] is None
    clear_settings_caches()


APPROVAL_DAG = '''
"""The deployment approval alone, with the task it gates: a person rejects it."""
from datetime import datetime

from airflow.sdk import dag, task

from attrition_mlops.orchestration.approval import DeploymentApprovalOperator


@dag(
    dag_id="approval_probe",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"owner": "test", "retries": 0},
)
def approval_probe():
    @task
    def plan_deployment():
        return "7"

    version = plan_deployment()
    approve = DeploymentApprovalOperator(
        task_id="approve_production",
        version=version,
        subject="Deploy version {{ ti.xcom_pull(task_ids='plan_deployment') }} to production?",
    )

    @task
    def roll_out_production():
        return "rolled out"

    approve >> roll_out_production()


approval_probe()
'''

# dag.test() leaves a HITL task parked in AWAITING_INPUT until a response arrives from outside.
# A thread answers "Reject" through the Core API's own handler (the code behind the UI's
# Required actions and PATCH .../hitlDetails), which resumes the task as a real response would.
RUN_REJECTED = """
import runpy, sys, threading, time


def respond():
    from sqlalchemy import select
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with create_session() as session:
            ti = session.scalar(
                select(TI).where(
                    TI.dag_id == "approval_probe",
                    TI.task_id == "approve_production",
                    TI.state == TaskInstanceState.AWAITING_INPUT,
                )
            )
            if ti is not None:
                update_hitl_detail(
                    dag_id=ti.dag_id,
                    dag_run_id=ti.run_id,
                    task_id=ti.task_id,
                    update_hitl_detail_payload=UpdateHITLDetailPayload(
                        chosen_options=["Reject"], params_input={}
                    ),
                    user=SimpleAuthManagerUser(username="alice", role="admin"),
                    session=session,
                    map_index=-1,
                )
                print("RESPONDED", flush=True)
                return
        time.sleep(0.5)


threading.Thread(target=respond, daemon=True).start()
dag = runpy.run_path(sys.argv[1])["approval_probe"]()
run = dag.test()
print("RUN", run.run_id, run.state)
for ti in run.get_task_instances():
    print("TASK", ti.task_id, ti.state)
"""


@pytest.mark.integration
def test_a_person_rejecting_in_a_real_dag_run_gets_alerted(
    alert_env, receiver, tmp_path, probe_airflow
):
    (tmp_path / "dags").mkdir()
    dag_file = tmp_path / "dags" / "approval_probe.py"
    dag_file.write_text(textwrap.dedent(APPROVAL_DAG))
    env = _probe_env(probe_airflow, dag_file.parent) | {
        CONN_ENV: json.dumps({"conn_type": "http", "host": receiver.url("/alerts")}),
        "ATTRITION_WORKFLOW_DEMO_MODE": "false",
    }
    proc = subprocess.run(
        [sys.executable, "-c", RUN_REJECTED, str(dag_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0 and "RESPONDED" in proc.stdout, proc.stderr[-3000:]
    run_id, state = re.search(r"^RUN (\S+) (\S+)$", proc.stdout, re.M).groups()
    tasks = dict(re.findall(r"^TASK (\S+) (\S+)$", proc.stdout, re.M))
    # A rejection leaves the run failed in the UI, and production never starts.
    assert state == "failed"
    assert tasks == {
        "plan_deployment": "success",
        "approve_production": "failed",
        "roll_out_production": "upstream_failed",
    }
    requested, rejected = receiver.bodies()  # and no dag_failed page for the rejection
    assert requested["event"] == "approval_requested"
    # The prompt's evidence: nothing of a real deployment exists in this probe, and it says so.
    assert requested["title"] == (
        "Deploy employee_attrition v7 to production? (production runs an unknown version)"
    )
    assert "the deployment record (read_deployed)" in requested["details"]["missing"]
    assert rejected["event"] == "approval_rejected"
    assert rejected["title"] == "Production rollout of version 7 rejected by alice"
    assert rejected["details"]["rejected_by"] == {"id": "alice", "name": "alice"}
    assert rejected["details"]["version"] == "7"  # the templated XCom, rendered on resume
    assert (rejected["run_id"], rejected["task_id"]) == (run_id, "approve_production")
    assert rejected["links"]["Airflow run"].endswith(quote(run_id, safe=""))
