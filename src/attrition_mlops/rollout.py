"""Roll a model version out to an environment, wait for it, roll it back; no Airflow in here.

The deployment DAG calls this module and never branches on the target; :func:`get_backend` does.

* ``local``: an environment (``staging``, ``production``) is a local serving process that follows
  the registry alias of the same name. Rolling out moves that alias (compare-and-set and audited,
  through :mod:`attrition_mlops.registry`) and makes sure the server runs; the server hot-swaps
  to the new version at its next poll, and :meth:`LocalBackend.wait` watches it do so.
* ``azure``: an environment is the ``attrition-serving`` Deployment in its namespace, patched
  through the Kubernetes API (:mod:`attrition_mlops.kube`).

``roll_out`` returns what was deployed before; ``roll_back`` restores exactly that. A rollout that
is already in place returns the "before" recorded when it was made (the registry's
``previous-<env>`` alias, the Deployment's annotations), so a retried task still knows where to go
back to.
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
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from attrition_mlops import registry
from attrition_mlops.settings import PipelineSettings, get_settings
from attrition_mlops.tracking import actor, configure_mlflow

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)

Environment = Literal["staging", "production"]
ENVIRONMENTS: tuple[str, ...] = ("staging", "production")
SERVER_APP = "attrition_mlops.serving.app:create_app"
ROLLOUT_REASON = "deployment"
ROLLBACK_REASON = "deployment rollback"
LOCAL_WAIT_POLL_S = 0.25
PRODUCTION_EXPORT = "inference-logs"  # what the drift job reads by default (jobs/drift.py)


class RolloutError(RuntimeError):
    """A rollout did not reach its target. ``observed`` is the last state seen."""

    def __init__(self, environment: str, target: str, observed: str, message: str) -> None:
        self.environment, self.target, self.observed = environment, target, observed
        super().__init__(message)


class RolloutFailed(RolloutError):
    def __init__(self, environment: str, target: str, observed: str) -> None:
        super().__init__(
            environment, target, observed, f"{environment}: rollout of {target} failed: {observed}"
        )


class RolloutTimeout(RolloutError):
    def __init__(self, environment: str, target: str, observed: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(
            environment, target, observed,
            f"{environment}: {target} not rolled out within {timeout_s:g} s; last observed: "
            f"{observed}",
        )  # fmt: skip


@dataclass(frozen=True)
class Deployed:
    """What runs in an environment: the model version and (on Kubernetes) the image."""

    environment: str
    model_version: str | None
    image: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deployed:
        return cls(data["environment"], data.get("model_version"), data.get("image"))


def describe(model_version: str | None, image: str | None) -> str:
    parts = [f"model version {model_version}" if model_version else "no model version"]
    if image:
        parts.append(f"image {image}")
    return ", ".join(parts)


def version_str(model_version: str | int | None) -> str | None:
    """Registry versions are strings ("3"); accept the int a caller may hold."""
    return None if model_version is None else str(model_version)


def check_environment(env: str) -> str:
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    return env


class RolloutBackend(Protocol):
    def current(self, env: str) -> Deployed: ...

    def roll_out(self, env: str, *, model_version: str, image: str | None) -> Deployed: ...

    def wait(
        self, env: str, *, model_version: str | None, image: str | None,
        timeout_s: float | None = None,
    ) -> None: ...  # fmt: skip

    def roll_back(
        self, env: str, previous: Deployed, *, timeout_s: float | None = None
    ) -> None: ...


class DeploySettings(BaseSettings):
    """Where the environments are and how long a rollout may take (ATTRITION_DEPLOY_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_DEPLOY_", extra="ignore")

    staging_url: str | None = Field(None, description="azure: the staging API's base URL")
    production_url: str | None = Field(None, description="azure: the production API's base URL")
    staging_api_key: SecretStr | None = Field(None, description="staging API key (smoke test)")
    production_api_key: SecretStr | None = Field(None, description="production API key")
    staging_namespace: str = "attrition-staging"
    production_namespace: str = "attrition-production"
    deployment: str = "attrition-serving"
    container: str = "serving"
    kubernetes_conn_id: str = "kubernetes_default"
    # Longer than the Deployment's progressDeadlineSeconds (300), so a stuck rollout is reported
    # by Kubernetes (ProgressDeadlineExceeded) rather than by our own clock.
    rollout_timeout_s: float = Field(420.0, gt=0)
    poll_s: float = Field(2.0, gt=0, description="how often wait() looks")
    smoke_timeout_s: float = Field(30.0, gt=0, description="per smoke-test request")

    def url(self, env: str) -> str | None:
        return getattr(self, f"{check_environment(env)}_url")

    def api_key(self, env: str) -> str | None:
        key: SecretStr | None = getattr(self, f"{check_environment(env)}_api_key")
        return key.get_secret_value() if key else None

    def namespace(self, env: str) -> str:
        return getattr(self, f"{check_environment(env)}_namespace")


class LocalServingSettings(BaseSettings):
    """The local target's serving processes (ATTRITION_LOCAL_SERVING_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_LOCAL_SERVING_", extra="ignore")

    host: str = "127.0.0.1"
    staging_port: int = Field(8001, gt=0, lt=65536)
    production_port: int = Field(8002, gt=0, lt=65536)
    poll_seconds: float = Field(1.0, gt=0, description="how often a server checks its alias")
    graceful_shutdown_s: int = Field(20, ge=1, description="uvicorn's drain on SIGTERM")

    def port(self, env: str) -> int:
        return getattr(self, f"{check_environment(env)}_port")

    def base_url(self, env: str) -> str:
        return f"http://{self.host}:{self.port(env)}"

    def export_dir(self, env: str, pipeline: PipelineSettings) -> Path:
        """Production exports where the drift job looks; staging's smoke traffic stays apart."""
        name = PRODUCTION_EXPORT if env == "production" else f"{PRODUCTION_EXPORT}-{env}"
        return pipeline.state_dir.resolve() / name


def environment_url(env: str, pipeline: PipelineSettings | None = None) -> str:
    """The base URL an environment's API answers on (for the smoke test)."""
    pipeline = pipeline or get_settings()
    if pipeline.target == "local":
        return LocalServingSettings().base_url(env)
    url = DeploySettings().url(env)
    if not url:
        raise ValueError(f"ATTRITION_DEPLOY_{env.upper()}_URL is not set: no URL to test {env} at")
    return url.rstrip("/")


def get_backend(
    settings: PipelineSettings | None = None, *, api_client: ApiClient | None = None
) -> RolloutBackend:
    """The backend for ``ATTRITION_TARGET``; on azure the client comes from the Airflow conn."""
    settings = settings or get_settings()
    deploy = DeploySettings()
    if settings.target == "local":
        return LocalBackend(settings, LocalServingSettings(), deploy)
    from attrition_mlops import kube  # the kubernetes client is only needed on this target

    client = api_client or kube.api_client_from_airflow(deploy.kubernetes_conn_id)
    return kube.KubernetesBackend(client, deploy)


def smoke_test_environment(
    env: str, *, expected_version: str, pipeline: PipelineSettings | None = None
) -> dict[str, Any]:
    """Smoke-test an environment at its URL with its API key; raises SmokeTestFailed."""
    from attrition_mlops.smoke import smoke_test

    deploy = DeploySettings()
    return smoke_test(
        environment_url(env, pipeline), expected_version=expected_version,
        api_key=deploy.api_key(env), timeout_s=deploy.smoke_timeout_s,
    )  # fmt: skip


def record_deployment(
    env: str, model_version: str, *, pipeline: PipelineSettings | None = None
) -> dict[str, Any] | None:
    """Point the registry alias ``env`` at the version now running there (the DAG's last step).

    On the local target the rollout itself moved the alias, so this finds nothing to do; on azure
    it records the image's model version. Idempotent: the audited move, or None if none was due.
    """
    pipeline = pipeline or get_settings()
    configure_mlflow(pipeline)
    version = version_str(model_version)
    held = registry.get_alias_version(pipeline.model_name, check_environment(env))
    if held == version:
        return None
    move = registry.move_alias(
        pipeline.model_name, env, version, expected=held, actor=actor(), reason=ROLLOUT_REASON
    )
    return asdict(move)


def deploy_environment(
    env: str, *, model_version: str, image: str | None, backend: RolloutBackend | None = None,
    pipeline: PipelineSettings | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Roll out, wait, smoke-test; on any failure roll back to what ran before and re-raise."""
    backend = backend or get_backend(pipeline)
    previous = backend.roll_out(env, model_version=model_version, image=image)
    try:
        backend.wait(env, model_version=model_version, image=image)
        report = smoke_test_environment(env, expected_version=model_version, pipeline=pipeline)
    except BaseException:
        log.exception("%s: rollout failed; rolling back to %s", env, previous)
        backend.roll_back(env, previous)
        raise
    return {"deployed": Deployed(env, model_version, image).to_dict(),
            "previous": previous.to_dict(), "smoke_test": report}  # fmt: skip


class LocalBackend:
    """Local serving processes, one per environment, each following its registry alias."""

    def __init__(
        self, pipeline: PipelineSettings, serving: LocalServingSettings | None = None,
        deploy: DeploySettings | None = None,
    ) -> None:  # fmt: skip
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
        self, env: str, *, model_version: str | None, image: str | None = None,
        timeout_s: float | None = None,
    ) -> None:  # fmt: skip
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
                env, f"a server on {host}:{port}",
                f"port {port} is taken by a process this backend did not start; free it or set "
                f"ATTRITION_LOCAL_SERVING_{env.upper()}_PORT",
            )  # fmt: skip
        command = [
            sys.executable, "-m", "uvicorn", "--factory", SERVER_APP, "--host", host,
            "--port", str(port), "--no-access-log",
            "--timeout-graceful-shutdown", str(self.serving.graceful_shutdown_s),
        ]  # fmt: skip
        with open(self.log_file(env), "ab") as out:
            process = subprocess.Popen(
                command, env=self._server_env(env), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=self.pid_file(env).parent, start_new_session=True,
            )  # fmt: skip
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
            k: v for k, v in os.environ.items()
            # a fixed model would override the alias; a stray key would change auth
            if k not in ("ATTRITION_SERVING_MODEL_DIR", "ATTRITION_SERVING_MODEL_URI",
                         "ATTRITION_SERVING_API_KEY")
        }  # fmt: skip
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
