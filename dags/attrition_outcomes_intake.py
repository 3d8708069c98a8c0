"""
### attrition_outcomes_intake

Store a delivery of realized outcomes (who left, who stayed, and when) as a part of the
partition `arrived=YYYY-MM-DD`, and schedule the performance check on it.

`plan_outcomes` → `add_outcomes` → `announce_outcomes`

- **add_outcomes** runs `jobs/add_outcomes.py`: validates each row (a bad row is rejected and
  kept with its reasons; wrong columns or no valid row fail the task) and writes the part
  atomically; the same file on the same day rewrites the same part.
- **announce_outcomes** updates the `attrition_outcomes` Asset, which schedules
  `attrition_performance_monitoring`.

Triggered by hand or by the HR export (REST API) with `file` and optionally `arrived`.
Format and join rules: `docs/performance.md`. Runbook: `docs/runbook.md`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from attrition_mlops.orchestration.assets import OUTCOMES
from attrition_mlops.orchestration.defaults import default_args
from attrition_mlops.orchestration.operators import PipelineJobOperator


@dag(
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=1),
    params={
        "file": Param(type="string", minLength=1, description="CSV/Parquet path or URI"),
        "arrived": Param(None, type=["null", "string"], format="date", description="YYYY-MM-DD"),
        "simulated": Param(False, type="boolean", description="SIMULATED outcomes (demo)"),
    },
    tags=["attrition", "data", "monitoring"],
    doc_md=__doc__,
)
def attrition_outcomes_intake():
    @task
    def plan_outcomes(params=None) -> list[str]:
        from attrition_mlops.orchestration import plan

        return plan.outcomes_args(params["file"], params["arrived"], params["simulated"])

    added = PipelineJobOperator(
        task_id="add_outcomes", job="add_outcomes", job_args=plan_outcomes()
    )

    @task(outlets=[OUTCOMES])
    def announce_outcomes(result: dict, outlet_events=None) -> dict:
        keys = ("arrived", "rows_valid", "rows_rejected", "positives", "simulated")
        outlet_events[OUTCOMES].extra = {k: result.get(k) for k in keys}
        print(
            f"outcomes arrived {result['arrived']}: {result['rows_valid']} stored, "
            f"{result['rows_rejected']} rejected: the performance check is scheduled"
        )
        return dict(outlet_events[OUTCOMES].extra)

    announce_outcomes(added.output)


attrition_outcomes_intake()
