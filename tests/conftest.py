"""Shared fixtures: the real data set, a tiny trained model, an isolated MLflow store per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from support import clear_settings_caches, fit_tiny_predictor

from attrition_mlops import settings as settings_module
from attrition_mlops.data.dataset import Snapshot, load_snapshot
from attrition_mlops.model.predictor import AttritionPredictor

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_STATE = Path(tempfile.mkdtemp(prefix="attrition-airflow-tests-"))


def pytest_configure(config: pytest.Config) -> None:
    # Airflow reads its configuration when first imported: point it at a throwaway home (SQLite
    # metadata DB, this repo's DAGs and plugins) before any test module imports it.
    from attrition_mlops.orchestration.local_airflow import airflow_env

    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    os.environ.update(airflow_env(_AIRFLOW_STATE, base=clean))


@pytest.fixture(scope="session")
def airflow_env() -> dict[str, str]:
    """The environment of a local Airflow process for the tests (a copy: safe to extend)."""
    return dict(os.environ)


@pytest.fixture(scope="session")
def snapshot() -> Snapshot:
    """The bundled, validated IBM HR attrition data (1,470 rows)."""
    return load_snapshot()


@pytest.fixture(scope="session")
def predictor(snapshot: Snapshot) -> AttritionPredictor:
    """The tiny real model (support.fit_tiny_predictor), fitted once: treat it as read-only."""
    return fit_tiny_predictor(snapshot)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh local state folder (SQLite MLflow store, artifacts, holdout) for one test."""
    state = tmp_path / "state"
    monkeypatch.setenv("ATTRITION_STATE_DIR", str(state))
    monkeypatch.setenv("ATTRITION_JOBS_DIR", str(REPO / "jobs"))
    monkeypatch.delenv("ATTRITION_TRACKING_URI", raising=False)
    clear_settings_caches()
    yield state
    clear_settings_caches()


@pytest.fixture(scope="session")
def migrated_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its schema migrated, made once per session: migrating a
    new database takes 1-4 s, copying this file a few milliseconds."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # creates and migrates the schema
    return path


@pytest.fixture
def mlflow_store(state_dir: Path, migrated_mlflow_db: Path):
    """MLflow pointed at the per-test SQLite store; returns the pipeline settings."""
    from attrition_mlops.registry.tracking import configure_mlflow

    settings = settings_module.get_settings()
    store = settings.state_dir / "mlflow.db"
    assert settings.resolved_tracking_uri == f"sqlite:///{store.resolve()}"
    store.parent.mkdir(parents=True)
    shutil.copyfile(migrated_mlflow_db, store)
    configure_mlflow(settings)
    return settings
