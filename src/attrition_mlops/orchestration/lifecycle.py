"""``make demo``: the whole lifecycle, locally, in real Airflow and real MLflow.

train and promote → deploy to local staging and production (approval granted automatically:
demo mode) → SIMULATED normal traffic → batch scoring → drift check on it (no alarm) →
SIMULATED drifted traffic → drift check (alarm, alert, retraining scheduled) → the retraining
run and its gate → a summary of what happened and where to look.

Every DAG run goes through Airflow (``dag.test()``: the real task runner, metadata DB, XComs,
Asset events). Without a scheduler nothing starts Asset-triggered runs by itself, so where the
scheduler would start the next DAG this driver checks that Airflow queued it, says so, and runs it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, date, datetime
from typing import Any

from attrition_mlops.orchestration.asset_runs import (
    clear_queue,
    queued_by_assets,
    queued_events,
    record_asset_trigger,
)
from attrition_mlops.orchestration.local_airflow import airflow_env, migrate, run_dag

NORMAL_RECORDS = 600
DRIFTED_RECORDS = 1800
DRIFT_SCENARIO = "salary_inflation"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(
    dag_id: str,
    conf: dict[str, Any] | None = None,
    *,
    expect: str = "success",
    triggered_by: list[dict[str, Any]] | None = None,
) -> dict:
    """One DAG run; ``triggered_by``: the Asset events that queued it (recorded on the run)."""
    started = time.monotonic()
    result = run_dag(dag_id, conf)
    took = time.monotonic() - started
    if triggered_by:
        record_asset_trigger(dag_id, result["run_id"], triggered_by)
    tasks = ", ".join(f"{k}={v}" for k, v in sorted(result["tasks"].items()))
    print(f"    {dag_id}: {result['state']} in {took:.0f} s ({tasks})", flush=True)
    if result["state"] != expect:
        raise SystemExit(f"{dag_id} ended {result['state']}, expected {expect}: {tasks}")
    return result


def send(records: int, scenario: str, seed: int) -> dict[str, Any]:
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.deploy.rollout import environment_url
    from attrition_mlops.simulate import send_traffic, simulate_traffic

    base = load_snapshot().frame
    frame = simulate_traffic(base, records, scenario=scenario, seed=seed)
    sent = send_traffic(environment_url("production"), frame, batch_size=50)
    time.sleep(3)  # the API flushes its export once a second
    print(
        f"    sent {sent['records_sent']} SIMULATED records ({scenario}): {sent['status_counts']}"
    )
    return sent


def lifecycle(today: date) -> dict[str, Any]:
    from attrition_mlops import alerts

    day = {"date": today.isoformat()}
    say("1/8 attrition_training: validate → train → evaluate → promote")
    first = run("attrition_training")
    promoted = first["tasks"]["promote_champion"] == "success"
    queued = queued_by_assets("attrition_deployment")
    print(f"    champion promoted: {promoted}; Airflow queued attrition_deployment on: {queued}")
    champion_events = queued_events("attrition_deployment")
    clear_queue("attrition_deployment")

    say("2/8 attrition_deployment: image → staging → smoke test → approval → production")
    print("    DEMO MODE: the production approval is granted automatically (a person does it")
    print("    in the Airflow UI's Required actions outside the demo)")
    run("attrition_deployment", triggered_by=champion_events)

    say("3/8 SIMULATED normal traffic to the production API")
    send(NORMAL_RECORDS, "none", seed=1)

    say("4/8 attrition_batch_scoring: the day's snapshot with the production model")
    run("attrition_batch_scoring", day)

    say("5/8 attrition_drift_monitoring on normal traffic (expect: no alarm)")
    quiet = run("attrition_drift_monitoring", day)
    print(f"    signal_drift: {quiet['tasks']['signal_drift']} (skipped = no drift confirmed)")

    say(f"6/8 SIMULATED drifted traffic ({DRIFT_SCENARIO}) to the production API")
    send(DRIFTED_RECORDS, DRIFT_SCENARIO, seed=2)

    say("7/8 attrition_drift_monitoring on drifted traffic (expect: alarm)")
    alarm = run("attrition_drift_monitoring", day)
    queued = queued_by_assets("attrition_training")
    drift_alerts = [
        r
        for r in alerts.read_alert_log()
        if r.get("record") == "alert" and r.get("event") == "drift_confirmed"
    ]
    print(
        f"    signal_drift: {alarm['tasks']['signal_drift']}; alerts written: {len(drift_alerts)}"
    )
    print(f"    Airflow queued attrition_training on: {queued}")
    drift_events = queued_events("attrition_training")
    clear_queue("attrition_training")

    say("8/8 attrition_training again (the retraining drift scheduled), gated as always")
    retrain = run("attrition_training", triggered_by=drift_events)
    return {
        "promoted_first": promoted,
        "quiet_signal": quiet["tasks"]["signal_drift"],
        "drift_signal": alarm["tasks"]["signal_drift"],
        "training_queued_by": queued,
        "drift_alerts": len(drift_alerts),
        "retrain_promoted": retrain["tasks"]["promote_champion"] == "success",
    }


def summary(outcome: dict[str, Any]) -> None:
    from attrition_mlops.alerts import get_alert_settings
    from attrition_mlops.deploy.rollout import LocalServingSettings
    from attrition_mlops.settings import get_settings

    state = get_settings().state_dir.resolve()
    serving = LocalServingSettings()
    say("Summary")
    print(f"""    first training promoted a champion: {outcome["promoted_first"]}
    staging and production API (local processes, now stopped): {serving.base_url("staging")}, \
{serving.base_url("production")}
    quiet night: signal_drift {outcome["quiet_signal"]} (no alarm)
    drifted traffic: signal_drift {outcome["drift_signal"]}, {outcome["drift_alerts"]} alert(s)
    retraining scheduled by {outcome["training_queued_by"]}; its gate promoted: \
{outcome["retrain_promoted"]}

    Where to look
      alerts:        {get_alert_settings().resolved_log_path}
      drift reports: {state / "drift"}
      predictions:   {state / "predictions"}
      inference logs (SIMULATED traffic): {state / "inference-logs"}
      MLflow UI:     make mlflow-ui  → http://127.0.0.1:5000
      Airflow UI:    make up         → http://127.0.0.1:8080 (these runs are in its history)
      registry:      make status""")


def main() -> int:
    env = airflow_env() | {"ATTRITION_WORKFLOW_DEMO_MODE": "true"}
    if any(os.environ.get(k) != v for k, v in env.items()):
        os.execve(sys.executable, [sys.executable, "-m", __spec__.name, *sys.argv[1:]], env)
    migrate(env)
    from attrition_mlops.deploy.rollout import ENVIRONMENTS, LocalBackend
    from attrition_mlops.settings import get_settings

    started = datetime.now(UTC)
    try:
        outcome = lifecycle(started.date())
    finally:  # the demo's serving processes; `make up` keeps its own
        backend = LocalBackend(get_settings())
        for environment in ENVIRONMENTS:
            backend.stop_server(environment)
    summary(outcome)
    print(f"\n    total {(datetime.now(UTC) - started).total_seconds():.0f} s")
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
