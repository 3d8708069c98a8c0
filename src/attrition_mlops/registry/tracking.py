"""MLflow tracking set-up: where runs go. Local default: SQLite + a file artifact root.

The registry itself is only ever touched by :mod:`attrition_mlops.registry`.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess

import mlflow
from mlflow.tracking import MlflowClient

from attrition_mlops.registry.connection import bound_http_requests, reaching
from attrition_mlops.settings import PipelineSettings


def configure_mlflow(settings: PipelineSettings) -> str:
    """Point MLflow at the configured store; return the experiment id (created if missing).

    The first call that reaches the server is here: an unreachable server fails it within the
    bounded waits of :func:`~.mlflow_connection.bound_http_requests`, with a
    :class:`~.mlflow_connection.TrackingServerUnreachableError` naming the URI.
    """
    bound_http_requests()
    if settings.tracking_uri is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri or settings.resolved_tracking_uri)
    client = MlflowClient()
    with reaching(settings.resolved_tracking_uri):
        experiment = client.get_experiment_by_name(settings.experiment_name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = settings.artifact_root.as_uri() if settings.tracking_uri is None else None
            experiment_id = client.create_experiment(settings.experiment_name, location)
        mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str:
    """The code version: $GIT_COMMIT (set by CI/Databricks) or the checkout's HEAD."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def actor() -> str:
    """Who is acting, for audit tags: the Airflow run when there is one, else user@host."""
    if os.environ.get("AIRFLOW_CTX_DAG_RUN_ID"):
        return (
            f"airflow:{os.environ.get('AIRFLOW_CTX_DAG_ID')}/{os.environ['AIRFLOW_CTX_DAG_RUN_ID']}"
        )
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
