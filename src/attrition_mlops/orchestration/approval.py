"""The human approval before production: Airflow's HITL ``ApprovalOperator``, with a demo mode.

In demo mode (``ATTRITION_WORKFLOW_DEMO_MODE=true``, set only by ``make demo``) the approval is
granted at once and the task log says so in capitals. Otherwise the task asks under the Airflow
UI's *Required actions*, with a prompt that says what production runs now and the candidate's
gate evidence (:mod:`attrition_mlops.orchestration.approval_prompt`), sends the
``approval_requested`` alert with the same content, and waits:

- only the users in ``ATTRITION_WORKFLOW_APPROVERS`` may answer, when it is set (Airflow's
  HITL ``assigned_users``; the API server refuses anyone else with 403);
- **Approve**: production is rolled out;
- **Reject**: the ``approval_rejected`` alert, then the task fails (``fail_on_reject``): the run
  is marked failed, production is never touched, staging keeps the candidate;
- no answer within ``ATTRITION_WORKFLOW_APPROVAL_TIMEOUT_HOURS``: the ``approval_timed_out``
  alert, then the task fails the same way.

Both failures are decisions already announced, so the generic ``dag_failed`` alert stays quiet
for them (``notifier.ANNOUNCED_FAILURES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

DEMO_APPROVER = {"id": "demo-mode", "name": "make demo (automatic approval)"}


class DeploymentApprovalOperator(ApprovalOperator):
    """``ApprovalOperator`` for the production rollout of model ``version`` (templated).

    ``fail_on_reject`` defaults to True here, unlike Airflow's: a rejected rollout must not
    leave a green run behind that reads as "deployed".
    """

    template_fields = (*ApprovalOperator.template_fields, "version")

    def __init__(self, *, version: Any = None, fail_on_reject: bool = True, **kwargs: Any) -> None:
        super().__init__(fail_on_reject=fail_on_reject, **kwargs)
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
        if workflow.approvers:
            self.assigned_users = [{"id": user, "name": user} for user in workflow.approvers]
        self._ask(context, workflow.approval_timeout_hours)
        return super().execute(context)

    def _ask(self, context: Any, timeout_hours: float) -> None:
        """Write the prompt from the evidence, and send the ``approval_requested`` alert."""
        from attrition_mlops.orchestration import deploy
        from attrition_mlops.orchestration.approval_prompt import (
            approval_body,
            approval_subject,
            requested_alert_fields,
        )

        try:
            evidence = deploy.approval_evidence(str(self.version), context)
            self.subject, self.body = approval_subject(evidence), approval_body(evidence)
            fields = requested_alert_fields(evidence, timeout_hours)
        except Exception as exc:  # a report of an unexpected shape must not block the question
            self.log.exception("could not write the approval prompt from the evidence")
            self.body = (
                f"The evidence for version {self.version} could not be gathered "
                f"({type(exc).__name__}: {exc}); see this task's log, the MLflow evaluation run "
                "and the staging smoke test before answering."
            )
            fields = {"summary": self.body, "details": {"version": str(self.version)}}
        self.log.info("Asking: %s\n%s", self.subject, self.body)
        if self.assigned_users:
            fields["details"]["approvers"] = [user["id"] for user in self.assigned_users]
        self._announce(context, "approval_requested", fields)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        # Alert before the base class ends the task: on rejection it raises HITLRejectException
        # (fail_on_reject) and on a timeout HITLTimeoutError, so nothing after it would run.
        if event.get("error_type") == "timeout":
            self._announce(context, "approval_timed_out", self._timeout_fields(context))
        elif "error" not in event and list(event.get("chosen_options") or []) == [self.REJECT]:
            fields = rejection_fields(self.version, event, _production_now(context))
            self._announce(context, "approval_rejected", fields)
        return super().execute_complete(context=context, event=event)

    def _timeout_fields(self, context: Any) -> dict[str, Any]:
        from attrition_mlops.settings import get_workflow_settings

        workflow = get_workflow_settings()
        return timeout_fields(
            self.version,
            workflow.approval_timeout_hours,
            workflow.approvers,
            _production_now(context),
        )

    def _announce(self, context: Any, event: str, fields: dict[str, Any]) -> None:
        from attrition_mlops.orchestration.notifier import alert_from_context, notify

        fields = {k: v for k, v in fields.items() if k != "event"}
        try:
            alert = alert_from_context(context, event=event, **fields)
            result = notify(alert)
        except Exception:  # alerting must not change how the decision ends the task
            self.log.exception("could not send the %s alert", event)
            return
        self.log.info("%s alert %s sent via %s", event, alert.alert_id, result.succeeded)


def _production_now(context: Any) -> str | None:
    """The version production ran when this run began (``read_deployed``), if recorded."""
    try:
        before = context["ti"].xcom_pull(task_ids="read_deployed") or {}
    except Exception:  # outside the deployment DAG (a probe, a unit test) there is none
        return None
    return (before.get("production") or {}).get("model_version")


def _keeps(production: str | None) -> str:
    return f"version {production}" if production else "its current version"


def rejection_fields(
    version: Any, event: Mapping[str, Any], production: str | None = None
) -> dict[str, Any]:
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
            f"{by} rejected the production rollout of version {version}: production keeps "
            f"{_keeps(production)}, staging keeps {version}, and the run is marked failed. Ask "
            "why; if it is the champion and must not ship, roll the champion back "
            "(make rollback)."
        ),
        "details": {
            "version": version,
            "production_version": production,
            "rejected_by": dict(user) or None,
            "responded_at": answered.isoformat() if hasattr(answered, "isoformat") else answered,
            "timed_out": bool(event.get("timedout")),
        },
    }


def timeout_fields(
    version: Any, timeout_hours: float, approvers: tuple[str, ...], production: str | None = None
) -> dict[str, Any]:
    """The ``approval_timed_out`` alert's fields: nobody answered within the timeout."""
    version = str(version) if version not in (None, "") else "unknown"
    who = ", ".join(approvers) if approvers else "anyone allowed to answer"
    return {
        "title": f"Production rollout of version {version}: no answer within {timeout_hours:g} h",
        "summary": (
            f"Nobody ({who}) answered the production approval of version {version} within "
            f"{timeout_hours:g} h: the run failed, production keeps {_keeps(production)}, "
            f"staging keeps {version}. To ship it, trigger attrition_deployment again with "
            f'{{"version": "{version}"}} when an approver is available.'
        ),
        "details": {
            "version": version,
            "production_version": production,
            "timeout_hours": timeout_hours,
            "approvers": list(approvers) or None,
        },
    }
