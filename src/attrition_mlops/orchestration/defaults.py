"""Task defaults shared by every DAG: owner, retries with backoff, timeouts, the failure alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

OWNER = "ml-platform"


def default_args(**overrides: Any) -> dict[str, Any]:
    from attrition_mlops.orchestration.notifier import AttritionNotifier
    from attrition_mlops.settings import WorkflowSettings

    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 2,
        # ATTRITION_WORKFLOW_RETRY_DELAY_SECONDS, read when the DAG files are parsed
        "retry_delay": timedelta(seconds=WorkflowSettings().retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": AttritionNotifier(),
    }
    args.update(overrides)
    return args
