"""Real Airflow on this machine, with no services: the ``local`` target's orchestrator.

``AIRFLOW_HOME`` lives under the state folder, the metadata DB is SQLite there (or
``ATTRITION_AIRFLOW_DB_URL``, e.g. PostgreSQL), the DAGs and plugins are this repository's.
Two ways to run:

- ``python -m attrition_mlops.orchestration.local_airflow run <dag_id> [--conf JSON]`` runs one
  DAG run to completion in this process with ``dag.test()`` (used by ``make demo`` and tests);
- ``... up`` starts the long-running components (api-server with the UI, scheduler,
  dag-processor, triggerer) for ``make up``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DB_URL_ENV = "ATTRITION_AIRFLOW_DB_URL"
API_PORT = 8080


def project_dir() -> Path:
    return Path(__file__).resolve().parents[3]


def airflow_env(
    state_dir: Path | None = None, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment a local Airflow process needs; explicit ``AIRFLOW__*`` settings win."""
    base = dict(os.environ if base is None else base)
    state = Path(state_dir or base.get("ATTRITION_STATE_DIR", ".state")).resolve()
    home = state / "airflow"
    project = project_dir()
    db_url = base.get(DB_URL_ENV) or f"sqlite:///{home / 'airflow.db'}"
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Local runs are the lifecycle demo: Asset events must queue their DAGs straight away.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",  # a laptop, not a cluster
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # loopback only; see docs
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{API_PORT}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{API_PORT}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "ATTRITION_STATE_DIR": str(state),
        "ATTRITION_JOBS_DIR": str(project / "jobs"),
    }
    return {**defaults, **base} | {"AIRFLOW_HOME": base.get("AIRFLOW_HOME", str(home))}


def migrate(env: dict[str, str]) -> None:
    """Create or upgrade the metadata DB; skipped when this Airflow already migrated this DB."""
    import hashlib
    from importlib.metadata import version

    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    key = hashlib.sha256(f"{version('apache-airflow-core')} {db}".encode()).hexdigest()[:16]
    marker = home / f".migrated-{key}"
    if marker.exists() and db.startswith("sqlite:///") and Path(db[10:]).exists():
        return
    # Its own session: a Ctrl-C reaches the caller only, which stops cleanly (see up()).
    subprocess.run(
        [_airflow(), "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    marker.touch()


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def celery_env(env: dict[str, str], broker: str, result_backend: str) -> dict[str, str]:
    """The production configuration's executor: Celery with a Redis broker."""
    return env | {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    }


def start_stack(env: dict[str, str], *, with_mlflow: bool = True) -> dict[str, subprocess.Popen]:
    """Start the long-running components, each logging to ``$AIRFLOW_HOME/logs/<name>.log``."""
    migrate(env)
    logs = Path(env["AIRFLOW_HOME"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = {name: [_airflow(), name] for name in COMPONENTS}
    if env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor":
        commands["celery-worker"] = [_airflow(), "celery", "worker"]
    if with_mlflow:
        state = Path(env["ATTRITION_STATE_DIR"])
        commands["mlflow-ui"] = [
            str(Path(sys.executable).with_name("mlflow")),
            "ui",
            "--host",
            "127.0.0.1",
            "--port",
            env.get("ATTRITION_MLFLOW_UI_PORT", "5000"),
            "--backend-store-uri",
            f"sqlite:///{(state / 'mlflow.db').resolve()}",
        ]
    procs = {}
    for name, cmd in commands.items():
        with open(logs / f"{name}.log", "ab") as log:
            procs[name] = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
    return procs


def stop_stack(procs: dict[str, subprocess.Popen], timeout: float = 30) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def up(env: dict[str, str]) -> int:
    """``make up``: run the stack until Ctrl-C or SIGTERM (or until a component dies).

    Then everything stops: the components, and the staging and production APIs the deployment
    DAG started. A signal only sets a flag, so a Ctrl-C during start-up or a second one during
    the shutdown changes nothing and prints no traceback. Exit code: 130 after Ctrl-C (SIGINT),
    143 after SIGTERM, 1 when a component died on its own.
    """
    received: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: received.append(signum))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs = start_stack(env)  # Ctrl-C meanwhile: recorded, acted on once all have started
        if not received:
            print(_banner(env), flush=True)
        while not received and all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        dead = [name for name, p in procs.items() if p.poll() is not None]
        if received:
            print(f"\n{signal.Signals(received[0]).name}: stopping the stack", flush=True)
        else:
            print(f"stopping the stack: {', '.join(dead)} exited; see its log", file=sys.stderr)
    finally:
        stop_stack(procs)
        apis = stop_serving()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(f"stopped: {', '.join(procs) or 'nothing had started'}", flush=True)
    print(f"stopped the serving APIs: {', '.join(apis)}" if apis else "no serving API was running")
    return 128 + received[0] if received else 1


def _banner(env: dict[str, str]) -> str:
    from attrition_mlops.deploy.rollout import LocalServingSettings

    serving, port = LocalServingSettings(), env["AIRFLOW__API__PORT"]
    return f"""attrition-mlops local stack (logs: {Path(env["AIRFLOW_HOME"]) / "logs"})
  Airflow UI  http://127.0.0.1:{port}   (loopback only, no login: all-admins mode)
  MLflow UI   http://127.0.0.1:{env.get("ATTRITION_MLFLOW_UI_PORT", "5000")}
  serving API staging {serving.base_url("staging")}, production {serving.base_url("production")}
              (started by attrition_deployment; /docs on each)
Ctrl-C stops everything, the serving APIs included."""


def stop_serving() -> list[str]:
    """Stop the local serving APIs that deployments recorded under the state folder."""
    from attrition_mlops.deploy.rollout import ENVIRONMENTS, LocalBackend, LocalServingSettings
    from attrition_mlops.settings import get_settings

    backend, serving = LocalBackend(get_settings()), LocalServingSettings()
    return [f"{e} ({serving.base_url(e)})" for e in ENVIRONMENTS if backend.stop_server(e)]


def run_dag(dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """One DAG run through ``dag.test()`` in this process (Airflow must see ``airflow_env``).

    Each task writes its log file where the Airflow UI reads it (``task_logs``)."""
    from airflow.dag_processing.dagbag import DagBag

    from attrition_mlops.orchestration.task_logs import task_log_files

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise KeyError(f"no DAG {dag_id!r} in {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
    with task_log_files():
        run = dag.test(run_conf=conf or {})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"dag_id": dag_id, "run_id": run.run_id, "state": str(run.state), "tasks": states}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one DAG to completion with dag.test()")
    run.add_argument("dag_id")
    run.add_argument("--conf", type=json.loads, default={})
    run.add_argument("--result-json", type=Path)
    sub.add_parser("migrate", help="create/upgrade the metadata DB")
    sub.add_parser("up", help="api-server (UI), scheduler, dag-processor, triggerer, MLflow UI")
    args = parser.parse_args(argv)

    env = airflow_env()
    if any(os.environ.get(k) != v for k, v in env.items()):
        # Airflow reads its configuration at import: re-exec with the environment in place.
        os.execve(sys.executable, [sys.executable, "-m", __spec__.name, *sys.argv[1:]], env)
    if args.command == "migrate":
        migrate(env)
        return 0
    if args.command == "up":
        return up(env)
    migrate(env)
    result = run_dag(args.dag_id, args.conf)
    line = json.dumps(result)
    if args.result_json:
        args.result_json.write_text(line + "\n")
    print(line)
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
