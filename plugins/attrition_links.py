"""Registers the operator extra links (MLflow run, model version, Databricks run) so the Airflow
UI shows them on the pipeline's tasks. The link classes live in the package."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from attrition_mlops.orchestration.links import DatabricksRunLink, MLflowRunLink, ModelVersionLink


class AttritionLinksPlugin(AirflowPlugin):
    name = "attrition_links"
    # Global: the TaskFlow tasks (promote, deploy steps) push the same XComs as the job operator.
    global_operator_extra_links = [MLflowRunLink(), ModelVersionLink()]
    operator_extra_links = [DatabricksRunLink()]
