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


def push_links(context: Any, result: dict[str, Any], *, databricks: bool = False) -> None:
    """Push every link's XCom for a job result (``run_id``/``evaluation_run_id``/``version``).

    A link without a target gets an empty value: the UI shows it disabled, and the task runner,
    which resolves each link when the task ends, finds an XCom instead of logging a miss.
    """
    from attrition_mlops.settings import get_settings

    settings = get_settings()
    ti = context["ti"]
    version = result.get("version") or result.get("challenger_version")
    version_url = ""
    if version:
        version_url = model_version_url(settings.mlflow_ui_url, settings.model_name, str(version))
    ti.xcom_push(key=MODEL_VERSION_KEY, value=version_url)
    run_id = result.get("run_id") or result.get("evaluation_run_id") or result.get("mlflow_run_id")
    experiment_id = result.get("experiment_id") or (_experiment_of(str(run_id)) if run_id else None)
    run_link = run_url(settings.mlflow_ui_url, experiment_id, run_id) if experiment_id else ""
    ti.xcom_push(key=MLFLOW_RUN_KEY, value=run_link)
    if not databricks:  # on Databricks the provider pushed the run page already
        ti.xcom_push(key=DATABRICKS_RUN_KEY, value="")


def _experiment_of(run_id: str) -> str | None:
    try:
        import mlflow

        from attrition_mlops.registry.tracking import configure_mlflow
        from attrition_mlops.settings import get_settings

        configure_mlflow(get_settings())
        return mlflow.get_run(run_id).info.experiment_id
    except Exception:  # a link is a convenience: never fail the task over it
        return None
