"""
### attrition_deployment

Ship a champion: build the serving image, prove it in staging, ask a person, then production.

`plan_deployment` → `build_image` → `roll_out_staging` → `wait_for_staging` →
`smoke_test_staging` → `approve_production` → `roll_out_production` → `wait_for_production` →
`smoke_test_production` → `record_deployment`

- Scheduled by the `attrition_champion` Asset (a promotion in `attrition_training`), or run on
  demand with `{"version": "<model version>"}`.
- **Rollback**: any failure after an environment's rollout started (rollout, wait, smoke test)
  triggers `roll_back_staging` / `roll_back_production`, which restore the version that ran
  before this run and alert. A failing staging smoke test never reaches production.
- **approve_production** is Airflow's human-in-the-loop approval: answer it under *Required
  actions*. The prompt says what production runs now and gives the candidate's gate evidence
  (ΔAUC CI, win rate, window) with links. Only `ATTRITION_WORKFLOW_APPROVERS` may answer, when
  set. Rejecting sends `approval_rejected` and fails the run with production untouched; no
  answer within `ATTRITION_WORKFLOW_APPROVAL_TIMEOUT_HOURS` sends `approval_timed_out` and
  fails it the same way.
- Targets: `local` moves the environment's registry alias and the local serving process follows
  it; `azure` patches the AKS Deployment image and waits like `kubectl rollout status`.

Runbook: `docs/runbook.md`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, TriggerRule, dag, task

from attrition_mlops.orchestration.approval import DeploymentApprovalOperator
from attrition_mlops.orchestration.assets import CHAMPION
from attrition_mlops.orchestration.defaults import default_args
from attrition_mlops.orchestration.deploy import IMAGE, VERSION

# A rollout must not be retried blindly: the rollback decides, then a person.
STEP_ARGS = {"retries": 0, "execution_timeout": timedelta(minutes=20)}


@dag(
    schedule=CHAMPION,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    dagrun_timeout=timedelta(hours=30),
    params={"version": Param(None, type=["null", "string", "integer"], description="version")},
    tags=["attrition", "deployment"],
    doc_md=__doc__,
)
def attrition_deployment():
    # Steps get the version and the image as templates (deploy.VERSION, deploy.IMAGE) pulled at
    # run time from the one task that made each (arguments are rendered, defaults would not
    # be), so the graph's edges are the order of the steps.
    @task
    def plan_deployment(params=None, triggering_asset_events=None) -> str:
        from attrition_mlops.orchestration import deploy

        return deploy.target_version(params or {}, triggering_asset_events)

    @task(execution_timeout=timedelta(minutes=30))
    def build_image(version: str) -> dict:
        from attrition_mlops.orchestration import deploy

        return deploy.build_image(version)

    @task
    def read_deployed() -> dict:
        from attrition_mlops.orchestration import deploy

        return deploy.deployed_now()

    def environment(env: str):
        @task(task_id=f"roll_out_{env}", **STEP_ARGS)
        def roll_out(version: str, image: str, ti=None) -> dict:
            from attrition_mlops.orchestration import deploy

            return deploy.roll_out(env, version, image, ti)

        @task(task_id=f"wait_for_{env}", **STEP_ARGS)
        def wait_for(version: str, image: str) -> None:
            from attrition_mlops.orchestration import deploy

            deploy.wait(env, version, image)

        @task(task_id=f"smoke_test_{env}", **STEP_ARGS)
        def smoke_test(version: str) -> dict:
            from attrition_mlops.orchestration import deploy

            return deploy.smoke_test(env, version)

        @task(task_id=f"roll_back_{env}", trigger_rule=TriggerRule.ONE_FAILED, **STEP_ARGS)
        def roll_back(version: str, ti=None) -> dict:
            from attrition_mlops.orchestration import deploy

            return deploy.roll_back(env, version, ti)

        started, waited, tested = (
            roll_out(VERSION, IMAGE),
            wait_for(VERSION, IMAGE),
            smoke_test(VERSION),
        )
        started >> waited >> tested
        [started, waited, tested] >> roll_back(VERSION)
        return started, tested

    @task(**STEP_ARGS)
    def record_deployment(version: str, ti=None) -> dict:
        from attrition_mlops.orchestration import deploy

        return deploy.record_deployment(version, ti)

    staging_start, staging_ok = environment("staging")
    approve = DeploymentApprovalOperator(
        task_id="approve_production",
        version=VERSION,  # the prompt and the alerts name it
        subject=f"Deploy employee_attrition version {VERSION} to production?",  # until execute
        retries=0,
        execution_timeout=None,  # the wait is bounded by response_timeout instead
        response_timeout=timedelta(hours=24),  # replaced by the setting at run time
    )
    production_start, production_ok = environment("production")
    # What ran before is read before any change: the rollback targets and the approver's "now".
    plan_deployment() >> build_image(VERSION) >> read_deployed() >> staging_start
    staging_ok >> approve >> production_start
    production_ok >> record_deployment(VERSION)


attrition_deployment()
