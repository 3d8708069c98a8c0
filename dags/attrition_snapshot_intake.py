"""
### attrition_snapshot_intake

Store a new labelled snapshot (rows with their `Attrition` outcome) as the dated, immutable
partition `as_of=YYYY-MM-DD`, and schedule retraining on it.

`plan_snapshot` → `add_snapshot` → `announce_snapshot`

- **add_snapshot** runs `jobs/add_snapshot.py`: validates the file against the feature contract
  (the whole file is refused, with the columns and rows at fault, if anything is wrong) and
  writes the partition atomically. A date that already holds *different* rows fails (snapshots
  are immutable); the *same* rows again are a no-op and the task is skipped.
- **announce_snapshot** updates the `attrition_labelled_snapshot` Asset, which schedules
  `attrition_training` on the latest snapshot.

Triggered by hand or by an upstream system (REST API) with `file`, `as_of` and `source`.
Runbook: `docs/runbook.md`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from attrition_mlops.orchestration.assets import LABELLED_SNAPSHOT
from attrition_mlops.orchestration.defaults import default_args
from attrition_mlops.orchestration.operators import PipelineJobOperator


@dag(
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=2),
    params={
        "file": Param(type="string", minLength=1, description="CSV/Parquet path or URI"),
        "as_of": Param(type="string", format="date", description="the snapshot's date"),
        "source": Param(None, type=["null", "string"], description="where the rows come from"),
    },
    tags=["attrition", "data"],
    doc_md=__doc__,
)
def attrition_snapshot_intake():
    @task
    def plan_snapshot(params=None) -> list[str]:
        from attrition_mlops.orchestration import plan

        return plan.snapshot_args(params["file"], params["as_of"], params["source"])

    added = PipelineJobOperator(
        task_id="add_snapshot", job="add_snapshot", job_args=plan_snapshot()
    )

    @task(outlets=[LABELLED_SNAPSHOT])
    def announce_snapshot(result: dict, outlet_events=None) -> dict:
        from attrition_mlops.orchestration import events

        return events.record_snapshot(result, outlet_events[LABELLED_SNAPSHOT])

    announce_snapshot(added.output)


attrition_snapshot_intake()
