"""
### attrition_training

Train a challenger on the latest labelled snapshot (or the one named by `snapshot_as_of`, or a
file named by `snapshot`) and let the statistical gate decide whether it replaces the champion.

`plan_training` → `validate_snapshot` → `train_challenger` → `evaluate_challenger` →
`promote_champion`

- **validate_snapshot** fails with the column and rows at fault when the snapshot is bad (or its
  data file no longer matches its manifest); nothing is trained and the champion is untouched.
- **train_challenger** runs `jobs/train.py` (a Databricks job on the `azure` target, a local
  process on `local`); the run key makes a retry reuse the registered version. When the snapshot
  is the one the champion was trained on, training is *skipped* ("training skipped: unchanged
  snapshot") and so are the gate and the promotion: there is nothing new to judge.
- **evaluate_challenger** runs `jobs/evaluate.py`: a paired bootstrap of ΔAUC on the frozen holdout;
  a challenger that wins at least 90% of resamples becomes `champion` (compare-and-set, audited).
- **promote_champion** updates the `attrition_champion` Asset only when a promotion happened,
  which schedules `attrition_deployment`, and sends the `champion_promoted` alert (links to this
  run, the evaluation's MLflow run and the new version); otherwise it is *skipped* and says why.

Runs weekly (Monday 03:00 UTC), on demand, and whenever `attrition_drift`,
`attrition_performance` (degraded performance opened an incident) or
`attrition_labelled_snapshot` (a new labelled snapshot was stored) is updated. One run at a
time, so two evaluations never race for the champion alias. Runbook: `docs/runbook.md`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from attrition_mlops.orchestration.assets import CHAMPION, DRIFT, LABELLED_SNAPSHOT, PERFORMANCE
from attrition_mlops.orchestration.defaults import default_args
from attrition_mlops.orchestration.operators import PipelineJobOperator


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"),
        assets=DRIFT | LABELLED_SNAPSHOT | PERFORMANCE,
    ),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=6),
    params={
        "snapshot_as_of": Param(
            None, type=["null", "string"], format="date", description="labelled snapshot date"
        ),
        "snapshot": Param(None, type=["null", "string"], description="or a file path or URI"),
    },
    tags=["attrition", "training"],
    doc_md=__doc__,
)
def attrition_training():
    @task(multiple_outputs=True)
    def plan_training(params=None, dag_run=None) -> dict[str, list[str]]:
        from attrition_mlops.orchestration import plan
        from attrition_mlops.settings import get_workflow_settings

        key = plan.run_key(dag_run.dag_id, dag_run.run_id)
        return plan.training_args(
            get_workflow_settings(),
            key=key,
            snapshot=params["snapshot"],
            snapshot_as_of=params["snapshot_as_of"],
        )

    planned = plan_training()
    validate = PipelineJobOperator(
        task_id="validate_snapshot", job="validate_data", job_args=planned["validate"]
    )
    train = PipelineJobOperator(
        task_id="train_challenger",
        job="train",
        job_args=planned["train"],
        execution_timeout=timedelta(hours=3),
    )
    evaluate = PipelineJobOperator(
        task_id="evaluate_challenger",
        job="evaluate",
        job_args=[
            "--challenger-version",
            "{{ ti.xcom_pull(task_ids='train_challenger')['version'] }}",
        ],
    )

    @task(outlets=[CHAMPION])
    def promote_champion(evaluation: dict, outlet_events=None, ti=None) -> dict:
        from attrition_mlops.orchestration import events
        from attrition_mlops.orchestration.links import MLFLOW_RUN_KEY, MODEL_VERSION_KEY

        run_url, version_url = (
            ti.xcom_pull(task_ids="evaluate_challenger", key=key)
            for key in (MLFLOW_RUN_KEY, MODEL_VERSION_KEY)
        )
        links = {"MLflow evaluation run": run_url, "MLflow model version": version_url}
        return events.record_promotion(evaluation, outlet_events[CHAMPION], links, ti=ti)

    planned >> validate >> train >> evaluate
    promote_champion(evaluate.output)


attrition_training()
