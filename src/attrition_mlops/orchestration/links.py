"""Operator extra links: from a task in the Airflow UI to what it made in MLflow or Databricks.

Tasks push the URLs as XComs (:func:`push_links`); the links only read them back, so the
api-server never talks to MLflow. Registered by ``plugins/attrition_links.py``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

MLFLOW_RUN_KEY = "mlflow_run_url"
MODEL_VERSION_KEY = "model_version_url"
DATABRICKS_RUN_KEY = "run_page_url"  # the key the Databricks provider pushes


class _XComLink(BaseOperatorLink):
    key = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return XCom.get_value(key=self.key, ti_key=ti_key) or ""


class MLflowRunLink(_XComLink):
    name = "MLflow run"
    key = MLFLOW_RUN_KEY


class ModelVersionLink(_XComLink):
    name = "MLflow model version"
    key = MODEL_VERSION_KEY


class DatabricksRunLink(_XComLink):
    name = "Databricks run"
    key = DATABRICKS_RUN_KEY


def run_url(mlflow_ui: str, experiment_id: str, run_id: str) -> str:
    return f"{mlflow_ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_url(mlflow_ui: str, model_name: str, version: str) -> str:
    return f"{mlflow_ui.rstrip('/')}/#/models/{model_name}/versions/{version}"


def push_links(context: Any, result: dict[str, Any]) -> None:
    """Push MLflow links for a job result holding ``run_id``/``evaluation_run_id``/``version``."""
    from attrition_mlops.settings import get_settings

    settings = get_settings()
    ti = context["ti"]
    version = result.get("version") or result.get("challenger_version")
    if version:
        url = model_version_url(settings.mlflow_ui_url, settings.model_name, str(version))
        ti.xcom_push(key=MODEL_VERSION_KEY, value=url)
    run_id = result.get("run_id") or result.get("evaluation_run_id") or result.get("mlflow_run_id")
    if run_id:
        experiment_id = result.get("experiment_id") or _experiment_of(str(run_id))
        if experiment_id:
            ti.xcom_push(
                key=MLFLOW_RUN_KEY, value=run_url(settings.mlflow_ui_url, experiment_id, run_id)
            )


def _experiment_of(run_id: str) -> str | None:
    try:
        import mlflow

        from attrition_mlops.settings import get_settings
        from attrition_mlops.tracking import configure_mlflow

        configure_mlflow(get_settings())
        return mlflow.get_run(run_id).info.experiment_id
    except Exception:  # a link is a convenience: never fail the task over it
        return None
