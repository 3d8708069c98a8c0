"""The loopback Databricks workspace (databricks_workspace.py) driven by the locked provider's own
hook and trigger over HTTP: what it accepts and refuses, the life cycle it reports, and the
output, errors and cancellations the operator relies on. The Airflow runs are in
tests/orchestration/test_databricks_airflow.py."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from airflow.providers.databricks.exceptions import DatabricksApiError
from airflow.providers.databricks.hooks.databricks import DatabricksHook
from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger
from airflow.providers.databricks.utils.databricks import (
    extract_failed_task_errors,
    normalise_json_content,
)
from databricks_workspace import Workspace, serve

from attrition_mlops.runner.databricks import (
    idempotency_token,
    result_from_run_output,
    submit_payload,
    task_run_id,
)
from attrition_mlops.settings import DatabricksSettings

pytestmark = pytest.mark.integration  # subprocesses and loopback HTTP
FOLDER = "/Workspace/Shared/attrition-mlops/jobs"

JOBS = {
    "ok": 'import json, sys\nprint("working")\nprint(json.dumps({"args": sys.argv[1:]}))\n',
    "fails": 'import sys\nprint("partial")\nsys.exit("error: column Age: 3 rows out of range")\n',
    "sleeps": "import time\nprint('started', flush=True)\ntime.sleep(120)\n",
}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    for name, code in JOBS.items():
        (tmp_path / f"{name}.py").write_text(code)
    with serve(Workspace({FOLDER: tmp_path}, pending_seconds=0.3)) as ws:
        conn = {
            "conn_type": "databricks",
            "host": "127.0.0.1",
            "port": ws.port,
            "schema": "http",
            "password": ws.token,
        }
        monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", json.dumps(conn))
        yield ws


def _hook() -> DatabricksHook:
    return DatabricksHook("databricks_default", retry_limit=1, retry_delay=0.1)


def _payload(job: str, token: str = "token-1", **changes) -> dict:
    payload = submit_payload(
        job,
        ["--flag", "1"],
        token=token,
        run_name=f"test {job}",
        settings=DatabricksSettings(timeout_seconds=60),
    )
    payload["tasks"][0].update(changes)
    # What the provider's operator sends: every number as a string (normalise_json_content).
    return normalise_json_content(payload)


def _wait(hook: DatabricksHook, run_id: int, timeout: float = 60) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        state = hook.get_run_state(run_id)
        if not seen or seen[-1] != state.life_cycle_state:
            seen.append(state.life_cycle_state)
        if state.is_terminal:
            return seen
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)


def test_our_payload_runs_the_file_and_its_result_is_read_from_the_output(workspace):
    hook = _hook()
    run_id = hook.submit_run(_payload("ok"))
    seen = _wait(hook, run_id)  # what polling saw: a fast job may finish between two polls
    assert (seen[0], seen[-1]) == ("PENDING", "TERMINATED")
    [summary] = workspace.summary()["runs"]
    assert summary["history"] == ["PENDING", "RUNNING", "TERMINATED"]
    run = hook.get_run(run_id)
    assert run["state"]["result_state"] == "SUCCESS" and run["job_id"]
    assert hook.get_run_page_url(run_id).endswith(f"/#job/runs/{run_id}")
    output = hook.get_run_output(task_run_id(run))
    assert result_from_run_output(output) == {"args": ["--flag", "1"]}
    assert output["logs"].startswith("working\n") and "error" not in output
    with pytest.raises(DatabricksApiError, match="multiple tasks is not supported"):
        hook.get_run_output(run_id)  # the parent run's output: the API wants the task's


def test_a_repeated_idempotency_token_returns_the_first_run(workspace):
    hook = _hook()
    first = hook.submit_run(_payload("sleeps", token=idempotency_token("d", "t", "r")))
    assert hook.submit_run(_payload("sleeps", token=idempotency_token("d", "t", "r"))) == first
    other = hook.submit_run(_payload("ok", token=idempotency_token("d", "t", "r2")))
    assert other != first
    assert [r["run_id"] for r in workspace.summary()["runs"]] == [first, other]


def test_a_failed_job_reports_its_own_message(workspace):
    hook = _hook()
    run_id = hook.submit_run(_payload("fails"))
    _wait(hook, run_id)
    run = hook.get_run(run_id)
    state = hook.get_run_state(run_id)
    assert (state.life_cycle_state, state.result_state) == ("TERMINATED", "FAILED")
    output = hook.get_run_output(task_run_id(run))
    assert output["error"] == "error: column Age: 3 rows out of range"
    assert "out of range" in output["error_trace"] and output["logs"] == "partial\n"
    # What the provider puts in the task's failure (and so in the task log).
    [error] = extract_failed_task_errors(hook, run, state)
    assert error["error"] == "error: column Age: 3 rows out of range"


def test_cancel_stops_the_running_process(workspace):
    hook = _hook()
    run_id = hook.submit_run(_payload("sleeps"))
    deadline = time.monotonic() + 30
    while hook.get_run_state(run_id).life_cycle_state != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [run] = workspace.summary()["runs"]
    hook.cancel_run(run_id)
    _wait(hook, run_id)
    state = hook.get_run_state(run_id)
    assert (state.life_cycle_state, state.result_state) == ("TERMINATED", "CANCELED")
    with pytest.raises(ProcessLookupError):
        os.kill(run["pid"], 0)  # the job's process is gone


def test_a_missing_file_is_an_internal_error(workspace):
    hook = _hook()
    task = {"python_file": f"{FOLDER}/missing.py", "parameters": []}
    run_id = hook.submit_run(_payload("ok", spark_python_task=task))
    assert _wait(hook, run_id)[-1] == "INTERNAL_ERROR"
    assert "missing.py: not found" in hook.get_run_state(run_id).state_message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("tasks"), "Missing required field: tasks"),
        (lambda p: p["tasks"][0].pop("task_key"), "tasks[0].task_key"),
        (lambda p: p["tasks"][0].update(notebook_task={}), "exactly one task type"),
        (lambda p: p["tasks"][0]["spark_python_task"].update(parameters=[1]), "parameters[0]"),
        (lambda p: p["tasks"][0]["spark_python_task"].pop("python_file"), "python_file"),
        (lambda p: p["tasks"][0].pop("new_cluster"), "new_cluster, existing_cluster_id"),
        (lambda p: p["tasks"][0]["new_cluster"].pop("spark_version"), "spark_version"),
        (lambda p: p["tasks"][0].update(timeout_seconds="3h"), "expected an integer"),
        (lambda p: p.update(idempotency_token="x" * 65), "longer than 64"),
        (lambda p: p.update(run_nmae="typo"), "Unknown field(s) ['run_nmae']"),
        (lambda p: p["tasks"][0]["new_cluster"].update(num_wrkers=1), "num_wrkers"),
    ],
)
def test_an_invalid_body_is_refused_as_the_api_would(workspace, change, message):
    payload = _payload("ok")
    change(payload)
    with pytest.raises(DatabricksApiError, match="Status Code: 400") as refused:
        _hook().submit_run(payload)
    assert message in str(refused.value)
    assert workspace.summary()["runs"] == []


def test_a_wrong_token_is_refused(workspace, monkeypatch):
    conn = json.loads(os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"]) | {"password": "wrong"}
    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", json.dumps(conn))
    with pytest.raises(DatabricksApiError, match="401"):
        _hook().submit_run(_payload("ok"))


def test_the_providers_trigger_follows_a_run_to_its_end(workspace):
    """The deferrable path: the trigger polls with aiohttp (GET with a JSON body)."""
    run_id = _hook().submit_run(_payload("fails"))
    trigger = DatabricksExecutionTrigger(
        run_id, "databricks_default", polling_period_seconds=0, retry_limit=1, retry_delay=0
    )

    async def first_event():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=60))
    assert json.loads(event["run_state"])["result_state"] == "FAILED"
    assert event["errors"][0]["error"] == "error: column Age: 3 rows out of range"
