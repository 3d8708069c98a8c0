"""An unreachable MLflow tracking server: bounded waits and one clear error (issue 11, defect 6).

``attrition status`` and a job run as real processes against ``http://127.0.0.1:<port>`` where
nothing listens. Both must fail in bounded time (the bound is a hang detector: MLflow's own
defaults retried for about four minutes) with exit code 2 and a message naming the URI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from support import REPO

from attrition_mlops.registry.connection import HTTP_DEFAULTS, bound_http_requests, display_uri

HANG_BOUND = 120  # s, including the imports on a busy machine
JOBS = REPO / "jobs"


def _closed_port_uri() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed when this returns


def _run(args: list[str], tmp_path, uri: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTRITION_", "MLFLOW_"))}
    env |= {"ATTRITION_TRACKING_URI": uri, "ATTRITION_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_BOUND,
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    "args",
    [["-m", "attrition_mlops.cli", "status"], [str(JOBS / "evaluate.py")]],
    ids=["attrition-status", "evaluate-job"],
)
def test_unreachable_tracking_server_fails_fast_with_a_clear_message(tmp_path, args):
    uri = _closed_port_uri()
    done = _run(args, tmp_path, uri)
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"cannot reach the MLflow tracking server at {uri}: connection refused" in done.stderr
    assert "ATTRITION_TRACKING_URI" in done.stderr and "Traceback" not in done.stderr


def test_project_defaults_apply_only_where_the_environment_is_silent(monkeypatch):
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    values = bound_http_requests()
    assert values["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"  # the operator's value wins
    assert (
        values["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        == HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    )
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"


def test_messages_never_show_credentials_in_the_uri():
    assert display_uri("https://alice:s3cret@mlflow.example:5000/x") == (
        "https://***@mlflow.example:5000/x"
    )
    assert display_uri("databricks") == "databricks"
