"""
### attrition_drift_monitoring

Check a day of exported inference logs for input drift against the reference profile of the
model version that served them; alert on-call and schedule retraining when drift is confirmed.

`plan_drift_check` → `check_drift` → `signal_drift` (updates `attrition_drift`)
and `purge_expired_logs`

- **check_drift** runs `jobs/drift.py`: KS (numeric) and χ² (categorical/ordinal) per feature,
  Benjamini–Hochberg correction, an effect-size gate (PSI / Wasserstein), a minimum sample size
  ("insufficient data" is a result, not an alarm). The report (HTML + JSON) is logged to MLflow;
  its title names the model version, the window and the check time, and it links the runbook,
  this Airflow run and its MLflow run (`drift-v<version>-<day>-checked-<time>`).
- **signal_drift** counts the night in the drift incident of each model version. It is
  *skipped* when no drift is confirmed, and when the drift only continues an open incident (at
  most one `incident_digest` a day, no page). When confirmed drift opens an incident (or changes
  its features) it pages on-call (which features, how much, the incident id, links to this run,
  the report and the retraining DAG) and updates the `attrition_drift` Asset, which schedules
  `attrition_training`. When the window
  held too few records to test (`insufficient_data`) it skips too, after an info alert
  (`drift_insufficient_data`): monitoring was blind that day.
- **purge_expired_logs** first compacts each complete day of inference logs into the slim
  prediction ledger (pseudonym, model version, time, probability: what the performance job needs
  once outcomes mature), then deletes inference-log partitions older than
  `ATTRITION_WORKFLOW_RETENTION_DAYS` (they hold personal data) that the ledger holds, and ledger
  partitions older than `ATTRITION_PERFORMANCE_LEDGER_RETENTION_DAYS`; it runs whatever the
  check did. A day that cannot be compacted keeps its log and fails the task (an alert).

Nightly at 01:30 UTC for the previous day; a `date` parameter checks another day.
Runbook: `docs/runbook.md`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, TriggerRule, dag, task

from attrition_mlops.orchestration.assets import DRIFT
from attrition_mlops.orchestration.defaults import default_args
from attrition_mlops.orchestration.operators import PipelineJobOperator


@dag(
    schedule=CronTriggerTimetable("30 1 * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=2),
    params={"date": Param(None, type=["null", "string"], format="date", description="YYYY-MM-DD")},
    tags=["attrition", "monitoring"],
    doc_md=__doc__,
)
def attrition_drift_monitoring():
    @task
    def plan_drift_check(params=None, logical_date=None, dag_run=None) -> list[str]:
        from attrition_mlops.alerts import safe_alert_settings
        from attrition_mlops.orchestration import plan
        from attrition_mlops.orchestration.notifier import airflow_links
        from attrition_mlops.settings import get_settings, get_workflow_settings

        day = plan.monitored_day(params["date"], logical_date, dag_run.run_after)
        run = airflow_links(safe_alert_settings(), dag_run.dag_id, dag_run.run_id)["Airflow run"]
        return plan.drift_args(get_workflow_settings(), get_settings(), day, run)

    check = PipelineJobOperator(task_id="check_drift", job="drift", job_args=plan_drift_check())

    @task(outlets=[DRIFT])
    def signal_drift(summary: dict, outlet_events=None, ti=None) -> dict:
        from attrition_mlops.orchestration import events, incidents
        from attrition_mlops.orchestration.links import MLFLOW_RUN_KEY

        links = events.drift_links(
            summary, ti.xcom_pull(task_ids="check_drift", key=MLFLOW_RUN_KEY)
        )
        data = incidents.latest_labelled_data()  # a new snapshot re-requests retraining
        return events.record_drift(summary, outlet_events[DRIFT], links, ti=ti, labelled_data=data)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def purge_expired_logs(logical_date=None, dag_run=None) -> dict:
        from attrition_mlops.orchestration import events

        return events.purge_inference_logs((logical_date or dag_run.run_after).date())

    signal_drift(check.output)
    check >> purge_expired_logs()


attrition_drift_monitoring()
