"""Ctrl-C on ``make up``: a real ``up`` process, a real serving API as the deployment DAG starts
it, and SIGINT sent the way a terminal sends it (to the foreground process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from support import free_port

pytestmark = pytest.mark.integration


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, process group, start time) of every process (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z":  # a zombie has exited: only its parent's bookkeeping is left
            found[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[19])
    return found


def _descendants(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of every process below ``root``: the start time tells a reused pid."""
    table, below, grew = _processes(), {root}, True
    while grew:
        more = {pid for pid, (parent, _, _) in table.items() if parent in below} - below
        below |= more
        grew = bool(more)
    return {(pid, table[pid][2]) for pid in below - {root}}


def _reader(stream, lines: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    thread.start()
    return thread


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_ctrl_c_on_up_stops_every_component_and_the_serving_apis(tmp_path):
    state, api = tmp_path / "state", free_port()
    staging = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ATTRITION_"))}
    env |= {
        "ATTRITION_STATE_DIR": str(state),
        "AIRFLOW__API__PORT": str(api),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api}/execution/",
        "ATTRITION_MLFLOW_UI_PORT": str(free_port()),
        "ATTRITION_LOCAL_SERVING_STAGING_PORT": str(staging),
        "ATTRITION_LOCAL_SERVING_PRODUCTION_PORT": str(free_port()),
        "ATTRITION_LOCAL_SERVING_GRACEFUL_SHUTDOWN_S": "2",
    }
    # The staging API as a deployment task starts it: the backend's own call, from a process
    # that then exits (as the task does), recording the pid under the state folder.
    start = (
        "from attrition_mlops.deploy.rollout import LocalBackend;"
        "from attrition_mlops.settings import get_settings;"
        "print(LocalBackend(get_settings()).ensure_server('staging'))"
    )
    started = subprocess.run(
        [sys.executable, "-c", start], env=env, capture_output=True, text=True, check=True
    )
    server = int(started.stdout.split()[-1])

    def live() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{staging}/health/live", timeout=2).is_success
        except httpx.HTTPError:
            return False

    up = subprocess.Popen(
        [sys.executable, "-m", "attrition_mlops.orchestration.local_airflow", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, which the "terminal" below signals
    )
    out: list[str] = []
    err: list[str] = []
    readers = [_reader(up.stdout, out), _reader(up.stderr, err)]
    try:
        _wait_for(lambda: any("Ctrl-C stops everything" in line for line in out), 300, "no banner")
        _wait_for(live, 180, "the staging API did not come up")
        time.sleep(3)  # the components are past their first imports
        below = _descendants(up.pid)
        assert len(below) >= 5, below  # api-server, scheduler, dag-processor, triggerer, MLflow UI
        os.killpg(up.pid, signal.SIGINT)
        time.sleep(1)
        os.killpg(up.pid, signal.SIGINT)  # an impatient second Ctrl-C during the shutdown
        code = up.wait(timeout=240)
        for reader in readers:
            reader.join(10)
        printed = "".join(out) + "".join(err)
        assert "Traceback" not in printed and "KeyboardInterrupt" not in printed, printed
        alive = {(pid, start) for pid, (_, _, start) in _processes().items()}
        assert not below & alive, below & alive  # every component and each of its children
        assert server not in _processes() and not live(), "the staging API keeps running"
        assert not (state / "serving" / "staging.pid").exists()
        assert "SIGINT: stopping the stack" in printed
        assert "stopped: api-server, scheduler, dag-processor, triggerer, mlflow-ui" in printed
        assert f"stopped the serving APIs: staging (http://127.0.0.1:{staging})" in printed
        assert code == 130  # 128 + SIGINT, as shells report a Ctrl-C; docs/orchestration.md
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        if server in _processes():  # a failure left the API running
            os.kill(server, signal.SIGKILL)
