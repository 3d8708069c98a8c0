"""
### attrition_performance_monitoring

Judge each serving model version on the outcomes that have arrived (realized AUC with its CI,
calibration, label coverage per monthly prediction cohort) and estimate the AUC of cohorts still
waiting for outcomes from the probabilities alone.

`plan_performance` → `check_performance` → `signal_performance`

- **check_performance** runs `jobs/performance.py`; the summary, the cohort tables and the HTML
  report are logged to MLflow (extra link **MLflow run**). The batch predictions are judged, and
  the online API's logged predictions apart (the drift DAG's logs, matched to outcomes with
  `ATTRITION_SERVING_PSEUDONYM_KEY`; without it the summary says they were not judged).
- **signal_performance** tracks each version's verdict as a `performance` incident (online:
  `online_performance`, the source in the alert's title): a version
  newly `degraded` (the AUC's upper CI bound below `ATTRITION_PERFORMANCE_MIN_AUC`, or ECE above
  `ATTRITION_PERFORMANCE_MAX_ECE`) pages once (`performance_degraded`) and updates the
  `attrition_performance` Asset, which schedules `attrition_training`; later nights send at
  most an `incident_digest`. A label-free estimate that dropped by more than its interval sends
  `performance_estimate_dropped` (info). Otherwise it is *skipped*, with the reason.

Runs when outcomes arrive (`attrition_outcomes`) and nightly at 02:30 UTC for the estimate; a
`date` parameter judges as of another day. Rules: `docs/performance.md`; runbook:
`docs/runbook.md`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from attrition_mlops.orchestration.assets import OUTCOMES, PERFORMANCE
from attrition_mlops.orchestration.defaults import default_args
from attrition_mlops.orchestration.operators import PipelineJobOperator


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("30 2 * * *", timezone="UTC"), assets=OUTCOMES
    ),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=2),
    params={"date": Param(None, type=["null", "string"], format="date", description="YYYY-MM-DD")},
    tags=["attrition", "monitoring"],
    doc_md=__doc__,
)
def attrition_performance_monitoring():
    @task
    def plan_performance(params=None, logical_date=None, dag_run=None) -> list[str]:
        from attrition_mlops.orchestration import plan
        from attrition_mlops.settings import get_settings, get_workflow_settings

        day = plan.run_day(params["date"], logical_date, dag_run.run_after)
        return plan.performance_args(get_workflow_settings(), get_settings(), day)

    check = PipelineJobOperator(
        task_id="check_performance", job="performance", job_args=plan_performance()
    )

    @task(outlets=[PERFORMANCE])
    def signal_performance(summary: dict, outlet_events=None, ti=None) -> dict:
        from attrition_mlops.orchestration import performance_events
        from attrition_mlops.orchestration.links import MLFLOW_RUN_KEY

        run_url = ti.xcom_pull(task_ids="check_performance", key=MLFLOW_RUN_KEY)
        links = {"MLflow performance run": run_url} if run_url else {}
        return performance_events.record_performance(
            summary, outlet_events[PERFORMANCE], links, ti=ti
        )

    signal_performance(check.output)


attrition_performance_monitoring()
