"""Shared fixtures: the real data set, and an isolated local MLflow store per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from attrition_mlops import settings as settings_module
from attrition_mlops.dataset import Snapshot, load_snapshot

REPO = Path(__file__).resolve().parents[1]


def _clear_settings_caches() -> None:
    # Every cached getter in settings.py, so a new settings class cannot be forgotten here.
    for name in dir(settings_module):
        getter = getattr(settings_module, name)
        if name.startswith("get_") and hasattr(getter, "cache_clear"):
            getter.cache_clear()


@pytest.fixture(scope="session")
def snapshot() -> Snapshot:
    """The bundled, validated IBM HR attrition data (1,470 rows)."""
    return load_snapshot()


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh local state folder (SQLite MLflow store, artifacts, holdout) for one test."""
    state = tmp_path / "state"
    monkeypatch.setenv("ATTRITION_STATE_DIR", str(state))
    monkeypatch.setenv("ATTRITION_JOBS_DIR", str(REPO / "jobs"))
    monkeypatch.delenv("ATTRITION_TRACKING_URI", raising=False)
    _clear_settings_caches()
    yield state
    _clear_settings_caches()


@pytest.fixture
def mlflow_store(state_dir: Path):
    """MLflow pointed at the per-test SQLite store; returns the pipeline settings."""
    from attrition_mlops.tracking import configure_mlflow

    settings = settings_module.get_settings()
    configure_mlflow(settings)
    return settings
