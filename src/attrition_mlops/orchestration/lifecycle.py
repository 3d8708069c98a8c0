"""``make demo``: the whole lifecycle, locally, in real Airflow and real MLflow.

train and promote → deploy to local staging and production (approval granted automatically:
demo mode) → SIMULATED normal traffic → batch scoring (today, and a cohort a year back) → drift
check on it (no alarm) → SIMULATED drifted traffic → drift check (alarm, incident, retraining
scheduled) → the retraining run (skipped: no new labelled data) → a new SIMULATED labelled
snapshot with a concept shift → retraining, judged on the snapshot's recent window, promoted →
deployment → SIMULATED outcomes of the year-old cohort → the performance check (realized AUC on
matured outcomes, estimated AUC on the latest cohort; the API's logged predictions judged apart,
matched by the demo's own pseudonym key) → a summary of what happened and where.

Every DAG run goes through Airflow (``dag.test()``: the real task runner, metadata DB, XComs,
Asset events). Without a scheduler nothing starts Asset-triggered runs by itself, so where the
scheduler would start the next DAG this driver checks that Airflow queued it, says so, and runs it.

The terminal shows the story (``demo_story``); Airflow's own logs and the jobs' output go to
``<state>/demo/demo-<UTC time>.log``, named at the start and at the end. The outcome, as JSON, is
``<state>/demo/outcome.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from attrition_mlops.orchestration import demo_data
from attrition_mlops.orchestration.asset_runs import (
    clear_queue,
    queued_by_assets,
    queued_events,
    record_asset_trigger,
)
from attrition_mlops.orchestration.demo_story import (
    alerts_line,
    dag_line,
    drift_line,
    duration,
    promotion_line,
    queued_line,
    step_line,
    summary_text,
    task_progress,
    tell,
    terminal_to_log,
    traffic_line,
)
from attrition_mlops.orchestration.local_airflow import airflow_env, migrate, run_dag, stop_serving

NORMAL_RECORDS = 600
DRIFTED_RECORDS = 1800
DRIFT_SCENARIO = "salary_inflation"
#: The new labelled snapshot: a concept shift (long-tenured employees now leave), SIMULATED.
SNAPSHOT_SCENARIO, SNAPSHOT_ROWS = demo_data.SNAPSHOT_SCENARIO, demo_data.SNAPSHOT_ROWS
#: The cohort whose SIMULATED outcomes have matured by today: scored a 12-month horizon ago.
COHORT_DAYS_BACK = 400
STEPS = 14
PERFORMANCE_DAG = "attrition_performance_monitoring"
_progress = {"started": time.monotonic(), "step": 0}


def _step(n: int, text: str) -> None:
    _progress["step"] = n
    tell(step_line(n, STEPS, text, time.monotonic() - _progress["started"]))


def run(
    dag_id: str,
    conf: dict[str, Any] | None = None,
    *,
    expect: str = "success",
    triggered_by: list[dict[str, Any]] | None = None,
) -> dict:
    """One DAG run; ``triggered_by``: the Asset events that queued it (recorded on the run)."""
    tell(f"    {dag_id}: running")
    started = time.monotonic()
    with task_progress():
        result = run_dag(dag_id, conf)
    took = time.monotonic() - started
    if triggered_by:
        record_asset_trigger(dag_id, result["run_id"], triggered_by)
    tell(dag_line(dag_id, result["state"], result["tasks"], took))
    if result["state"] != expect:
        raise SystemExit(f"{dag_id} ended {result['state']}, expected {expect}")
    return result


def send(records: int, scenario: str, seed: int) -> dict[str, Any]:
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.deploy.rollout import environment_url
    from attrition_mlops.simulate import send_traffic, simulate_traffic

    base = load_snapshot().frame
    frame = simulate_traffic(base, records, scenario=scenario, seed=seed)
    sent = send_traffic(environment_url("production"), frame, batch_size=50)
    time.sleep(3)  # the API flushes its export once a second
    tell(traffic_line(sent, scenario))
    return sent


def _queued(dag_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """What Airflow queued for ``dag_id`` (told), taken off the queue as the scheduler would."""
    assets, events = queued_by_assets(dag_id), queued_events(dag_id)
    tell(queued_line(dag_id, assets))
    clear_queue(dag_id)
    return assets, events


def lifecycle(today: date) -> dict[str, Any]:
    from datetime import timedelta

    from attrition_mlops import alerts

    day = {"date": today.isoformat()}
    cohort_day = today - timedelta(days=COHORT_DAYS_BACK)
    _step(1, "Train a model and decide whether it becomes champion (attrition_training)")
    first = run("attrition_training")
    promoted = first["tasks"]["promote_champion"] == "success"
    tell(promotion_line(promoted, demo_data.champion()))
    _, champion_events = _queued("attrition_deployment")

    _step(2, "Deploy the champion: staging, smoke test, approval, production")
    tell("    DEMO MODE: the production approval is granted automatically (outside the demo a")
    tell("    person grants it in the Airflow UI, under Required actions)")
    run("attrition_deployment", triggered_by=champion_events)
    before = demo_data.champion()

    _step(3, "SIMULATED normal traffic to the production API")
    send(NORMAL_RECORDS, "none", seed=1)

    _step(4, "Batch scoring: today's snapshot, and the same rows dated a year back")
    run("attrition_batch_scoring", day)
    tell(f"    SIMULATED time: the same rows scored as of {cohort_day}, so outcomes can mature")
    run("attrition_batch_scoring", {"date": cohort_day.isoformat()})

    _step(5, "Drift check on the normal traffic (expected: no alarm)")
    quiet = run("attrition_drift_monitoring", day)
    tell(drift_line(quiet["tasks"]["signal_drift"], [], None))

    _step(6, f"SIMULATED drifted traffic ({DRIFT_SCENARIO}) to the production API")
    send(DRIFTED_RECORDS, DRIFT_SCENARIO, seed=2)

    _step(7, "Drift check on the drifted traffic (expected: alarm, an incident)")
    alarm = run("attrition_drift_monitoring", day)
    drift_alerts = [
        r
        for r in alerts.read_alert_log()
        if r.get("record") == "alert" and r.get("event") == "drift_confirmed"
    ]
    details = drift_alerts[-1]["details"] if drift_alerts else {}
    incident = details.get("incident_id")
    drifted = [d["feature"] for d in details.get("drifted", [])]
    tell(drift_line(alarm["tasks"]["signal_drift"], drifted, incident))
    queued, drift_events = _queued("attrition_training")

    _step(8, "Retraining, as the drift alarm scheduled it (gated as always)")
    retrain = run("attrition_training", triggered_by=drift_events)
    if retrain["tasks"]["train_challenger"] == "skipped":
        tell("    decision: training skipped, no new labelled data (the champion's own data would")
        tell("    only reproduce it); the champion stays")
    else:
        promoted_again = retrain["tasks"]["promote_champion"] == "success"
        tell(promotion_line(promoted_again, demo_data.champion()))

    _step(9, f"A new SIMULATED labelled snapshot arrives ({SNAPSHOT_SCENARIO}: concept shift)")
    snapshot_file, rows = demo_data.simulated_snapshot()
    tell(f"    {rows:,} SIMULATED labelled rows: {snapshot_file}")
    run(
        "attrition_snapshot_intake",
        {
            "file": str(snapshot_file),
            "as_of": today.isoformat(),
            "source": f"SIMULATED labelled snapshot ({SNAPSHOT_SCENARIO}, {SNAPSHOT_ROWS} rows)",
        },
    )
    queued_by_snapshot, snapshot_events = _queued("attrition_training")

    _step(10, "Training on the new snapshot, judged on its recent evidence window")
    adapted = run("attrition_training", triggered_by=snapshot_events)
    adapted_promoted = adapted["tasks"]["promote_champion"] == "success"
    after = demo_data.champion()
    tell(promotion_line(adapted_promoted, after))
    _, adapted_events = _queued("attrition_deployment")

    _step(11, "Deploy the adapted champion (staging, approval, production)")
    if adapted_promoted:
        run("attrition_deployment", triggered_by=adapted_events)
    else:
        tell("    not promoted: production keeps its model")

    _step(12, "SIMULATED outcomes of the year-old cohort arrive (attrition_outcomes_intake)")
    outcomes_file, n_outcomes = demo_data.simulated_outcomes(cohort_day, today)
    tell(f"    {n_outcomes:,} SIMULATED outcomes (timed from the real labels): {outcomes_file}")
    run(
        "attrition_outcomes_intake",
        {"file": str(outcomes_file), "arrived": today.isoformat(), "simulated": True},
    )
    _, outcome_events = _queued(PERFORMANCE_DAG)

    _step(13, "Performance check: realized AUC on matured outcomes, estimated AUC on today's")
    checked = run(PERFORMANCE_DAG, day, triggered_by=outcome_events)
    performance = demo_data.performance(today)
    tell(demo_data.performance_lines(performance))

    _step(14, "The alerts sent so far")
    tell(alerts_line(r for r in alerts.read_alert_log() if r.get("record") == "alert"))
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


def _summary(outcome: dict[str, Any]) -> str:
    from attrition_mlops.alerts import get_alert_settings
    from attrition_mlops.deploy.rollout import LocalServingSettings
    from attrition_mlops.settings import get_settings

    serving = LocalServingSettings()
    return summary_text(
        outcome,
        snapshot_scenario=SNAPSHOT_SCENARIO,
        performance=demo_data.performance_lines(outcome["performance"]),
        state=get_settings().state_dir.resolve(),
        alerts_log=get_alert_settings().resolved_log_path,
        apis=(serving.base_url("staging"), serving.base_url("production")),
    )


def main() -> int:
    env = airflow_env() | {"ATTRITION_WORKFLOW_DEMO_MODE": "true"}
    if not os.environ.get(demo_data.PSEUDONYM_KEY_ENV):
        # One key for the demo's API processes and its performance job, so the online
        # predictions can be matched to outcomes (unset, each API process draws its own).
        key = demo_data.pseudonym_key(Path(env["ATTRITION_STATE_DIR"]))
        env[demo_data.PSEUDONYM_KEY_ENV] = key
    if any(os.environ.get(k) != v for k, v in env.items()):
        os.execve(sys.executable, [sys.executable, "-m", __spec__.name, *sys.argv[1:]], env)
    started = datetime.now(UTC)
    _progress["started"] = time.monotonic()
    folder = Path(env["ATTRITION_STATE_DIR"]) / "demo"
    log_file = folder / f"demo-{started:%Y%m%dT%H%M%SZ}.log"
    tell(f"make demo: the model's lifecycle in {STEPS} steps, in real Airflow and MLflow")
    tell(f"Airflow's own logs and the jobs' output: {log_file}")
    with terminal_to_log(log_file):
        code, outcome = _lifecycle_in(started)
        total = duration((datetime.now(UTC) - started).total_seconds())
        if outcome is not None:
            (folder / "outcome.json").write_text(json.dumps(outcome, indent=1) + "\n")
            tell(_summary(outcome))
            tell(f"\nDone in {total}. Airflow's own logs and the jobs' output: {log_file}")
        else:
            tell(f"\nStopped after {total}, at step {_progress['step']}/{STEPS}.")
            tell(f"Airflow's own logs and the jobs' output (any traceback at the end): {log_file}")
    return code


def _lifecycle_in(started: datetime) -> tuple[int, dict[str, Any] | None]:
    """The lifecycle with the demo's serving processes stopped at the end; (exit code, outcome)."""
    import traceback

    try:
        migrate(dict(os.environ))
        return 0, lifecycle(started.date())
    except KeyboardInterrupt:
        tell("\nInterrupted (Ctrl-C).")
        return 130, None
    except BaseException as err:  # told briefly on the terminal, in full in the log
        traceback.print_exc()
        tell(f"\nFailed: {err}")
        return 1, None
    finally:  # the demo's serving processes
        stop_serving()


if __name__ == "__main__":
    raise SystemExit(main())
