"""The azure target's Databricks payload, checked against the official databricks-sdk: the SDK
must serialise our submit-run body to exactly the same JSON, over real HTTP to a loopback
endpoint standing in for the workspace (the one edge this machine cannot reach)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.jobs import SubmitTask

from attrition_mlops.runner.databricks import (
    JobOutputError,
    idempotency_token,
    result_from_run_output,
    reuse_run,
    submit_payload,
    task_run_id,
)
from attrition_mlops.settings import DatabricksSettings


@pytest.fixture
def workspace():
    """A loopback HTTP endpoint that records request bodies and answers runs/submit."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, body))
            answer = json.dumps({"run_id": 4242}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def _payload(**settings) -> dict:
    return submit_payload(
        "train",
        ["--run-key", "attrition_training__manual_1", "--n-trials", "8"],
        token=idempotency_token("attrition_training", "train_challenger", "manual_1"),
        run_name="attrition_training.train_challenger manual_1",
        settings=DatabricksSettings(**settings),
    )


@pytest.mark.parametrize("cluster", [{}, {"existing_cluster_id": "0101-abc"}], ids=["new", "old"])
def test_the_sdk_sends_exactly_our_payload(workspace, cluster):
    url, received = workspace
    payload = _payload(**cluster)
    # Each task round-trips through the SDK's model unchanged: no unknown or mistyped field.
    tasks = [SubmitTask.from_dict(task) for task in payload["tasks"]]
    assert [task.as_dict() for task in tasks] == payload["tasks"]
    client = WorkspaceClient(host=url, token="not-a-real-token", auth_type="pat")
    top = {k: v for k, v in payload.items() if k != "tasks"}
    client.jobs.submit(tasks=tasks, **top)
    assert len(received) == 1
    path, body = received[0]
    assert path.endswith("/jobs/runs/submit")
    assert body == payload


def test_the_payload_runs_the_same_entrypoint_file_and_installs_the_wheel():
    task = _payload()["tasks"][0]
    assert task["spark_python_task"]["python_file"].endswith("/jobs/train.py")
    assert task["spark_python_task"]["parameters"][:2] == [
        "--run-key",
        "attrition_training__manual_1",
    ]
    assert task["libraries"] == [{"whl": DatabricksSettings().wheel}]
    assert task["new_cluster"]["spark_env_vars"]["ATTRITION_TARGET"] == "azure"


def test_only_the_performance_job_gets_the_pseudonym_key_as_a_secret_reference():
    settings = DatabricksSettings(pseudonym_key_secret="attrition/pseudonym-key")
    payload = submit_payload(
        "performance", ["--as-of", "2026-03-05"], token="t", run_name="r", settings=settings
    )
    env = payload["tasks"][0]["new_cluster"]["spark_env_vars"]
    assert env["ATTRITION_SERVING_PSEUDONYM_KEY"] == "{{secrets/attrition/pseudonym-key}}"
    SubmitTask.from_dict(payload["tasks"][0])  # the SDK's model takes it
    train = _payload(pseudonym_key_secret="attrition/pseudonym-key")["tasks"][0]
    assert "ATTRITION_SERVING_PSEUDONYM_KEY" not in train["new_cluster"]["spark_env_vars"]
    assert "ATTRITION_SERVING_PSEUDONYM_KEY" not in json.dumps(_payload())
    with pytest.raises(ValueError):
        DatabricksSettings(pseudonym_key_secret="not a scope and key")


def test_idempotency_token_is_stable_per_task_run_and_fits_the_api():
    token = idempotency_token("d", "t", "run-1")
    assert token == idempotency_token("d", "t", "run-1")  # a retry reuses the run
    others = {
        idempotency_token("d", "t", "run-2"),
        idempotency_token("d", "u", "run-1"),
        idempotency_token("e", "t", "run-1"),
        idempotency_token("d", "t", "run-1", 3),
    }
    assert token not in others and len(others) == 4
    assert len(token) <= 64


def test_a_new_generation_is_a_new_token_and_generation_zero_keeps_the_old_one():
    first = idempotency_token("d", "t", "run-1")
    assert idempotency_token("d", "t", "run-1", -1, 0) == first  # in-flight runs keep theirs
    again = {idempotency_token("d", "t", "run-1", -1, g) for g in (1, 2, 3)}
    assert len(again) == 3 and first not in again
    assert all(len(token) <= 64 for token in again)


@pytest.mark.parametrize(
    ("life_cycle", "result", "reused"),
    [
        ("PENDING", None, True),
        ("QUEUED", None, True),
        ("RUNNING", None, True),
        ("TERMINATING", None, True),
        ("TERMINATED", "SUCCESS", True),
        ("TERMINATED", "FAILED", False),
        ("TERMINATED", "TIMEDOUT", False),
        ("TERMINATED", "CANCELED", False),
        ("INTERNAL_ERROR", "FAILED", False),
        ("SKIPPED", None, False),
    ],
)
def test_a_retry_reuses_an_active_or_successful_run_only(life_cycle, result, reused):
    assert reuse_run(life_cycle, result) is reused


def test_result_is_the_last_json_line_of_the_task_output():
    logs = 'INFO training...\n{"not": "this"}\nsummary line\n{"version": "3", "run_id": "r"}\n'
    assert result_from_run_output({"logs": logs}) == {"version": "3", "run_id": "r"}
    with pytest.raises(JobOutputError, match="truncated"):
        result_from_run_output({"logs": "no json here", "logs_truncated": True})
    assert task_run_id({"run_id": 1, "tasks": [{"run_id": 7}]}) == 7
    with pytest.raises(JobOutputError):
        task_run_id({"run_id": 1, "tasks": []})
