"""What each DAG run works on: job arguments built from settings, run parameters and the run's
date. Pure functions of their inputs, so the DAG files stay wiring and the rules are testable."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from attrition_mlops.settings import PipelineSettings, WorkflowSettings


def run_key(dag_id: str, run_id: str) -> str:
    """One training run per DAG run: a retried task reuses the registered version."""
    return f"{dag_id}__{run_id}"


def training_args(
    workflow: WorkflowSettings,
    *,
    key: str,
    snapshot: str | None = None,
    snapshot_as_of: str | None = None,
) -> dict[str, list[str]]:
    """A named labelled snapshot (``snapshot_as_of``), else a file (the ``snapshot`` param or
    setting), else the jobs take the latest labelled snapshot."""
    data = snapshot or workflow.snapshot
    if snapshot_as_of:
        data_args = ["--snapshot-as-of", date.fromisoformat(snapshot_as_of).isoformat()]
    else:
        data_args = ["--data", data] if data else []
    train = [*data_args, "--run-key", key]
    if workflow.n_trials:
        train += ["--n-trials", str(workflow.n_trials)]
    return {"validate": data_args, "train": train}


def snapshot_args(file: str, as_of: str, source: str | None = None) -> list[str]:
    """The add_snapshot job's arguments; a malformed date fails here, before any job starts."""
    args = [file, "--as-of", date.fromisoformat(as_of).isoformat()]
    return args + (["--source", source] if source else [])


def outcomes_args(file: str, arrived: str | None, simulated: bool = False) -> list[str]:
    """The add_outcomes job's arguments; a malformed date fails here, before any job starts."""
    args = [file] + (["--arrived", date.fromisoformat(arrived).isoformat()] if arrived else [])
    return args + (["--simulated"] if simulated else [])


def performance_args(
    workflow: WorkflowSettings, pipeline: PipelineSettings, as_of: date
) -> list[str]:
    """The performance job's arguments: the online logs are the ones the drift job reads."""
    return [
        "--as-of",
        as_of.isoformat(),
        "--logs",
        inference_log_dir(workflow, pipeline),
        "--log-format",
        workflow.log_format,
        "--log-to-mlflow",
    ]


def evaluate_args(train_result: dict[str, Any]) -> list[str]:
    return ["--challenger-version", str(train_result["version"]), "--quiet"]


def run_day(params_date: str | None, logical: datetime | None, run_after: datetime) -> date:
    """The day a daily run is about: an explicit ``date`` param, else its logical date."""
    if params_date:
        return date.fromisoformat(params_date)
    return (logical or run_after).date()


def monitored_day(params_date: str | None, logical: datetime | None, run_after: datetime) -> date:
    """The nightly drift run checks the previous (complete) day unless told which day."""
    if params_date:
        return date.fromisoformat(params_date)
    return (logical or run_after).date() - timedelta(days=1)


def scoring_args(
    workflow: WorkflowSettings, pipeline: PipelineSettings, day: date, *, model_alias: str
) -> list[str]:
    source = workflow.batch_input
    args = ["--run-date", day.isoformat()]
    args += ["--model-uri", f"models:/{pipeline.model_name}@{model_alias}"]
    if source:
        args += ["--input", source.replace("{ds}", day.isoformat())]
    else:
        from attrition_mlops.data.dataset import bundled_dataset_path

        args += ["--input", str(bundled_dataset_path())]
    return args


def inference_log_dir(workflow: WorkflowSettings, pipeline: PipelineSettings) -> str:
    return workflow.inference_logs or str(pipeline.state_dir / "inference-logs")


def drift_args(
    workflow: WorkflowSettings,
    pipeline: PipelineSettings,
    day: date,
    airflow_run_url: str | None = None,
) -> list[str]:
    """The drift job's arguments; ``airflow_run_url`` (this DAG run) is linked from its reports."""
    args = [
        "--date",
        day.isoformat(),
        "--logs",
        inference_log_dir(workflow, pipeline),
        "--format",
        workflow.log_format,
        "--log-to-mlflow",
    ]
    return args + (["--airflow-run-url", airflow_run_url] if airflow_run_url else [])


def promotion(evaluation: dict[str, Any]) -> dict[str, Any] | None:
    """The promotion an evaluation made, or None when the champion was kept."""
    if evaluation.get("decision") != "promoted":
        return None
    # The figures of the evidence that decided: the recent window when the window rule did.
    window = evaluation.get("evidence_window") or {}
    by_window = str(evaluation.get("rule", "")).startswith("window") and "delta_auc" in window
    judged = window if by_window else evaluation
    return {
        "version": str(evaluation["challenger_version"]),
        "previous": evaluation.get("champion_version"),
        "evidence": "recent window" if by_window else "frozen holdout",
        "delta_auc": judged.get("delta_auc"),
        "win_rate": judged.get("win_rate"),
        "auc": judged.get("auc_challenger"),
        "evaluation_run_id": evaluation.get("evaluation_run_id"),
        "reason": evaluation.get("reason"),
    }
