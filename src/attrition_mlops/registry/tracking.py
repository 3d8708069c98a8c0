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

#: MLflow 3's experiment kind tag: the UI opens an experiment on the view for its kind. Without
#: it, MLflow 3 may open ours on the GenAI overview (traces, prompts); these are classic model
#: training and monitoring runs. Values as the UI declares them (``custom_model_development``).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


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
    with reaching(settings.resolved_tracking_uri):
        return use_experiment(settings.experiment_name, settings)


def use_experiment(name: str, settings: PipelineSettings) -> str:
    """Make ``name`` the active experiment (created if missing) and return its id.

    Never ``mlflow.set_experiment(name)`` on a missing experiment: with the local SQLite store
    it would put the artifacts in ``./mlruns`` of whatever folder the job runs in. Here a new
    experiment's artifacts go under the state folder (``mlartifacts``) for the local store and
    to the server's default elsewhere; every experiment carries the model-development kind.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = settings.artifact_root.as_uri() if settings.tracking_uri is None else None
        try:
            experiment_id = client.create_experiment(
                name, location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except MlflowException as err:  # another job created it meanwhile
            if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            experiment_id = client.get_experiment_by_name(name).experiment_id
    else:
        experiment_id = experiment.experiment_id
        if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before the tag was set
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
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
