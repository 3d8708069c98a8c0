"""The production configuration's Airflow, shared by the modules that need it: PostgreSQL as the
metadata database and the CeleryExecutor with Redis as broker (both run on this machine),
started the way ``make up`` starts the stack. Each module starts (and stops) its own."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest
import redis
from support import free_port

from attrition_mlops.orchestration import local_airflow

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"
STACK_DAGS = {
    "attrition_training",
    "attrition_deployment",
    "attrition_batch_scoring",
    "attrition_drift_monitoring",
}


@pytest.fixture(scope="module")
def database():
    """A fresh PostgreSQL database (and Redis DB) for this module; dropped afterwards."""
    name = f"airflow_ci_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    redis.Redis(host="127.0.0.1", port=6379, db=7).ping()  # fail, not skip, when it is down
    yield name
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture(scope="module")
def start_celery_stack(tmp_path_factory, database):
    """``with start_celery_stack(env=..., users=...) as stack:`` runs the stack for a module.

    ``users`` (name → password) turns off ``make up``'s all-admins login: each is an Airflow
    admin of the simple auth manager, and the first one's token authenticates ``client``.
    """
    return partial(_celery_stack, tmp_path_factory, database)


@contextlib.contextmanager
def _celery_stack(
    tmp_path_factory,
    database: str,
    *,
    env: dict[str, str] | None = None,
    users: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("stack") / "state"
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ATTRITION_"))}
    base |= {
        "ATTRITION_STATE_DIR": str(state),
        local_airflow.DB_URL_ENV: f"{PG}/{database}",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "ATTRITION_ALERT_AIRFLOW_BASE_URL": f"http://127.0.0.1:{port}",  # alerts link here
    }
    if users:
        passwords = state / "simple_auth_manager_passwords.json"
        passwords.parent.mkdir(parents=True)
        passwords.write_text(json.dumps(users))
        base |= {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:admin" for u in users),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }
    base |= env or {}
    stack_env = local_airflow.celery_env(
        local_airflow.airflow_env(state, base=base),
        broker="redis://127.0.0.1:6379/7",
        result_backend=f"db+postgresql://postgres@127.0.0.1:5432/{database}",
    )
    procs = local_airflow.start_stack(stack_env, with_mlflow=False)
    url = f"http://127.0.0.1:{port}"
    try:
        login = partial(token, url, users) if users else partial(_all_admins_token, url)
        client = _wait_for_client(url, procs, stack_env, login)
        yield {
            "client": client,
            "env": stack_env,
            "procs": procs,
            "url": url,
            "state": state,
            "login": login,
            "client_for": lambda name: api_client(url, login(name)),
        }
    finally:
        local_airflow.stop_stack(procs)


def token(url: str, users: dict[str, str], name: str | None = None) -> str:
    """A JWT for ``name`` (default: the first user), as the UI's login form gets it."""
    name = name or next(iter(users))
    answer = httpx.post(
        f"{url}/auth/token", json={"username": name, "password": users[name]}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def _all_admins_token(url: str, name: str | None = None) -> str:
    return httpx.get(f"{url}/auth/token", timeout=5).json()["access_token"]


def api_client(url: str, jwt: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{url}/api/v2", headers={"Authorization": f"Bearer {jwt}"}, timeout=30
    )


def _wait_for_client(url: str, procs, env, login) -> httpx.Client:
    deadline = time.monotonic() + 300
    while True:
        dead = [n for n, p in procs.items() if p.poll() is not None]
        assert not dead, f"{dead} exited: see {Path(env['AIRFLOW_HOME']) / 'logs'}"
        try:
            client = api_client(url, login())
            found = {d["dag_id"] for d in client.get("/dags").json()["dags"]}
            if STACK_DAGS <= found:
                return client
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        assert time.monotonic() < deadline, "the stack did not come up with the four DAGs"
        time.sleep(3)
