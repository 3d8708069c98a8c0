"""Serving fixtures: a tiny real model saved as an MLflow model directory, and real servers.

Most tests serve the shared tiny model (`predictor` in tests/conftest.py: logistic regression +
calibrated outlier detector on the bundled data, ~1 s) from a model directory, the way the image
bakes it. The servers are real uvicorn instances on loopback ports, in a thread or in a subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from serving_support import (
    MODEL_NAME,
    Served,
    pipeline_settings,
    save_model_dir,
    serve_in_thread,
    serving_settings,
)

from attrition_mlops.serving.app import create_app

# `predictor` (the tiny real model) and `snapshot` come from tests/conftest.py.


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, predictor, snapshot) -> dict[str, Path]:
    """Two versions of the same model, "1" and "2", as baked model directories."""
    root = tmp_path_factory.mktemp("models")
    return {
        version: save_model_dir(
            root / f"v{version}",
            predictor,
            snapshot,
            {
                "name": MODEL_NAME,
                "version": version,
                "alias": "production",
                "trained_at": "2026-01-01T00:00:00+00:00",
                "holdout_auc": 0.8123,
                "family": "logistic_regression",
                "run_id": f"run-{version}",
            },
        )
        for version in ("1", "2")
    }


@pytest.fixture(scope="session")
def server(tmp_path_factory, model_dirs) -> Iterator[Served]:
    """The shared server: model dir v1, auth off, 50 records / 64 KiB per request."""
    tmp = tmp_path_factory.mktemp("served")
    settings = serving_settings(tmp, model_dir=model_dirs["1"])
    app = create_app(settings, pipeline=pipeline_settings(tmp))
    with serve_in_thread(app, settings.log_export_dir) as served:
        yield served


@pytest.fixture(scope="session")
def client(server) -> Iterator[httpx.Client]:
    # one client for the session: building an httpx.Client costs ~50 ms (its SSL context)
    with server.client() as http:
        yield http


@pytest.fixture
def restore_mlflow_uris():
    """A registry source points the process-wide MLflow client at its store: undo that."""
    tracking, registry_uri = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry_uri)
