"""Registers the operator extra links (MLflow run, model version, Databricks run) so the Airflow
UI shows them on the pipeline's tasks. The link classes live in the package."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from attrition_mlops.orchestration.links import DatabricksRunLink, MLflowRunLink, ModelVersionLink


class AttritionLinksPlugin(AirflowPlugin):
    name = "attrition_links"
    # Airflow 3 resolves a task's links when it ends, from its operator's own link list; the
    # api-server needs the classes registered to show them.
    operator_extra_links = [DatabricksRunLink(), MLflowRunLink(), ModelVersionLink()]
