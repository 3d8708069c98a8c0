"""Helpers for the serving tests: model directories, settings, servers in threads and processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import mlflow.pyfunc
import uvicorn
from support import free_port

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import Snapshot
from attrition_mlops.model.predictor import AttritionPredictor, AttritionPyfunc, write_artifacts
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.serving.settings import ServingSettings
from attrition_mlops.serving.sources import NoModelAvailableError
from attrition_mlops.settings import PipelineSettings

MODEL_NAME = "employee_attrition"
TEST_PSEUDONYM_KEY = "serving-tests-pseudonym-key-0123456789"


def labels(snapshot: Snapshot):
    return (snapshot.frame[contract.LABEL] == contract.POSITIVE_LABEL).to_numpy(dtype=int)


def inputs(snapshot: Snapshot):
    return snapshot.frame[list(contract.INPUT_COLUMNS)]


def save_model_dir(path: Path, predictor: AttritionPredictor, snapshot: Snapshot, card: dict):
    """An MLflow pyfunc model directory, as the image build downloads it, plus its card."""
    profile = build_reference_profile(inputs(snapshot), source_sha256=snapshot.sha256)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = write_artifacts(Path(tmp), predictor, profile)
        mlflow.pyfunc.save_model(
            str(path), python_model=AttritionPyfunc(), artifacts=artifacts, pip_requirements=[]
        )
    (path / "model_card.json").write_text(json.dumps(card))
    return path


def serving_settings(tmp: Path, **overrides) -> ServingSettings:
    base = {
        "poll_seconds": 0,
        "max_records": 50,
        "max_body_bytes": 64 * 1024,
        "log_stdout": False,
        "log_export": True,
        "log_export_dir": tmp / "inference-logs",
        "log_flush_seconds": 0.2,
        "pseudonym_key": TEST_PSEUDONYM_KEY,
    }
    return ServingSettings(**(base | overrides))


def pipeline_settings(tmp: Path) -> PipelineSettings:
    return PipelineSettings(state_dir=tmp / "state", target="local")


@dataclass
class Served:
    base_url: str
    app: object
    export_dir: Path | None

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)

    def wait_ready(self, timeout: float = 60) -> None:
        """A registry source loads in the background: wait until /health/ready says 200."""
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.base_url}/health/ready", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.base_url} not ready after {timeout} s")
            time.sleep(0.05)


@contextlib.contextmanager
def serve_in_thread(app, export_dir: Path | None = None) -> Iterator[Served]:
    """uvicorn on a free loopback port in a thread; stopped (lifespan exit included) after."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", app, export_dir)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@dataclass
class ServerProcess:
    process: subprocess.Popen
    base_url: str
    stdout: Path
    stderr: Path

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.stderr.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"server not ready:\n{self.stderr.read_text()[-3000:]}")

    def terminate(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@contextlib.contextmanager
def serve_in_subprocess(env: dict[str, str], workdir: Path) -> Iterator[ServerProcess]:
    """The production launcher as a child process on a free loopback port."""
    port = free_port()
    stdout, stderr = workdir / "server.stdout", workdir / "server.stderr"
    command = [
        sys.executable,
        "-m",
        "attrition_mlops.serving.server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=err, cwd=workdir
        )
    handle = ServerProcess(process, f"http://127.0.0.1:{port}", stdout, stderr)
    try:
        handle.wait_ready()
        yield handle
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


class NothingDeployed:
    description = "an empty registry"

    def current_version(self):
        return None

    def load(self):
        raise NoModelAvailableError("nothing deployed")


@dataclass
class Outcome:
    status: int | None  # None: no HTTP response (connection refused or closed)
    request_id: str | None = None
    version: str | None = None
    error: str | None = None
    at: float = field(default_factory=time.monotonic)  # when the outcome was known


@dataclass
class LoadGenerator:
    """Threads posting ``batch`` to /predict in a loop, recording every outcome in order."""

    base_url: str
    batch: list[dict]
    threads: int = 4
    stop_after_failures: int = 3  # consecutive connection failures: the server is gone
    outcomes: list[list[Outcome]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> LoadGenerator:
        self.outcomes = [[] for _ in range(self.threads)]
        for i in range(self.threads):
            worker = threading.Thread(target=self._run, args=(self.outcomes[i],), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _run(self, outcomes: list[Outcome]) -> None:
        failures = 0
        with httpx.Client(base_url=self.base_url, timeout=60) as http:
            while not self._stop.is_set() and failures < self.stop_after_failures:
                try:
                    response = http.post("/predict", json=self.batch)
                except httpx.TransportError as err:
                    failures += 1
                    outcomes.append(Outcome(None, error=type(err).__name__))
                    time.sleep(0.05)
                    continue
                failures = 0
                body = response.json() if response.status_code == 200 else {}
                outcomes.append(
                    Outcome(response.status_code, body.get("request_id"), body.get("model_version"))
                )

    def ok(self) -> list[Outcome]:
        return [o for thread in self.outcomes for o in thread if o.status == 200]

    def wait_for(self, predicate, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"load condition not reached; {self.summary()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 60) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout)

    def join(self, timeout: float = 60) -> None:
        """Wait for the workers to stop by themselves (after the server went away)."""
        for worker in self._workers:
            worker.join(timeout)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for thread in self.outcomes:
            for o in thread:
                key = str(o.status) if o.status is not None else f"no-response:{o.error}"
                counts[key] = counts.get(key, 0) + 1
        return counts
