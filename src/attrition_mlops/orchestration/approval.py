"""The human approval before production: Airflow's HITL ``ApprovalOperator``, with a demo mode.

In demo mode (``ATTRITION_WORKFLOW_DEMO_MODE=true``, set only by ``make demo``) the approval is
granted at once and the task log says so in capitals; otherwise the task waits in the Airflow
UI's *Required actions* for a person, up to ``ATTRITION_WORKFLOW_APPROVAL_TIMEOUT_HOURS``, and
fails (production untouched) when nobody answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

DEMO_APPROVER = {"id": "demo-mode", "name": "make demo (automatic approval)"}


class DeploymentApprovalOperator(ApprovalOperator):
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
