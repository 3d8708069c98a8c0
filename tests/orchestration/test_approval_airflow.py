"""A person's approval, for real (issue 16, item 4): in the production configuration
(PostgreSQL + Celery), a deployment run waits at ``approve_production`` and is answered through
Airflow's REST API, the call the UI's *Required actions* makes, by logged-in users.

One stack, three deployment runs, in order: v1 approved (production rolls out), v2 rejected
(production untouched, run failed, alert), v2 again with nobody answering (the timeout path).
The two versions are trained and judged by the real jobs (``jobs/train.py``,
``jobs/evaluate.py``), so the prompt's evidence is the gate's own report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import mlflow
import pytest
from support import REPO, free_port

from attrition_mlops import registry

pytestmark = pytest.mark.integration

DAG = "attrition_deployment"
NAME = "employee_attrition"
USERS = {"operator": "op-pass-1", "alice": "alice-pass-2", "mallory": "mallory-pass-3"}
TIMEOUT_HOURS = 0.0125  # 45 s: long enough to answer from here, short enough to wait out


@pytest.fixture(scope="module")
def stack(start_celery_stack):
    env = {
        "ATTRITION_WORKFLOW_APPROVERS": "alice",
        "ATTRITION_WORKFLOW_APPROVAL_TIMEOUT_HOURS": str(TIMEOUT_HOURS),
        "ATTRITION_LOCAL_SERVING_STAGING_PORT": str(free_port()),
        "ATTRITION_LOCAL_SERVING_PRODUCTION_PORT": str(free_port()),
        "ATTRITION_LOCAL_SERVING_POLL_SECONDS": "0.5",
        "ATTRITION_TRAIN_N_TRIALS": "2",
        "ATTRITION_TRAIN_CV_FOLDS": "3",
        "ATTRITION_TRAIN_FAMILIES": '["logistic_regression"]',
        # Only the deployment DAG runs here; the scheduler sweeps expired approvals every 2 s.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
    }
    with start_celery_stack(env=env, users=USERS) as started:
        started["client"].patch(f"/dags/{DAG}", json={"is_paused": False}).raise_for_status()
        try:
            yield started
        finally:
            for pid_file in (started["state"] / "serving").glob("*.pid"):  # the APIs it started
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass


def _job(stack, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / args[0]), *args[1:]],
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def versions(stack) -> dict:
    """v1: the first champion (cold start); v2: a retrained challenger the gate compared with
    it (paired bootstrap: ΔAUC CI and win rate)."""
    first = _job(stack, "train.py", "--run-key", "approval-1")
    _job(stack, "evaluate.py", "--challenger-version", str(first["version"]), "--quiet")
    second = _job(stack, "train.py", "--run-key", "approval-2", "--force")
    report = _job(stack, "evaluate.py", "--challenger-version", str(second["version"]), "--quiet")
    return {"v1": str(first["version"]), "v2": str(second["version"]), "report_v2": report}


def _trigger(stack, version: str) -> str:
    run = stack["client"].post(
        f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"version": version}}
    )
    assert run.status_code == 200, run.text
    return run.json()["dag_run_id"]


def _task(stack, run_id: str, task_id: str) -> dict:
    path = f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
    return stack["client"].get(path).json()


def _wait_for_question(stack, run_id: str) -> dict:
    """Until approve_production waits for a person; returns its HITL detail (the prompt)."""
    deadline = time.monotonic() + 900
    while True:
        state = _task(stack, run_id, "approve_production").get("state")
        if state == "awaiting_input":
            break
        assert state not in ("failed", "upstream_failed"), _states(stack, run_id)
        assert time.monotonic() < deadline, _states(stack, run_id)
        time.sleep(2)
    detail = stack["client"].get(_hitl_path(run_id))
    assert detail.status_code == 200, detail.text
    return detail.json()


def _hitl_path(run_id: str) -> str:
    run = quote(run_id, safe="")
    return f"/dags/{DAG}/dagRuns/{run}/taskInstances/approve_production/-1/hitlDetails"


def _answer(stack, run_id: str, user: str, option: str) -> httpx.Response:
    """What the UI sends when ``user`` clicks ``option`` under Required actions."""
    with stack["client_for"](user) as client:
        return client.patch(
            _hitl_path(run_id), json={"chosen_options": [option], "params_input": {}}
        )


def _finish(stack, run_id: str) -> tuple[str, dict[str, str]]:
    deadline = time.monotonic() + 900
    while True:
        run = stack["client"].get(f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}").json()
        if run["state"] in ("success", "failed"):
            return run["state"], _states(stack, run_id)
        assert time.monotonic() < deadline, _states(stack, run_id)
        time.sleep(3)


def _states(stack, run_id: str) -> dict[str, str]:
    tasks = stack["client"].get(f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances")
    return {t["task_id"]: t["state"] for t in tasks.json()["task_instances"]}


def _alerts(stack, run_id: str) -> list[dict]:
    path = stack["state"] / "alerts" / "alerts.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("record") == "alert" and r.get("run_id") == run_id]


def _alias(stack, alias: str) -> str | None:
    uri = f"sqlite:///{(stack['state'] / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return registry.get_alias_version(NAME, alias)


def _serving(stack, env: str) -> str:
    port = stack["env"][f"ATTRITION_LOCAL_SERVING_{env.upper()}_PORT"]
    return str(httpx.get(f"http://127.0.0.1:{port}/model", timeout=10).json()["version"])


@pytest.fixture(scope="module")
def approved(stack, versions) -> dict:
    run_id = _trigger(stack, versions["v1"])
    question = _wait_for_question(stack, run_id)
    refused = _answer(stack, run_id, "mallory", "Approve")  # an admin, but not an approver
    still = stack["client"].get(_hitl_path(run_id)).json()
    answered = _answer(stack, run_id, "alice", "Approve")
    state, tasks = _finish(stack, run_id)
    return locals()


@pytest.fixture(scope="module")
def rejected(stack, versions, approved) -> dict:
    run_id = _trigger(stack, versions["v2"])
    question = _wait_for_question(stack, run_id)
    answered = _answer(stack, run_id, "alice", "Reject")
    state, tasks = _finish(stack, run_id)
    return locals()


@pytest.fixture(scope="module")
def timed_out(stack, versions, rejected) -> dict:
    run_id = _trigger(stack, versions["v2"])
    question = _wait_for_question(stack, run_id)
    waited_from = time.monotonic()
    state, tasks = _finish(stack, run_id)  # nobody answers
    waited = time.monotonic() - waited_from
    return locals()


def test_only_an_assigned_approver_may_answer(approved):
    assert [u["id"] for u in approved["question"]["assigned_users"]] == ["alice"]
    assert approved["refused"].status_code == 403, approved["refused"].text
    assert "not a respondent" in approved["refused"].text
    assert approved["still"]["response_received"] is False  # the refusal changed nothing
    assert approved["answered"].status_code == 200, approved["answered"].text
    assert approved["answered"].json()["responded_by"] == {"id": "alice", "name": "alice"}


def test_approve_rolls_out_production(stack, versions, approved):
    assert approved["state"] == "success", approved["tasks"]
    for task in ("approve_production", "roll_out_production", "smoke_test_production"):
        assert approved["tasks"][task] == "success", approved["tasks"]
    assert approved["tasks"]["roll_back_production"] == "skipped"
    assert _alias(stack, "production") == versions["v1"]
    # The first rollout: the prompt says production ran nothing, and the gate's cold start.
    question = approved["question"]
    assert question["subject"] == (
        f"Deploy {NAME} v{versions['v1']} to production? (production runs nothing)"
    )
    assert (
        "**Production runs now:** nothing (this is the first production rollout)."
        in (question["body"])
    )
    assert "by rule `cold_start`" in question["body"]
    events = [a["event"] for a in _alerts(stack, approved["run_id"])]
    assert events == ["approval_requested", "model_deployed"], events


def test_the_prompt_and_its_alert_give_production_now_and_the_gate_evidence(
    stack, versions, approved, rejected
):
    v1, v2, report = versions["v1"], versions["v2"], versions["report_v2"]
    question, run_id = rejected["question"], rejected["run_id"]
    body = question["body"]
    assert question["subject"] == f"Deploy {NAME} v{v2} to production? (production runs v{v1})"
    assert f"**Production runs now:** version {v1}." in body
    assert "staging smoke test passed" in body
    assert f"by rule `{report['rule']}`, v{v2} against champion v{v1}" in body
    low, high = report["delta_auc_ci95"]  # the gate's own report, from the evaluation job
    assert f"ΔAUC {report['delta_auc']:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}]" in body
    assert f"challenger wins {report['win_rate']:.1%} of resamples" in body
    assert f"- recent window: none ({report['evidence_window']['note']})" in body
    run_path = f"/runs/{report['evaluation_run_id']})"
    assert "[evaluation run](http://127.0.0.1:5000/#/experiments/" in body and run_path in body
    smoke_log = f"{stack['url']}/dags/{DAG}/runs/{quote(run_id, safe='')}/tasks/smoke_test_staging"
    assert f"[staging smoke test log]({smoke_log})" in body
    assert "Could not read" not in body

    [requested] = [a for a in _alerts(stack, run_id) if a["event"] == "approval_requested"]
    assert requested["title"] == question["subject"]
    assert requested["details"]["production_version"] == v1
    assert requested["details"]["delta_auc_ci95"] == report["delta_auc_ci95"]
    assert requested["details"]["approvers"] == ["alice"]
    assert requested["links"]["staging smoke test log"] == smoke_log
    # The link opens the smoke test's log in this very run.
    log = stack["client"].get(
        f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/smoke_test_staging/logs/1",
        headers={"Accept": "application/json"},
    )
    assert log.status_code == 200 and log.json()["content"], log.text[:500]


def test_reject_leaves_production_untouched_and_the_run_failed(stack, versions, rejected):
    v1, v2 = versions["v1"], versions["v2"]
    assert rejected["answered"].status_code == 200, rejected["answered"].text
    assert rejected["state"] == "failed", rejected["tasks"]
    tasks = rejected["tasks"]
    assert tasks["smoke_test_staging"] == "success" and tasks["approve_production"] == "failed"
    for task in ("roll_out_production", "wait_for_production", "record_deployment"):
        assert tasks[task] == "upstream_failed", tasks
    assert tasks["roll_back_production"] == "skipped"  # nothing to roll back: never changed
    assert tasks["roll_back_staging"] == "skipped"  # staging keeps the candidate
    assert (_alias(stack, "production"), _alias(stack, "staging")) == (v1, v2)
    assert (_serving(stack, "production"), _serving(stack, "staging")) == (v1, v2)
    alerts = _alerts(stack, rejected["run_id"])
    assert [a["event"] for a in alerts] == ["approval_requested", "approval_rejected"]
    rejection = alerts[1]
    assert rejection["details"]["rejected_by"] == {"id": "alice", "name": "alice"}
    assert rejection["details"]["production_version"] == v1
    assert f"production keeps version {v1}, staging keeps {v2}" in rejection["summary"]


def test_no_answer_within_the_timeout_fails_the_run_with_its_alert(stack, versions, timed_out):
    assert timed_out["state"] == "failed", timed_out["tasks"]
    tasks = timed_out["tasks"]
    assert tasks["approve_production"] == "failed"
    assert tasks["roll_out_production"] == "upstream_failed"
    assert tasks["roll_back_production"] == "skipped"
    assert timed_out["waited"] >= 30  # it waited out the 45 s response timeout
    assert _alias(stack, "production") == versions["v1"]
    assert _serving(stack, "production") == versions["v1"]
    alerts = _alerts(stack, timed_out["run_id"])
    assert [a["event"] for a in alerts] == ["approval_requested", "approval_timed_out"]
    timeout = alerts[1]
    assert timeout["severity"] == "warning"
    assert timeout["details"] | {"try_number": None, "logical_date": None} == {
        "version": versions["v2"],
        "production_version": versions["v1"],
        "timeout_hours": TIMEOUT_HOURS,
        "approvers": ["alice"],
        "try_number": None,
        "logical_date": None,
    }
    # The scheduler ended the wait: the task's log says why it failed.
    log = (
        Path(stack["env"]["AIRFLOW_HOME"])
        / "logs"
        / f"dag_id={DAG}"
        / f"run_id={timed_out['run_id']}"
        / "task_id=approve_production"
    )
    text = "\n".join(p.read_text() for p in log.rglob("*.log"))
    assert "HITLTimeoutError" in text, text[-2000:]
