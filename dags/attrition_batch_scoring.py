"""
### attrition_batch_scoring

Score the day's input snapshot with the model deployed to production and publish the
predictions partition.

`plan_scoring` → `score_snapshot` (updates the `attrition_predictions` Asset)

- Output: partitioned Parquet (`run_date=YYYY-MM-DD/`) with key columns, probability, label,
  outlier flag, model name and version, scored-at. Written atomically; a rerun of the same day
  replaces the partition, never duplicates it; a killed run resumes without duplicates.
- Invalid rows go to a rejects file with their reason; the task fails when they exceed
  `ATTRITION_SCORE_MAX_REJECT_FRACTION`.
- Downstream consumers schedule on the `attrition_predictions` Asset.

Daily at 02:00 UTC; a `date` parameter re-scores an earlier day. Runbook: `docs/runbook.md`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from attrition_mlops.orchestration.assets import PREDICTIONS
from attrition_mlops.orchestration.defaults import default_args
from attrition_mlops.orchestration.operators import PipelineJobOperator


@dag(
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=4),
    params={"date": Param(None, type=["null", "string"], format="date", description="YYYY-MM-DD")},
    tags=["attrition", "batch"],
    doc_md=__doc__,
)
def attrition_batch_scoring():
    @task
    def plan_scoring(params=None, logical_date=None, dag_run=None) -> list[str]:
        from attrition_mlops.orchestration import plan
        from attrition_mlops.settings import get_settings, get_workflow_settings

        day = plan.run_day(params["date"], logical_date, dag_run.run_after)
        return plan.scoring_args(
            get_workflow_settings(), get_settings(), day, model_alias="production"
        )

    PipelineJobOperator(
        task_id="score_snapshot",
        job="score",
        job_args=plan_scoring(),
        outlets=[PREDICTIONS],
        execution_timeout=timedelta(hours=3),
    )


attrition_batch_scoring()
