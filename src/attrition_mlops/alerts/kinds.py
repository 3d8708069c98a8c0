"""The alert kinds: every event the pipeline announces, with its default severity and wording.

Each event has a runbook section with the anchor ``alert-<event>`` (dashes for underscores);
``tests/alerts/test_alerts.py`` checks that the two stay in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["info", "warning", "critical"]
WebhookStyle = Literal["generic", "slack", "teams", "pagerduty"]
Event = Literal[
    "dag_failed",
    "drift_confirmed",
    "drift_insufficient_data",
    "performance_degraded",
    "performance_estimate_dropped",
    "incident_digest",
    "incident_resolved",
    "champion_promoted",
    "approval_requested",
    "approval_rejected",
    "approval_timed_out",
    "model_deployed",
    "deployment_rolled_back",
]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


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
    "performance_degraded": EventSpec(
        "warning",
        "Model performance degraded",
        "Matured outcomes show the serving model below its AUC floor or badly calibrated: "
        "open the performance report and decide between retraining and a rollback.",
    ),
    "performance_estimate_dropped": EventSpec(
        "info",
        "Estimated performance dropped",
        "The label-free AUC estimate of the latest cohort fell by more than its interval: "
        "check the drift report; outcomes will confirm or clear it.",
    ),
    "incident_digest": EventSpec(
        "info",
        "Incident still open",
        "A monitoring incident was confirmed again: no page, its retraining was already "
        "requested; follow it in the incident's first alert.",
    ),
    "incident_resolved": EventSpec(
        "info",
        "Incident resolved",
        "A monitoring signal has been clear for the configured number of nights: the incident "
        "is closed.",
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
    "approval_timed_out": EventSpec(
        "warning",
        "Production approval timed out",
        "Nobody answered the production approval in time: the run failed and production keeps "
        "its current model.",
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
