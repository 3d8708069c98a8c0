"""``make demo``: the whole lifecycle, locally, in real Airflow and real MLflow.

train and promote → deploy to local staging and production (approval granted automatically:
demo mode) → SIMULATED normal traffic → batch scoring (today, and a cohort a year back) → drift
check on it (no alarm) → SIMULATED drifted traffic → drift check (alarm, incident, retraining
scheduled) → the retraining run (skipped: no new labelled data) → a new SIMULATED labelled
snapshot with a concept shift → retraining, judged on the snapshot's recent window, promoted →
deployment → SIMULATED outcomes of the year-old cohort → the performance check (realized AUC on
matured outcomes, estimated AUC on the latest cohort) → a summary of what happened and where.

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

from attrition_mlops.orchestration import demo_data
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
#: The new labelled snapshot: a concept shift (long-tenured employees now leave), SIMULATED.
SNAPSHOT_SCENARIO, SNAPSHOT_ROWS = demo_data.SNAPSHOT_SCENARIO, demo_data.SNAPSHOT_ROWS
#: The cohort whose SIMULATED outcomes have matured by today: scored a 12-month horizon ago.
COHORT_DAYS_BACK = 400
STEPS = 14


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


def _step(n: int, text: str) -> None:
    say(f"{n}/{STEPS} {text}")


def lifecycle(today: date) -> dict[str, Any]:
    from datetime import timedelta

    from attrition_mlops import alerts

    day = {"date": today.isoformat()}
    cohort_day = today - timedelta(days=COHORT_DAYS_BACK)
    _step(1, "attrition_training: validate → train → evaluate → promote")
    first = run("attrition_training")
    promoted = first["tasks"]["promote_champion"] == "success"
    queued = queued_by_assets("attrition_deployment")
    print(f"    champion promoted: {promoted}; Airflow queued attrition_deployment on: {queued}")
    champion_events = queued_events("attrition_deployment")
    clear_queue("attrition_deployment")

    _step(2, "attrition_deployment: image → staging → smoke test → approval → production")
    print("    DEMO MODE: the production approval is granted automatically (a person does it")
    print("    in the Airflow UI's Required actions outside the demo)")
    run("attrition_deployment", triggered_by=champion_events)
    before = demo_data.champion()

    _step(3, "SIMULATED normal traffic to the production API")
    send(NORMAL_RECORDS, "none", seed=1)

    _step(4, "attrition_batch_scoring: today's snapshot, and a cohort dated a year back")
    run("attrition_batch_scoring", day)
    print(f"    SIMULATED time: the same rows scored as of {cohort_day} (its outcomes mature)")
    run("attrition_batch_scoring", {"date": cohort_day.isoformat()})

    _step(5, "attrition_drift_monitoring on normal traffic (expect: no alarm)")
    quiet = run("attrition_drift_monitoring", day)
    print(f"    signal_drift: {quiet['tasks']['signal_drift']} (skipped = no drift confirmed)")

    _step(6, f"SIMULATED drifted traffic ({DRIFT_SCENARIO}) to the production API")
    send(DRIFTED_RECORDS, DRIFT_SCENARIO, seed=2)

    _step(7, "attrition_drift_monitoring on drifted traffic (expect: alarm, an incident)")
    alarm = run("attrition_drift_monitoring", day)
    queued = queued_by_assets("attrition_training")
    drift_alerts = [
        r
        for r in alerts.read_alert_log()
        if r.get("record") == "alert" and r.get("event") == "drift_confirmed"
    ]
    incident = drift_alerts[-1]["details"].get("incident_id") if drift_alerts else None
    print(
        f"    signal_drift: {alarm['tasks']['signal_drift']}; alerts written: {len(drift_alerts)};"
        f" incident {incident}"
    )
    print(f"    Airflow queued attrition_training on: {queued}")
    drift_events = queued_events("attrition_training")
    clear_queue("attrition_training")

    _step(8, "attrition_training again (the retraining drift scheduled), gated as always")
    retrain = run("attrition_training", triggered_by=drift_events)
    print(f"    train_challenger: {retrain['tasks']['train_challenger']} (no new labelled data)")

    _step(9, f"a new SIMULATED labelled snapshot arrives ({SNAPSHOT_SCENARIO}: concept shift)")
    snapshot_file = demo_data.simulated_snapshot()
    run(
        "attrition_snapshot_intake",
        {
            "file": str(snapshot_file),
            "as_of": today.isoformat(),
            "source": f"SIMULATED labelled snapshot ({SNAPSHOT_SCENARIO}, {SNAPSHOT_ROWS} rows)",
        },
    )
    queued_by_snapshot = queued_by_assets("attrition_training")
    print(f"    Airflow queued attrition_training on: {queued_by_snapshot}")
    snapshot_events = queued_events("attrition_training")
    clear_queue("attrition_training")

    _step(10, "attrition_training on the new snapshot, judged on its recent evidence window")
    adapted = run("attrition_training", triggered_by=snapshot_events)
    adapted_promoted = adapted["tasks"]["promote_champion"] == "success"
    after = demo_data.champion()
    print(f"    {after.get('gate.reason', 'no gate reason recorded')}")
    adapted_events = queued_events("attrition_deployment")
    clear_queue("attrition_deployment")

    _step(11, "attrition_deployment of the adapted champion (staging → approval → production)")
    if adapted_promoted:
        run("attrition_deployment", triggered_by=adapted_events)
    else:
        print("    not promoted: production keeps its model")

    _step(12, "SIMULATED outcomes of the year-old cohort arrive (attrition_outcomes_intake)")
    outcomes_file = demo_data.simulated_outcomes(cohort_day, today)
    run(
        "attrition_outcomes_intake",
        {"file": str(outcomes_file), "arrived": today.isoformat(), "simulated": True},
    )
    print(f"    Airflow queued the performance check on: {queued_by_assets(PERFORMANCE_DAG)}")
    outcome_events = queued_events(PERFORMANCE_DAG)
    clear_queue(PERFORMANCE_DAG)

    _step(13, "attrition_performance_monitoring: realized and estimated AUC")
    checked = run(PERFORMANCE_DAG, day, triggered_by=outcome_events)
    performance = demo_data.performance(today)

    _step(14, "the incidents and alerts so far")
    sent = [r for r in alerts.read_alert_log() if r.get("record") == "alert"]
    print("    " + ", ".join(f"{r['event']} ({r['severity']})" for r in sent))
    return {
        "promoted_first": promoted,
        "quiet_signal": quiet["tasks"]["signal_drift"],
        "drift_signal": alarm["tasks"]["signal_drift"],
        "drift_incident": incident,
        "training_queued_by": queued,
        "drift_alerts": len(drift_alerts),
        "retrain_promoted": retrain["tasks"]["promote_champion"] == "success",
        # skipped: the drift alarm brought no new labelled snapshot, so nothing was retrained
        "retrain_training": retrain["tasks"]["train_challenger"],
        "snapshot_queued_training": queued_by_snapshot,
        "champion_before": before.get("version"),
        "champion_after": after.get("version"),
        "adapted_promoted": adapted_promoted,
        "adapted_reason": after.get("gate.reason"),
        "performance_signal": checked["tasks"]["signal_performance"],
        "performance": performance,
    }


PERFORMANCE_DAG = "attrition_performance_monitoring"


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
    retraining scheduled by {outcome["training_queued_by"]}: train_challenger \
{outcome["retrain_training"]} (skipped = unchanged snapshot), promoted: \
{outcome["retrain_promoted"]}; drift incident {outcome["drift_incident"]}
    new SIMULATED labelled snapshot ({SNAPSHOT_SCENARIO}) queued training on \
{outcome["snapshot_queued_training"]}
    champion before → after: v{outcome["champion_before"]} → v{outcome["champion_after"]} \
(adapted challenger promoted: {outcome["adapted_promoted"]})
      gate: {outcome["adapted_reason"]}
    performance ({outcome["performance"].get("status")}; SIMULATED outcomes of the bundled rows, \
most of which v{outcome["champion_before"]} trained on: optimistic): signal_performance \
{outcome["performance_signal"]}
{demo_data.performance_lines(outcome["performance"])}

    Where to look
      alerts:        {get_alert_settings().resolved_log_path}
      drift reports: {state / "drift"}
      performance:   {state / "performance"} (performance_report.html)
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
