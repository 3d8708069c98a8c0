"""The human approval before production: Airflow's HITL ``ApprovalOperator``, with a demo mode.

In demo mode (``ATTRITION_WORKFLOW_DEMO_MODE=true``, set only by ``make demo``) the approval is
granted at once and the task log says so in capitals; otherwise the task waits in the Airflow
UI's *Required actions* for a person, up to ``ATTRITION_WORKFLOW_APPROVAL_TIMEOUT_HOURS``, and
fails (production untouched) when nobody answers.

A rejection sends the ``approval_rejected`` alert (who, which version, which run), then ends the
way Airflow's ``ApprovalOperator`` ends it: the task succeeds and production is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

DEMO_APPROVER = {"id": "demo-mode", "name": "make demo (automatic approval)"}


class DeploymentApprovalOperator(ApprovalOperator):
    """``ApprovalOperator`` for the production rollout of model ``version`` (templated)."""

    template_fields = (*ApprovalOperator.template_fields, "version")

    def __init__(self, *, version: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.version = version

    def execute(self, context: Any) -> Any:
        from attrition_mlops.settings import get_workflow_settings

        workflow = get_workflow_settings()
        if workflow.demo_mode:
            self.log.warning(
                "DEMO MODE: production approval GRANTED AUTOMATICALLY "
                "(ATTRITION_WORKFLOW_DEMO_MODE=true). Outside the demo a person approves here."
            )
            event = {
                "chosen_options": [self.APPROVE],
                "params_input": {},
                "responded_at": datetime.now(UTC),
                "responded_by_user": DEMO_APPROVER,
            }
            return self.execute_complete(context, event=event)
        self.response_timeout = timedelta(hours=workflow.approval_timeout_hours)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        # Alert before the base class ends the task: on rejection it skips production by raising
        # (DownstreamTasksSkipped, or HITLRejectException with fail_on_reject), so nothing after
        # it would run. A timeout or error event carries no decision and is left to it.
        if "error" not in event and list(event.get("chosen_options") or []) == [self.REJECT]:
            self._announce_rejection(context, event)
        return super().execute_complete(context=context, event=event)

    def _announce_rejection(self, context: Any, event: Mapping[str, Any]) -> None:
        from attrition_mlops.orchestration.notifier import alert_from_context, notify

        try:
            alert = alert_from_context(context, **rejection_fields(self.version, event))
            result = notify(alert)
        except Exception:  # alerting must not change how the decision ends the task
            self.log.exception("could not send the approval_rejected alert")
            return
        self.log.info("approval_rejected alert %s sent via %s", alert.alert_id, result.succeeded)


def rejection_fields(version: Any, event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``approval_rejected`` alert's fields from a HITL response event.

    ``responded_by_user`` is ``{"id", "name"}``, or None when no person answered (the response
    timeout applied a default of "Reject").
    """
    user = event.get("responded_by_user") or {}
    who = user.get("name") or user.get("id")
    by = who or "nobody (the response timeout applied the default)"
    answered = event.get("responded_at")
    version = str(version) if version not in (None, "") else "unknown"
    return {
        "event": "approval_rejected",
        "title": f"Production rollout of version {version} rejected by {by}",
        "summary": (
            f"{by} rejected the production rollout of version {version}: production keeps its "
            f"current version, staging keeps {version}. Ask why; if it is the champion and must "
            "not ship, roll the champion back (make rollback)."
        ),
        "details": {
            "version": version,
            "rejected_by": dict(user) or None,
            "responded_at": answered.isoformat() if hasattr(answered, "isoformat") else answered,
            "timed_out": bool(event.get("timedout")),
        },
    }
