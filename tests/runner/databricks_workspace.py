"""A loopback stand-in for a Databricks workspace's Jobs API (test support, never shipped).

It answers the endpoints the locked Databricks provider calls for ``DatabricksSubmitRunOperator``
and its trigger, at the version the provider pins (``/api/2.2/jobs/...``):

- ``runs/submit`` validates the body as the Jobs API does (required fields and their types, one
  task type per task, a cluster per task, no field the SDK's models do not know) and dedupes on
  ``idempotency_token``: a repeated token returns the run the token first created, whatever its
  state;
- ``runs/get`` reports the life cycle Databricks reports: ``PENDING`` (the cluster starting) →
  ``RUNNING`` → ``TERMINATED`` with ``SUCCESS``/``FAILED``/``TIMEDOUT``/``CANCELED``, or
  ``INTERNAL_ERROR`` when the task cannot start (no such file in the workspace);
- ``runs/get-output`` answers for a *task* run only (as the real API does for multi-task runs):
  ``logs`` is the job's stdout, and a failed task has ``error`` (the end of its stderr, where a
  job writes its one clear message; a traceback's last line) and ``error_trace`` (more of it);
- ``runs/cancel`` stops the run (the job's process is terminated).

A ``spark_python_task`` is executed for real: ``python_file`` is looked up in the workspace's
files (a mapping from a workspace folder to a local one, as ``databricks workspace import-dir``
would fill it) and run as a local process with its ``parameters``, the cluster's
``spark_env_vars`` over ``cluster_env``; the interpreter is this one, so the project's package
is "installed" as the ``whl`` library would install it on a cluster.

Test controls live under ``/_test/`` (never part of the Jobs API): every call received, a hold
that keeps matching runs ``PENDING`` (a cluster that takes its time), and injected HTTP faults.
Run it in a thread (:func:`serve`) or as a process (``python databricks_workspace.py --port N
--files /Workspace/x=/local/x --env-json '{...}'``), the way the Airflow integration test does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from databricks.sdk.service import compute, jobs

API = "/api/2.2/jobs/"
TASK_TYPES = {f.name for f in dataclasses.fields(jobs.SubmitTask) if f.name.endswith("_task")}
SUBMIT_FIELDS = set(inspect.signature(jobs.JobsAPI.submit).parameters) - {"self"}
TASK_FIELDS = {f.name for f in dataclasses.fields(jobs.SubmitTask)}
PYTHON_TASK_FIELDS = {f.name for f in dataclasses.fields(jobs.SparkPythonTask)}
CLUSTER_FIELDS = {f.name for f in dataclasses.fields(compute.ClusterSpec)}
LIBRARY_FIELDS = {f.name for f in dataclasses.fields(compute.Library)}
TASK_KEY = re.compile(r"^[\w\-]{1,100}$")
OUTPUT_TAIL = 5 * 1024 * 1024  # the API returns the last 5 MB of a task's logs
TRACE_TAIL = 8 * 1024
ERROR_TAIL = 4 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _int32(value: Any, field: str) -> int:
    """An int32 as the API parses it: a JSON number or its decimal string (the provider sends
    numbers as strings, and the API accepts both)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _invalid(f"Invalid value for {field}: expected an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise _invalid(f"Invalid value for {field}: expected an integer, got {value!r}") from None
    if not -(2**31) <= number < 2**31:
        raise _invalid(f"Invalid value for {field}: {value!r} is out of range")
    return number


def _str(value: Any, field: str, *, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise _invalid(f"Invalid value for {field}: expected a string, got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise _invalid(f"{field} is longer than {max_length} characters")
    return value


def _known(body: dict, allowed: set[str], where: str) -> None:
    if not isinstance(body, dict):
        raise _invalid(f"Invalid value for {where}: expected an object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(f"Unknown field(s) {unknown} in {where}")


def validate_submit(body: Any) -> None:
    """Reject a ``runs/submit`` body the Jobs API would reject (the cases our payload can hit)."""
    _known(body, SUBMIT_FIELDS, "the request")
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise _invalid("Missing required field: tasks")
    for field in ("run_name", "idempotency_token"):
        if field in body:
            _str(body[field], field, max_length=64 if field == "idempotency_token" else 4096)
    if "timeout_seconds" in body:
        _int32(body["timeout_seconds"], "timeout_seconds")
    keys = [_validate_task(task, i) for i, task in enumerate(tasks)]
    if len(set(keys)) != len(keys):
        raise _invalid("task_key must be unique within a run")


def _validate_task(task: Any, i: int) -> str:
    where = f"tasks[{i}]"
    _known(task, TASK_FIELDS, where)
    key = _str(task.get("task_key"), f"{where}.task_key") if "task_key" in task else None
    if key is None:
        raise _invalid(f"Missing required field: {where}.task_key")
    if not TASK_KEY.match(key):
        raise _invalid(f"Invalid task_key {key!r}: letters, digits, '-' and '_' only")
    kinds = TASK_TYPES & set(task)
    if len(kinds) != 1:
        raise _invalid(f"{where} must have exactly one task type, found {sorted(kinds)}")
    if "spark_python_task" in task:
        python = task["spark_python_task"]
        _known(python, PYTHON_TASK_FIELDS, f"{where}.spark_python_task")
        if "python_file" not in python:
            raise _invalid(f"Missing required field: {where}.spark_python_task.python_file")
        path = _str(python["python_file"], f"{where}.spark_python_task.python_file")
        if not path.startswith("/") and "://" not in path:
            raise _invalid(f"{path!r}: a workspace python_file must be an absolute path")
        parameters = python.get("parameters", [])
        if not isinstance(parameters, list):
            raise _invalid(f"Invalid value for {where}.spark_python_task.parameters: a list")
        for j, p in enumerate(parameters):
            _str(p, f"{where}.spark_python_task.parameters[{j}]")
    clusters = {"new_cluster", "existing_cluster_id", "job_cluster_key", "environment_key"}
    if not clusters & set(task):
        raise _invalid(f"{where}: one of new_cluster, existing_cluster_id is required")
    if "new_cluster" in task:
        cluster = task["new_cluster"]
        _known(cluster, CLUSTER_FIELDS, f"{where}.new_cluster")
        if "spark_version" not in cluster:
            raise _invalid(f"Missing required field: {where}.new_cluster.spark_version")
        _str(cluster["spark_version"], f"{where}.new_cluster.spark_version")
        if "num_workers" in cluster:
            _int32(cluster["num_workers"], f"{where}.new_cluster.num_workers")
        env = cluster.get("spark_env_vars", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise _invalid(f"Invalid value for {where}.new_cluster.spark_env_vars")
    for j, library in enumerate(task.get("libraries", [])):
        _known(library, LIBRARY_FIELDS, f"{where}.libraries[{j}]")
    if "timeout_seconds" in task:
        _int32(task["timeout_seconds"], f"{where}.timeout_seconds")
    return key


@dataclasses.dataclass
class TaskRun:
    run_id: int
    spec: dict[str, Any]
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = "Waiting for cluster"
    start_time: int = dataclasses.field(default_factory=lambda: int(time.time() * 1000))
    end_time: int = 0
    stdout: str = ""
    stderr: str = ""
    process: subprocess.Popen | None = None
    cancel_requested: bool = False
    history: list[str] = dataclasses.field(default_factory=lambda: ["PENDING"])

    @property
    def task_key(self) -> str:
        return self.spec["task_key"]

    def state(self) -> dict[str, Any]:
        state = {"life_cycle_state": self.life_cycle_state, "state_message": self.state_message}
        if self.result_state:
            state["result_state"] = self.result_state
        return state

    def terminal(self) -> bool:
        return self.life_cycle_state in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")


@dataclasses.dataclass
class Run:
    run_id: int
    job_id: int
    run_name: str
    token: str | None
    tasks: list[TaskRun]


class Workspace:
    """The Jobs API's state: runs, their task runs and processes, what the tests asked for."""

    def __init__(
        self,
        files: dict[str, Path],
        *,
        cluster_env: dict[str, str] | None = None,
        token: str = "dapi-loopback-test-token",
        pending_seconds: float = 0.5,
        host: str = "127.0.0.1",
    ) -> None:
        self.files = {k.rstrip("/"): Path(v) for k, v in files.items()}
        self.cluster_env = dict(cluster_env or {})
        self.token = token
        self.pending_seconds = pending_seconds
        self.host = host
        self.port = 0
        self.lock = threading.RLock()
        self.runs: dict[int, Run] = {}
        self.task_runs: dict[int, TaskRun] = {}
        self.by_token: dict[str, int] = {}
        self.calls: list[dict[str, Any]] = []
        self.held: set[str] = set()
        self.faults: list[dict[str, Any]] = []
        self._next_id = 1000

    # -- the Jobs API ----------------------------------------------------------------------------
    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        validate_submit(body)
        with self.lock:
            token = body.get("idempotency_token")
            if token and token in self.by_token:
                return {"run_id": self.by_token[token]}
            run_id, job_id = self._new_id(), self._new_id()
            tasks = [TaskRun(self._new_id(), spec) for spec in body["tasks"]]
            run = Run(run_id, job_id, body.get("run_name") or "Untitled", token, tasks)
            self.runs[run_id] = run
            for task in tasks:
                self.task_runs[task.run_id] = task
            if token:
                self.by_token[token] = run_id
        for task in tasks:
            threading.Thread(target=self._execute, args=(task,), daemon=True).start()
        return {"run_id": run_id}

    def get(self, run_id: int) -> dict[str, Any]:
        with self.lock:
            run = self.runs.get(run_id)
            if run is None:
                task = self._task(run_id)
                return {**self._task_json(task), "run_page_url": self._page(run_id)}
            return {
                "run_id": run.run_id,
                "job_id": run.job_id,
                "run_name": run.run_name,
                "run_type": "SUBMIT_RUN",
                "number_in_job": run.run_id,
                "run_page_url": self._page(run.run_id),
                "state": self._run_state(run),
                "start_time": min(t.start_time for t in run.tasks),
                "end_time": max(t.end_time for t in run.tasks)
                if all(t.terminal() for t in run.tasks)
                else 0,
                "tasks": [self._task_json(t) for t in run.tasks],
            }

    def output(self, run_id: int) -> dict[str, Any]:
        with self.lock:
            if run_id in self.runs:
                raise _invalid(
                    "Retrieving the output of runs with multiple tasks is not supported. Please "
                    "retrieve the output of each individual task run instead."
                )
            task = self._task(run_id)
            out: dict[str, Any] = {"metadata": self._task_json(task)}
            if task.life_cycle_state in ("PENDING", "RUNNING"):
                return out
            logs = task.stdout
            out["logs"] = logs[-OUTPUT_TAIL:]
            out["logs_truncated"] = len(logs) > OUTPUT_TAIL
            if task.result_state not in (None, "SUCCESS"):
                stderr = task.stderr.strip()
                out["error"] = _error_message(stderr) or task.state_message
                out["error_trace"] = stderr[-TRACE_TAIL:]
            return out

    def cancel(self, run_id: int) -> dict[str, Any]:
        with self.lock:
            run = self.runs.get(run_id)
            tasks = run.tasks if run is not None else [self._task(run_id)]
            for task in tasks:
                if task.terminal():
                    continue
                task.cancel_requested = True
                if task.process is not None and task.process.poll() is None:
                    os.killpg(task.process.pid, signal.SIGTERM)
                elif task.process is None:
                    self._finish(task, "TERMINATED", "CANCELED", "Run cancelled.")
        return {}

    # -- execution -------------------------------------------------------------------------------
    def _execute(self, task: TaskRun) -> None:
        deadline = time.monotonic() + self.pending_seconds
        while time.monotonic() < deadline or task.task_key in self.held:
            if task.cancel_requested:
                return
            time.sleep(0.1)
        python = task.spec.get("spark_python_task")
        local = self._local_file(python["python_file"]) if python else None
        with self.lock:
            if task.cancel_requested:
                return
            if local is None or not local.is_file():
                what = python["python_file"] if python else f"task type of {task.task_key}"
                self._finish(task, "INTERNAL_ERROR", "FAILED", f"{what}: not found in workspace")
                return
            env = {**os.environ, **self.cluster_env}
            env |= (task.spec.get("new_cluster") or {}).get("spark_env_vars", {})
            task.process = subprocess.Popen(
                [sys.executable, str(local), *python.get("parameters", [])],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            task.life_cycle_state, task.state_message = "RUNNING", "In run"
            task.history.append("RUNNING")
        timeout = int(task.spec.get("timeout_seconds") or 0) or None
        try:
            stdout, stderr = task.process.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(task.process.pid, signal.SIGKILL)
            stdout, stderr = task.process.communicate()
            timed_out = True
        with self.lock:
            task.stdout, task.stderr = stdout, stderr
            code = task.process.returncode
            if task.cancel_requested:
                self._finish(task, "TERMINATED", "CANCELED", "Run cancelled.")
            elif timed_out:
                self._finish(task, "TERMINATED", "TIMEDOUT", f"Timed out after {timeout} s")
            elif code == 0:
                self._finish(task, "TERMINATED", "SUCCESS", "")
            else:
                self._finish(task, "TERMINATED", "FAILED", f"Workload failed (exit code {code})")

    def _finish(self, task: TaskRun, life_cycle: str, result: str, message: str) -> None:
        task.life_cycle_state, task.result_state, task.state_message = life_cycle, result, message
        task.history.append(life_cycle)
        task.end_time = int(time.time() * 1000)

    def _local_file(self, python_file: str) -> Path | None:
        for folder, local in self.files.items():
            if python_file.startswith(folder + "/"):
                return local / python_file[len(folder) + 1 :]
        return None

    # -- helpers ---------------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _task(self, run_id: int) -> TaskRun:
        task = self.task_runs.get(run_id)
        if task is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Run {run_id} does not exist.")
        return task

    def _page(self, run_id: int) -> str:
        return f"http://{self.host}:{self.port}/#job/runs/{run_id}"

    def _task_json(self, task: TaskRun) -> dict[str, Any]:
        return {
            "run_id": task.run_id,
            "task_key": task.task_key,
            "state": task.state(),
            "attempt_number": 0,
            "start_time": task.start_time,
            "end_time": task.end_time,
            "spark_python_task": task.spec.get("spark_python_task"),
        }

    @staticmethod
    def _run_state(run: Run) -> dict[str, Any]:
        """A one-task run's state is its task's (multi-task: the first unfinished or failed)."""
        pending = [t for t in run.tasks if not t.terminal()]
        if pending:
            return pending[0].state()
        failed = [t for t in run.tasks if t.result_state != "SUCCESS"]
        return (failed or run.tasks)[0].state()

    # -- test controls ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": list(self.calls),
                "runs": [
                    {
                        "run_id": r.run_id,
                        "token": r.token,
                        "run_name": r.run_name,
                        "task_key": r.tasks[0].task_key,
                        "task_run_id": r.tasks[0].run_id,
                        "state": self._run_state(r),
                        "pid": r.tasks[0].process.pid if r.tasks[0].process else None,
                        "history": list(r.tasks[0].history),
                    }
                    for r in self.runs.values()
                ],
            }

    def fault_for(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """An injected fault matching this call (``task_key`` matches the run the call names)."""
        with self.lock:
            for fault in self.faults:
                if fault["endpoint"] != endpoint or fault["times"] <= 0:
                    continue
                run = self.runs.get(_run_id(body)) if "run_id" in body else None
                key = run.tasks[0].task_key if run is not None else None
                if fault.get("task_key") and key != fault["task_key"]:
                    continue
                fault["times"] -= 1
                return fault
        return None


def _error_message(stderr: str) -> str:
    """What the run's ``error`` says: a traceback's last line, else the end of stderr (a job's
    one clear message comes last, after its log lines)."""
    if "Traceback (most recent call last)" in stderr:
        return stderr.splitlines()[-1]
    return stderr[-ERROR_TAIL:]


def _run_id(body: dict[str, Any]) -> int:
    try:
        return int(body["run_id"])
    except (KeyError, TypeError, ValueError):
        raise _invalid("Missing or invalid required field: run_id") from None


class Handler(BaseHTTPRequestHandler):
    workspace: Workspace  # set on the subclass serve() makes

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self, method: str) -> None:
        ws = self.workspace
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
            # GET parameters arrive as a query string (requests) or a JSON body (aiohttp).
            body |= {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path.startswith("/_test/"):
                return self._reply(200, self._control(method, url.path[7:], body))
            if self.headers.get("Authorization") != f"Bearer {ws.token}":
                raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
            if not url.path.startswith(API):
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{url.path}'")
            endpoint = url.path[len(API) :]
            with ws.lock:
                agent = self.headers.get("User-Agent", "")
                ws.calls.append(
                    {"method": method, "endpoint": endpoint, "body": body, "agent": agent}
                )
            fault = ws.fault_for(endpoint, body)
            if fault:
                raise ApiError(fault["status"], "TEMPORARILY_UNAVAILABLE", "injected fault")
            routes = {
                ("POST", "runs/submit"): lambda: ws.submit(body),
                ("GET", "runs/get"): lambda: ws.get(_run_id(body)),
                ("GET", "runs/get-output"): lambda: ws.output(_run_id(body)),
                ("POST", "runs/cancel"): lambda: ws.cancel(_run_id(body)),
            }
            route = routes.get((method, endpoint))
            if route is None:
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {url.path}'")
            self._reply(200, route())
        except json.JSONDecodeError:
            self._reply(400, {"error_code": "MALFORMED_REQUEST", "message": "Invalid JSON"})
        except ApiError as e:
            self._reply(e.status, {"error_code": e.code, "message": e.message})

    def _control(self, method: str, what: str, body: dict[str, Any]) -> Any:
        ws = self.workspace
        if what == "summary":
            return ws.summary()
        with ws.lock:
            if what == "hold":
                ws.held.add(body["task_key"])
            elif what == "release":
                ws.held.discard(body["task_key"])
            elif what == "fault":
                ws.faults.append(
                    {"endpoint": body["endpoint"], "status": int(body.get("status", 503))}
                    | {"times": int(body.get("times", 1)), "task_key": body.get("task_key")}
                )
            else:
                raise ApiError(404, "ENDPOINT_NOT_FOUND", what)
        return {}

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def serve(workspace: Workspace, port: int = 0) -> Iterator[Workspace]:
    """The workspace on ``127.0.0.1:port`` in a thread; its processes are stopped afterwards."""
    handler = type("BoundHandler", (Handler,), {"workspace": workspace})
    server = ThreadingHTTPServer((workspace.host, port), handler)
    workspace.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield workspace
    finally:
        server.shutdown()
        server.server_close()
        for task in workspace.task_runs.values():
            if task.process is not None and task.process.poll() is None:
                os.killpg(task.process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A loopback Databricks Jobs API stand-in.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--files", action="append", default=[], help="/Workspace/dir=/local/dir")
    parser.add_argument("--env-json", default="{}", help="the job cluster's environment")
    parser.add_argument("--token", default="dapi-loopback-test-token")
    parser.add_argument("--pending-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    files = dict(item.split("=", 1) for item in args.files)
    workspace = Workspace(
        {k: Path(v) for k, v in files.items()},
        cluster_env=json.loads(args.env_json),
        token=args.token,
        pending_seconds=args.pending_seconds,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve(workspace, args.port):
        print(f"listening on 127.0.0.1:{workspace.port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
