"""The ``azure`` target's Databricks path in real Airflow: api-server, scheduler, dag-processor,
LocalExecutor workers and the triggerer (started as ``make up`` starts them), the deferrable
``DatabricksSubmitRunOperator`` behind our job operator, and a loopback Databricks workspace
(tests/runner/databricks_workspace.py, its own process) that runs the submitted ``jobs/*.py``
as local processes against this test's MLflow store.

Three runs of ``attrition_training``, each a module-scoped fixture:

- ``trained``: the whole DAG on ``azure``. The first try of ``train_challenger`` fails after
  submitting (the workspace answers ``runs/get`` with 503s while the run is held pending); its
  retry submits the same idempotency token and waits for that same run; the triggerer is
  restarted while it waits;
- ``refused``: a snapshot with out-of-range ages: ``validate_snapshot``'s log carries the job's
  own message;
- ``cancelled``: ``validate_snapshot`` is marked failed while deferred: the run is cancelled.
"""

from __future__ import annotations

import csv
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
from attrition_mlops.orchestration import local_airflow
from attrition_mlops.runner.databricks import idempotency_token
from attrition_mlops.settings import DatabricksSettings

pytestmark = pytest.mark.integration
DAG = "attrition_training"
WORKSPACE = REPO / "tests" / "runner" / "databricks_workspace.py"
TOKEN = "dapi-loopback-test-token"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("databricks") / "state"
    state.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ATTRITION_"))}
    workspace = _start_workspace(state, base)
    port = free_port()
    connection = {
        "conn_type": "databricks",
        "host": "127.0.0.1",
        "port": workspace["port"],
        "schema": "http",  # the provider's URL scheme comes from the connection (https default)
        "password": TOKEN,
    }
    env = local_airflow.airflow_env(
        state,
        base=base
        | {
            "ATTRITION_TARGET": "azure",
            "ATTRITION_STATE_DIR": str(state),
            "ATTRITION_WORKFLOW_N_TRIALS": "2",
            "ATTRITION_DATABRICKS_POLLING_PERIOD_SECONDS": "5",
            "ATTRITION_WORKFLOW_RETRY_DELAY_SECONDS": "5",  # the retry tests wait for retries
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps(connection),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            # Only attrition_training runs, and only when this test asks: the other DAGs stay
            # paused, and no cron run is made for the Monday 03:00 slot.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        },
    )
    procs = local_airflow.start_stack(env, with_mlflow=False)
    try:
        client = _client(f"http://127.0.0.1:{port}", procs, env)
        assert client.patch(f"/dags/{DAG}", json={"is_paused": False}).status_code == 200
        yield {"client": client, "env": env, "procs": procs, "state": state, **workspace}
    finally:
        local_airflow.stop_stack(procs)
        os.killpg(workspace["proc"].pid, signal.SIGTERM)
        workspace["proc"].wait(30)


def _start_workspace(state: Path, base: dict[str, str]) -> dict:
    """The workspace process: ``jobs/`` imported at the settings' jobs_path, the job cluster's
    environment pointing the jobs at this test's state folder (and so its MLflow store)."""
    port = free_port()
    cluster_env = {"ATTRITION_STATE_DIR": str(state)}
    cmd = [sys.executable, str(WORKSPACE), "--port", str(port), "--token", TOKEN]
    cmd += ["--files", f"{DatabricksSettings().jobs_path}={REPO / 'jobs'}"]
    cmd += ["--env-json", json.dumps(cluster_env), "--pending-seconds", "1"]
    log = open(state.parent / "workspace.log", "wb")  # noqa: SIM115 (the process keeps it)
    proc = subprocess.Popen(
        cmd, env=base, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: _reachable(url) or proc.poll() is not None, 60, "the workspace to listen")
    assert proc.poll() is None, (state.parent / "workspace.log").read_text()
    return {"proc": proc, "port": port, "workspace": url}


def _reachable(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_test/summary", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _client(url: str, procs, env) -> httpx.Client:
    def ready():
        dead = [n for n, p in procs.items() if p.poll() is not None]
        assert not dead, f"{dead} exited: see {env['AIRFLOW_HOME']}/logs"
        try:
            token = httpx.get(f"{url}/auth/token", timeout=5).json()["access_token"]
            client = httpx.Client(
                base_url=f"{url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            if client.get(f"/dags/{DAG}").status_code == 200:
                return client
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        return None

    return _wait(ready, 300, f"the stack to serve {DAG}")


def _wait(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


# -- the workspace's and Airflow's views -----------------------------------------------------------
def _summary(stack) -> dict:
    return httpx.get(f"{stack['workspace']}/_test/summary", timeout=10).json()


def _control(stack, what: str, **body) -> None:
    httpx.post(f"{stack['workspace']}/_test/{what}", json=body, timeout=10).raise_for_status()


def _submits(stack, token: str) -> list[dict]:
    calls = _summary(stack)["calls"]
    return [
        c
        for c in calls
        if c["endpoint"] == "runs/submit" and c["body"].get("idempotency_token") == token
    ]


def _runs(stack, token: str) -> list[dict]:
    return [r for r in _summary(stack)["runs"] if r["token"] == token]


def _trigger_polls(stack, token: str) -> list[dict]:
    """``runs/get`` calls the triggerer made for the run of ``token``."""
    run_ids = {str(r["run_id"]) for r in _runs(stack, token)}
    return [
        c
        for c in _summary(stack)["calls"]
        if c["endpoint"] == "runs/get"
        and "DatabricksExecutionTrigger" in c["agent"]
        and str(c["body"].get("run_id")) in run_ids
    ]


def _trigger(stack, conf: dict) -> str:
    run = stack["client"].post(f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
    assert run.status_code == 200, run.text
    return run.json()["dag_run_id"]


def _run_url(run_id: str) -> str:
    return f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}"


def _tasks(stack, run_id: str) -> dict[str, dict]:
    found = stack["client"].get(f"{_run_url(run_id)}/taskInstances").json()["task_instances"]
    return {t["task_id"]: t for t in found}


def _task_state(stack, run_id: str, task_id: str) -> str | None:
    return _tasks(stack, run_id)[task_id]["state"]


def _finished(stack, run_id: str, timeout: float = 1500) -> str:
    def done():
        state = stack["client"].get(_run_url(run_id)).json()["state"]
        return state if state in ("success", "failed") else None

    return _wait(done, timeout, f"DAG run {run_id}", every=3)


def _log(stack, run_id: str, task_id: str, try_number: int) -> str:
    url = f"{_run_url(run_id)}/taskInstances/{task_id}/logs/{try_number}"
    got = stack["client"].get(url, headers={"Accept": "application/json"})
    assert got.status_code == 200, got.text
    # The whole of each line: an exception's message is in its ``error_detail``, not ``event``.
    return "\n".join(json.dumps(e) for e in got.json()["content"])


def _token(run_id: str, task_id: str) -> str:
    return idempotency_token(DAG, task_id, run_id)


def _restart_triggerer(stack) -> None:
    old = stack["procs"]["triggerer"]
    os.killpg(old.pid, signal.SIGTERM)
    old.wait(60)
    log = open(Path(stack["env"]["AIRFLOW_HOME"]) / "logs" / "triggerer.log", "ab")  # noqa: SIM115
    stack["procs"]["triggerer"] = subprocess.Popen(
        [local_airflow._airflow(), "triggerer"],
        env=stack["env"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


# -- the three DAG runs ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(stack):
    # The cluster takes its time: the train run stays PENDING until released. Meanwhile the
    # worker's first try fails after submitting (runs/get answers 503 three times, the hook's
    # retry limit), so the retry finds the first run still active.
    _control(stack, "hold", task_key="train")
    _control(stack, "fault", endpoint="runs/get", task_key="train", status=503, times=3)
    run_id = _trigger(stack, {})
    token = _token(run_id, "train_challenger")
    try:
        _wait(lambda: len(_submits(stack, token)) >= 2, 900, "the retry's submit", every=2)
        _wait(
            lambda: _task_state(stack, run_id, "train_challenger") == "deferred",
            300,
            "the retry to defer",
        )
        polls_before = len(_summary(stack)["calls"])
        _restart_triggerer(stack)  # the wait lives in the metadata DB, not in a process
    finally:
        _control(stack, "release", task_key="train")
    state = _finished(stack, run_id)
    return {"run_id": run_id, "state": state, "token": token, "restart_at": polls_before}


@pytest.fixture(scope="module")
def refused(stack, snapshot):
    bad = stack["state"].parent / "ages-out-of-range.csv"
    rows = snapshot.frame.copy()
    rows.loc[rows.index[:3], "Age"] = 500
    rows.to_csv(bad, index=False, quoting=csv.QUOTE_MINIMAL)
    run_id = _trigger(stack, {"snapshot": str(bad)})
    _wait(
        lambda: _task_state(stack, run_id, "validate_snapshot") in ("up_for_retry", "failed"),
        600,
        "validate_snapshot to fail",
        every=2,
    )
    log = _log(stack, run_id, "validate_snapshot", 1)
    # Its retries would fetch the same failed run (same token): stop here.
    stack["client"].patch(_run_url(run_id), json={"state": "failed"})
    _finished(stack, run_id)
    return {"run_id": run_id, "log": log}


@pytest.fixture(scope="module")
def cancelled(stack):
    _control(stack, "hold", task_key="validate_data")
    try:
        run_id = _trigger(stack, {})
        token = _token(run_id, "validate_snapshot")
        _wait(
            lambda: _task_state(stack, run_id, "validate_snapshot") == "deferred",
            600,
            "validate_snapshot to defer",
            every=2,
        )
        # Airflow calls the trigger's on_kill only once a triggerer runs it: wait for its poll.
        _wait(lambda: _trigger_polls(stack, token), 300, "the triggerer to poll the run")
        marked = stack["client"].patch(
            f"{_run_url(run_id)}/taskInstances/validate_snapshot", json={"new_state": "failed"}
        )
        assert marked.status_code == 200, marked.text
        _wait(
            lambda: [r["state"].get("result_state") for r in _runs(stack, token)] == ["CANCELED"],
            120,
            "the run to be cancelled",
        )
    finally:
        _control(stack, "release", task_key="validate_data")
    state = _finished(stack, run_id)
    # An engineer clears the task to run it again (a new try): it must run the job again.
    cleared = stack["client"].post(
        f"/dags/{DAG}/clearTaskInstances",
        json={"dry_run": False, "dag_run_id": run_id, "task_ids": ["validate_snapshot"]},
    )
    assert cleared.status_code == 200, cleared.text
    _wait(
        lambda: (
            _task_state(stack, run_id, "validate_snapshot") in ("success", "up_for_retry", "failed")
        ),
        600,
        "the cleared validate_snapshot to end",
        every=2,
    )
    return {"run_id": run_id, "token": token, "state": state}


# -- the checks ------------------------------------------------------------------------------
def test_the_training_dag_runs_its_jobs_on_databricks_through_the_triggerer(stack, trained):
    tasks = _tasks(stack, trained["run_id"])
    states = {k: v["state"] for k, v in tasks.items()}
    assert trained["state"] == "success", states
    assert states == dict.fromkeys(
        ["plan_training", "validate_snapshot", "train_challenger", "evaluate_challenger"],
        "success",
    ) | {"promote_champion": "success"}
    runs = {
        r["task_key"]: r
        for r in _summary(stack)["runs"]
        if r["token"]
        in {
            _token(trained["run_id"], t)
            for t in ("validate_snapshot", "train_challenger", "evaluate_challenger")
        }
    }
    assert set(runs) == {"validate_data", "train", "evaluate"}
    for run in runs.values():  # each job ran as a process, through Databricks' life cycle
        assert run["history"] == ["PENDING", "RUNNING", "TERMINATED"], run
        assert run["state"]["result_state"] == "SUCCESS" and run["pid"]
    # The triggerer, not a worker, followed the runs: its hook names its caller.
    polled = {
        c["body"]["run_id"]
        for c in _summary(stack)["calls"]
        if c["endpoint"] == "runs/get" and "DatabricksExecutionTrigger" in c["agent"]
    }
    assert {str(r["run_id"]) for r in runs.values()} <= {str(p) for p in polled}
    # The result was parsed from the run's output: the version train registered is the
    # champion the gate promoted, in this test's MLflow store.
    version = (
        stack["client"]
        .get(
            f"{_run_url(trained['run_id'])}/taskInstances/train_challenger/xcomEntries/return_value"
        )
        .json()["value"]
    )
    uri = f"sqlite:///{stack['state'].resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    champion = registry.get_alias_version("employee_attrition", "champion")
    assert f"'version': '{champion}'" in str(version) or f'"version": "{champion}"' in str(version)


def test_a_retried_task_waits_for_the_first_run_instead_of_submitting_another(stack, trained):
    tasks = _tasks(stack, trained["run_id"])
    assert tasks["train_challenger"]["try_number"] == 2
    # Try 1 submitted; try 2 submitted the same token twice (checking the earlier try's run,
    # then through the provider's operator): each time the workspace answered with one run.
    assert len(_submits(stack, trained["token"])) == 3
    [run] = _runs(stack, trained["token"])  # and the workspace started one run
    assert run["state"]["result_state"] == "SUCCESS"
    first = _log(stack, trained["run_id"], "train_challenger", 1)
    assert "API requests to Databricks failed 3 times" in first


def test_the_wait_survives_a_triggerer_restart(stack, trained):
    [run] = _runs(stack, trained["token"])
    after = _summary(stack)["calls"][trained["restart_at"] :]
    polls = [
        c
        for c in after
        if c["endpoint"] == "runs/get"
        and "DatabricksExecutionTrigger" in c["agent"]
        and str(c["body"].get("run_id")) == str(run["run_id"])
    ]
    assert polls, "the restarted triggerer never polled the run"
    resubmitted = [c for c in after if c["body"].get("idempotency_token") == trained["token"]]
    assert not resubmitted  # the wait resumed; nothing was submitted again


def test_a_failing_job_puts_its_own_message_in_the_task_log(refused):
    assert "data validation failed" in refused["log"]
    assert "Age: 3 rows outside [18, 100]" in refused["log"]


def test_marking_a_deferred_task_failed_cancels_its_databricks_run(stack, cancelled):
    assert cancelled["state"] == "failed"
    [run] = _runs(stack, cancelled["token"])
    cancels = [
        c
        for c in _summary(stack)["calls"]
        if c["endpoint"] == "runs/cancel" and str(c["body"]["run_id"]) == str(run["run_id"])
    ]
    assert cancels and "DatabricksExecutionTrigger" in cancels[0]["agent"]  # the trigger's on_kill
    assert run["history"] == ["PENDING", "TERMINATED"] and run["pid"] is None  # never started
    assert _task_state(stack, cancelled["run_id"], "train_challenger") == "upstream_failed"


def test_a_cleared_task_runs_its_job_again_after_a_cancelled_run(stack, cancelled):
    """Regression: every try submitted one token, so a retry or a clear got the cancelled (or
    failed) run back and failed at once; the job could never run again in that DAG run."""
    validate = _tasks(stack, cancelled["run_id"])["validate_snapshot"]
    assert (validate["state"], validate["try_number"]) == ("success", 2)
    name = f"{DAG}.validate_snapshot {cancelled['run_id']}"
    runs = [r for r in _summary(stack)["runs"] if r["run_name"] == name]
    assert [r["state"].get("result_state") for r in runs] == ["CANCELED", "SUCCESS"]
    assert runs[0]["token"] == cancelled["token"] != runs[1]["token"]
