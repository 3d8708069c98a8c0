"""Start-up against an MLflow registry that cannot be reached (issue 11, defect 6).

The production command (``uvicorn --factory ...``) runs as a real process, pointed at
``http://127.0.0.1:<port>`` where either nothing listens (connection refused) or a socket
accepts connections and never answers (a blackhole: every request waits for its timeout).
The API must come up live and not ready, log one clear error naming the URI, keep retrying in
the background, and exit promptly on SIGTERM at any time, also while a request to the silent
server is still waiting. The time bounds here are hang detectors, not performance figures:
before the fix, start-up blocked in MLflow's retries for minutes and ignored SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from serving_support import TEST_PSEUDONYM_KEY
from support import free_port

from attrition_mlops.data.example import EXAMPLE_REQUEST

pytestmark = pytest.mark.integration

START_BOUND = 180  # s: importing the app takes 5-30 s on a busy 2-core machine
EXIT_BOUND = 30  # s: SIGTERM to exit (graceful shutdown included)


class Blackhole:
    """A loopback socket that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.connected = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed at the end of the test
            while True:
                connection, _ = self._sock.accept()
                self._held.append(connection)
                self.connected.set()

    def close(self) -> None:
        self._sock.close()
        for connection in self._held:
            connection.close()


@dataclass
class Started:
    process: subprocess.Popen
    base_url: str
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def wait_for(self, condition, what: str, bound: float = START_BOUND) -> None:
        deadline = time.monotonic() + bound
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"server exited before {what}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {bound} s:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def status(self, path: str) -> int | None:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(self.base_url + path, timeout=2).status_code
        return None

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(EXIT_BOUND)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {EXIT_BOUND} s after SIGTERM:\n{self.log()[-3000:]}"
            ) from None


@contextlib.contextmanager
def start_server(tmp_path: Path, tracking_uri: str, **env: str) -> Iterator[Started]:
    """The production command, serving the registry alias of ``tracking_uri`` (no model dir)."""
    port = free_port()
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("ATTRITION_", "MLFLOW_"))
    }
    environment |= {
        "ATTRITION_TRACKING_URI": tracking_uri,
        "ATTRITION_STATE_DIR": str(tmp_path / "state"),
        "ATTRITION_TARGET": "local",
        "ATTRITION_SERVING_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "ATTRITION_SERVING_LOG_EXPORT_DIR": str(tmp_path / "export"),
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "attrition_mlops.serving.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    stderr = tmp_path / "server.stderr"
    with open(stderr, "wb") as err:
        process = subprocess.Popen(
            command, env=environment, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        yield Started(process, f"http://127.0.0.1:{port}", stderr)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def _assert_shut_down_cleanly(server: Started) -> None:
    returncode = server.terminate()
    assert returncode in (0, -signal.SIGTERM), server.log()[-3000:]
    assert "Application shutdown complete" in server.log()


@pytest.mark.parametrize("kind", ["refused", "blackhole"])
def test_unreachable_registry_starts_live_not_ready_with_a_clear_error(tmp_path, blackhole, kind):
    port = free_port() if kind == "refused" else blackhole.port  # free_port: nothing listens
    uri = f"http://127.0.0.1:{port}"
    # the blackhole case also shows the waits are the operator's to set: 1 s, 1 retry
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "1", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
    with start_server(tmp_path, uri, **(env if kind == "blackhole" else {})) as server:
        server.wait_for(lambda: server.status("/health/live") == 200, "live API")
        assert server.status("/health/ready") == 503
        assert server.status("/predict") == 405  # routes are there; /predict answers 503
        expected = f"cannot reach the MLflow tracking server at {uri}: "
        server.wait_for(lambda: expected in server.log(), "error naming the URI")
        line = next(line for line in server.log().splitlines() if expected in line)
        reason = "connection refused (3 attempts)" if kind == "refused" else "no answer within 1 s"
        assert line.startswith("ERROR:") and reason in line, line
        assert "ATTRITION_TRACKING_URI" in line and "not ready; checking again every" in line
        assert "Traceback" not in server.log()
        response = httpx.post(f"{server.base_url}/predict", json=EXAMPLE_REQUEST, timeout=10)
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        _assert_shut_down_cleanly(server)
    assert server.log().count(expected) == 1  # retried every 5 s, reported once


def test_sigterm_while_start_up_waits_on_a_silent_registry_exits_promptly(tmp_path, blackhole):
    """Project defaults: one request to the blackhole waits 15 s, three attempts in all."""
    with start_server(tmp_path, f"http://127.0.0.1:{blackhole.port}") as server:
        server.wait_for(blackhole.connected.is_set, "request to the registry")
        _assert_shut_down_cleanly(server)
        assert "cannot reach" not in server.log()  # SIGTERM came while the request waited
