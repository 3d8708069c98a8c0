"""Tracking set-up on a real local store: where experiments keep their artifacts, and the kind
that makes MLflow 3's UI open them on model training rather than on the GenAI overview."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from support import REPO

from attrition_mlops.registry.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    configure_mlflow,
    use_experiment,
)


def _under(uri: str, folder: Path) -> bool:
    return uri.startswith(folder.resolve().as_uri() + "/") or uri == folder.resolve().as_uri()


def test_training_and_monitoring_experiments_have_the_model_development_kind(mlflow_store):
    client = MlflowClient()
    training = client.get_experiment_by_name(mlflow_store.experiment_name)
    assert training.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"

    monitoring_id = use_experiment("employee_attrition-monitoring", mlflow_store)
    monitoring = client.get_experiment(monitoring_id)
    assert monitoring.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    # Its artifacts go under the state folder, like training's, never to ./mlruns.
    assert _under(monitoring.artifact_location, mlflow_store.artifact_root)
    with mlflow.start_run() as run:  # and it is the active one: the next run lands in it
        assert run.info.experiment_id == monitoring_id


def test_an_experiment_made_before_the_kind_existed_gets_it(mlflow_store):
    client = MlflowClient()
    old = client.create_experiment("made-by-an-older-release")
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert use_experiment("made-by-an-older-release", mlflow_store) == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    configure_mlflow(mlflow_store)  # the training experiment: found, left as it is
    assert len(client.search_experiments()) == 3  # Default, training, the old one


@pytest.mark.integration  # two job processes
def test_monitoring_jobs_run_from_the_repository_leave_no_mlruns_there(tmp_path):
    """Drift and performance runs logged to MLflow kept their artifacts in ``./mlruns`` of the
    folder the job ran in (``mlflow.set_experiment`` on a new experiment, SQLite store), so
    ``make demo`` left ``mlruns/`` in the repository. The state folder is elsewhere here."""
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTRITION_")}
    env["ATTRITION_STATE_DIR"] = str(state)
    mlruns = REPO / "mlruns"
    before = sorted(mlruns.rglob("*")) if mlruns.exists() else None
    jobs = (
        ["jobs/drift.py", "--date", "2026-01-02", "--log-to-mlflow"],
        ["jobs/performance.py", "--as-of", "2026-01-02", "--log-to-mlflow"],
    )
    try:
        for job in jobs:
            proc = subprocess.run(
                [sys.executable, *job], cwd=REPO, env=env, capture_output=True, text=True
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
        after = sorted(mlruns.rglob("*")) if mlruns.exists() else None
        assert after == before, f"the jobs wrote {mlruns}"
    finally:
        if before is None and mlruns.exists():  # the failure left it: don't leave it around
            import shutil

            shutil.rmtree(mlruns)
    client = MlflowClient(f"sqlite:///{(state / 'mlflow.db').resolve()}")
    monitoring = client.get_experiment_by_name("employee_attrition-monitoring")
    assert _under(monitoring.artifact_location, state / "mlartifacts")
    assert monitoring.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    runs = client.search_runs([monitoring.experiment_id])
    assert sorted(r.data.tags["job"] for r in runs) == ["drift", "performance"]
    for run in runs:
        assert _under(run.info.artifact_uri, state / "mlartifacts")
        assert client.list_artifacts(run.info.run_id), run.data.tags["job"]  # really stored there
