"""The local target: one serving process per environment, following its registry alias.

Rolling out moves the alias (compare-and-set and audited, through :mod:`attrition_mlops.registry`)
and makes sure the server runs; the server hot-swaps to the new version at its next poll, and
:meth:`LocalBackend.wait` watches it do so.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from attrition_mlops import registry
from attrition_mlops.deploy.rollout.common import (
    ROLLBACK_REASON,
    ROLLOUT_REASON,
    Deployed,
    DeploySettings,
    LocalServingSettings,
    RolloutFailed,
    RolloutTimeout,
    check_environment,
    describe,
    version_str,
)
from attrition_mlops.registry.tracking import actor, configure_mlflow
from attrition_mlops.settings import PipelineSettings

log = logging.getLogger(__name__)

# The launcher every surface runs (image, compose, make serve): the same header, read-time and
# connection limits here as in production (docs/serving.md "Server limits").
SERVER_APP = "attrition_mlops.serving.server"
LOCAL_WAIT_POLL_S = 0.25


class LocalBackend:
    """Local serving processes, one per environment, each following its registry alias."""

    def __init__(
        self,
        pipeline: PipelineSettings,
        serving: LocalServingSettings | None = None,
        deploy: DeploySettings | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.serving = serving or LocalServingSettings()
        self.deploy = deploy or DeploySettings()
        self.name = pipeline.model_name

    def _connect(self) -> None:
        configure_mlflow(self.pipeline)

    def current(self, env: str) -> Deployed:
        self._connect()
        return Deployed(env, registry.get_alias_version(self.name, check_environment(env)), None)

    def roll_out(self, env: str, *, model_version: str, image: str | None = None) -> Deployed:
        self._connect()
        model_version = version_str(model_version)
        held = registry.get_alias_version(self.name, check_environment(env))
        if held == model_version:  # already there: report the "before" of the move that did it
            before = registry.get_alias_version(self.name, registry.previous_alias(env))
            previous = Deployed(env, before, None)
        else:
            registry.move_alias(
                self.name, env, model_version, expected=held, actor=actor(), reason=ROLLOUT_REASON
            )
            previous = Deployed(env, held, None)
        log.info("%s: %s@%s -> %s (was %s)", env, self.name, env, model_version, held)
        self.ensure_server(env)
        return previous

    def roll_back(self, env: str, previous: Deployed, *, timeout_s: float | None = None) -> None:
        self._connect()
        target, held = previous.model_version, self.current(env).model_version
        if target is None:
            # Nothing was deployed before: take the environment down and remove the alias, so it
            # no longer names the failed version (a later rollback must not return to it).
            log.warning("%s: nothing to roll back to; stopping its server", env)
            registry.delete_alias(
                self.name, env, expected=held, actor=actor(), reason=ROLLBACK_REASON
            )
            self.stop_server(env)
            return
        if held != target:
            if registry.get_alias_version(self.name, registry.previous_alias(env)) == target:
                # One step back along the audited chain; keeps previous-<env> meaningful.
                registry.rollback_alias(self.name, env, actor=actor(), reason=ROLLBACK_REASON)
            else:
                registry.move_alias(
                    self.name, env, target, expected=held, actor=actor(), reason=ROLLBACK_REASON
                )
        log.info("%s: rolled %s@%s back from %s to %s", env, self.name, env, held, target)
        self.ensure_server(env)
        self.wait(env, model_version=target, image=None, timeout_s=timeout_s)

    def wait(
        self,
        env: str,
        *,
        model_version: str | None,
        image: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Until the server is ready and ``GET /model`` reports ``model_version``."""
        timeout_s = self.deploy.rollout_timeout_s if timeout_s is None else timeout_s
        model_version = version_str(model_version)
        target = describe(model_version, None)
        deadline = time.monotonic() + timeout_s
        headers = _auth_headers(self.deploy.api_key(env))
        with httpx.Client(base_url=self.serving.base_url(env), timeout=5, headers=headers) as http:
            while True:
                if not self._running_pid(env):
                    raise RolloutFailed(env, target, f"server not running; {self._log_tail(env)}")
                serving, observed = _observe_server(http)
                if serving is not None and serving == model_version:
                    return
                if time.monotonic() >= deadline:
                    raise RolloutTimeout(
                        env, target, f"{observed}; {self._log_tail(env)}", timeout_s
                    )
                time.sleep(LOCAL_WAIT_POLL_S)

    # -- the server processes ---------------------------------------------------------------

    def pid_file(self, env: str) -> Path:
        return self.pipeline.state_dir.resolve() / "serving" / f"{check_environment(env)}.pid"

    def log_file(self, env: str) -> Path:
        return self.pid_file(env).with_suffix(".log")

    def ensure_server(self, env: str) -> int:
        """Start the environment's server unless it runs; return its pid."""
        # One starter at a time per environment (two DAG runs, a retry racing its original).
        with _exclusive(self.pid_file(env).with_suffix(".lock")):
            return self._start_unless_running(env)

    def _start_unless_running(self, env: str) -> int:
        pid = self._running_pid(env)
        if pid is not None:
            return pid
        host, port = self.serving.host, self.serving.port(env)
        if _port_in_use(host, port):
            raise RolloutFailed(
                env,
                f"a server on {host}:{port}",
                f"port {port} is taken by a process this backend did not start; free it or set "
                f"ATTRITION_LOCAL_SERVING_{env.upper()}_PORT",
            )
        command = [sys.executable, "-m", SERVER_APP, "--host", host, "--port", str(port)]
        with open(self.log_file(env), "ab") as out:
            process = subprocess.Popen(
                command,
                env=self._server_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.pid_file(env).parent,
                start_new_session=True,
            )
        _CHILDREN[process.pid] = process  # keeps it reapable (and Popen quiet) in this process
        tmp = self.pid_file(env).with_suffix(".pid.tmp")
        tmp.write_text(f"{process.pid}\n")
        os.replace(tmp, self.pid_file(env))
        log.info("%s: started server pid %d on %s", env, process.pid, self.serving.base_url(env))
        return process.pid

    def stop_server(self, env: str, timeout_s: float | None = None) -> bool:
        """SIGTERM the server and wait for its drain (SIGKILL after the timeout); was it up?"""
        pid = self._running_pid(env)
        if pid is None:
            self.pid_file(env).unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + (timeout_s or self.serving.graceful_shutdown_s + 10)
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            log.warning("%s: server pid %d did not drain in time; killing it", env, pid)
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file(env).unlink(missing_ok=True)
        log.info("%s: stopped server pid %d", env, pid)
        return True

    def _server_env(self, env: str) -> dict[str, str]:
        inherited = {
            k: v
            for k, v in os.environ.items()
            # a fixed model would override the alias; a stray key would change auth
            if k
            not in (
                "ATTRITION_SERVING_MODEL_DIR",
                "ATTRITION_SERVING_MODEL_URI",
                "ATTRITION_SERVING_API_KEY",
            )
        }
        server = {
            "ATTRITION_TARGET": "local",
            "ATTRITION_STATE_DIR": str(self.pipeline.state_dir.resolve()),
            "ATTRITION_MODEL_NAME": self.name,
            "ATTRITION_SERVING_ALIAS": env,
            "ATTRITION_SERVING_FALLBACK_ALIAS": "",  # serve this environment's version or nothing
            "ATTRITION_SERVING_POLL_SECONDS": str(self.serving.poll_seconds),
            "ATTRITION_SERVING_LOG_EXPORT": "true",
            "ATTRITION_SERVING_LOG_EXPORT_DIR": str(self.serving.export_dir(env, self.pipeline)),
            "ATTRITION_SERVING_LOG_STDOUT": "false",  # the export has them; keep the log readable
            "ATTRITION_SERVING_GRACEFUL_SHUTDOWN_SECONDS": str(self.serving.graceful_shutdown_s),
        }
        if self.pipeline.tracking_uri:
            server["ATTRITION_TRACKING_URI"] = self.pipeline.tracking_uri
        if self.pipeline.registry_uri:
            server["ATTRITION_REGISTRY_URI"] = self.pipeline.registry_uri
        if key := self.deploy.api_key(env):
            server["ATTRITION_SERVING_API_KEY"] = key
        return inherited | server

    def _running_pid(self, env: str) -> int | None:
        try:
            pid = int(self.pid_file(env).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) and _is_server(pid, self.serving.port(env)) else None

    def _log_tail(self, env: str, lines: int = 6) -> str:
        """The log's last lines, led by its last ERROR/WARNING record (a traceback buries it)."""
        try:
            text = self.log_file(env).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "no server log"
        tail = text[-lines:]
        records = [line for line in text if line.startswith(("ERROR:", "WARNING:", "CRITICAL:"))]
        if records and records[-1] not in tail:
            tail = [records[-1], "...", *tail]
        return f"server log {self.log_file(env)}:\n" + "\n".join(tail)


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


# Servers started by this process: polling them reaps them, so an exited one is not a zombie.
_CHILDREN: dict[int, subprocess.Popen] = {}


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_server(pid: int, port: int) -> bool:
    """Guards against a recycled pid: is this still our uvicorn on this port? (Linux /proc)"""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs (macOS): trust the pid file
    except OSError:
        return True
    if not raw:  # just forked and still exec'ing (seen right after Popen returns): can't tell
        return True
    args = raw.split(b"\0")
    return SERVER_APP.encode() in args and str(port).encode() in args


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _auth_headers(api_key: str | None) -> dict[str, str]:
    return {"X-API-Key": api_key} if api_key else {}


def _observe_server(http: httpx.Client) -> tuple[str | None, str]:
    """One look at a server: (the version it serves or None, what was seen)."""
    try:
        ready = http.get("/health/ready")
        if ready.status_code != 200:
            return None, f"not ready (GET /health/ready: {ready.status_code})"
        model = http.get("/model")
        if model.status_code != 200:
            return None, f"GET /model answered {model.status_code}: {model.text[:200]}"
    except httpx.HTTPError as err:
        return None, f"no HTTP answer ({type(err).__name__}: {err})"
    version = model.json().get("version")
    return version, f"serving model version {version}"
