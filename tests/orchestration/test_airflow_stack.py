"""The production configuration, for real: PostgreSQL as Airflow's metadata database and the
CeleryExecutor with Redis as broker (both run on this machine), started the way ``make up``
starts the stack. Checks what an engineer sees in the UI's API (the four DAGs with their docs,
Asset lineage linking training, deployment and drift) and runs a DAG through scheduler, Celery
worker and our job operator."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from support import headless_chromium

pytestmark = pytest.mark.integration
DAGS = {
    "attrition_training",
    "attrition_deployment",
    "attrition_batch_scoring",
    "attrition_drift_monitoring",
}


@pytest.fixture(scope="module")
def stack(start_celery_stack):
    with start_celery_stack() as started:
        yield started


def test_the_four_dags_show_with_their_docs_and_no_import_errors(stack):
    client = stack["client"]
    assert client.get("/importErrors").json()["total_entries"] == 0
    for dag_id in DAGS:
        details = client.get(f"/dags/{dag_id}/details").json()
        assert details["doc_md"] and dag_id in details["doc_md"], dag_id
        assert "attrition" in {t["name"] for t in details["tags"]}
        assert details["is_paused"] is False


def test_asset_lineage_links_training_deployment_and_drift(stack):
    assets = {a["name"]: a for a in stack["client"].get("/assets").json()["assets"]}

    def producers(name):
        return {t["dag_id"] for t in assets[name]["producing_tasks"]}

    def consumers(name):
        return {d["dag_id"] for d in assets[name]["scheduled_dags"]}

    assert producers("attrition_champion") == {"attrition_training"}
    assert consumers("attrition_champion") == {"attrition_deployment"}
    assert producers("attrition_drift") == {"attrition_drift_monitoring"}
    assert consumers("attrition_drift") == {"attrition_training"}
    assert producers("attrition_predictions") == {"attrition_batch_scoring"}


def test_a_dag_runs_on_postgres_and_celery(stack):
    client = stack["client"]
    day = date(2026, 1, 1).isoformat()  # no traffic logged that day: "insufficient data"
    run = client.post(
        "/dags/attrition_drift_monitoring/dagRuns",
        json={"logical_date": None, "conf": {"date": day}},
    )
    assert run.status_code == 200, run.text
    run_id = run.json()["dag_run_id"]
    deadline = time.monotonic() + 600
    while True:
        state = client.get(f"/dags/attrition_drift_monitoring/dagRuns/{run_id}").json()["state"]
        if state in ("success", "failed"):
            break
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(5)
    tasks = client.get(f"/dags/attrition_drift_monitoring/dagRuns/{run_id}/taskInstances").json()
    states = {t["task_id"]: t["state"] for t in tasks["task_instances"]}
    assert state == "success", states
    assert states == {
        "plan_drift_check": "success",
        "check_drift": "success",
        "signal_drift": "skipped",  # nothing logged that day: insufficient data, no alarm
        "purge_expired_logs": "success",
    }
    # The Celery worker, not the scheduler, ran them: its log names each workload it executed.
    worker_log = (Path(stack["env"]["AIRFLOW_HOME"]) / "logs" / "celery-worker.log").read_text()
    assert "check_drift" in worker_log and run_id in worker_log, worker_log[-2000:]


def test_a_demo_run_shows_its_task_log_in_the_ui(stack, tmp_path):
    """A run made like ``make demo``'s (``dag.test()`` in another process, same metadata DB and
    AIRFLOW_HOME) shows each task's own log in the UI; it showed "Log file not found on worker"."""
    client, dag_id = stack["client"], "attrition_drift_monitoring"
    # Paused, the scheduler leaves the run alone: dag.test()'s in-process runner, not a Celery
    # worker, runs the tasks and writes their logs.
    assert client.patch(f"/dags/{dag_id}", json={"is_paused": True}).status_code == 200
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "attrition_mlops.orchestration.local_airflow", "run", dag_id]
            + ["--conf", json.dumps({"date": "2026-01-02"})],
            env=stack["env"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        client.patch(f"/dags/{dag_id}", json={"is_paused": False})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_id = json.loads(proc.stdout.strip().splitlines()[-1])["run_id"]
    own_text = "local target: running jobs/drift.py --date 2026-01-02"  # check_drift's own line

    run_url = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    for task_id in ("plan_drift_check", "check_drift", "signal_drift", "purge_expired_logs"):
        log = client.get(f"{run_url}/{task_id}/logs/1", headers={"Accept": "application/json"})
        assert log.status_code == 200, log.text
        events = [line.get("event", "") for line in log.json()["content"]]
        assert not any("Log file not found" in e for e in events), (task_id, events)
        assert any(e.startswith(("Done.", "local target", "Skipping")) for e in events), events

    with headless_chromium() as browser:
        page = browser.new_page()
        page.goto(f"{stack['url']}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/check_drift")
        page.get_by_text(own_text).first.wait_for(timeout=60_000)
        assert "Log file not found" not in page.inner_text("body")
        page.screenshot(path=str(tmp_path / "task-log.png"))
