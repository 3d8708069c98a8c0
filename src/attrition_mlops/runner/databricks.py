"""The ``azure`` target's job backend: the Databricks runs/submit payload and the job's result.

Pure functions, no Airflow and no network: the orchestration layer hands the payload to the
Databricks provider's operator and the run output back to :func:`result_from_run_output`.
Every ``jobs/`` entrypoint prints its JSON result as the last line of stdout; Databricks keeps
that stream as the ``logs`` of a ``spark_python_task`` run's output.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from attrition_mlops.settings import DatabricksSettings

MAX_TOKEN_LENGTH = 64  # the Jobs API limit for idempotency_token
TERMINAL_STATES = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")  # a run's final life-cycle states


class JobOutputError(RuntimeError):
    """The run succeeded but its output holds no JSON result line."""


def idempotency_token(
    dag_id: str, task_id: str, run_id: str, map_index: int = -1, generation: int = 0
) -> str:
    """Stable for one task of one DAG run across retries, so a retry never submits a second run.

    The try number is deliberately left out: Databricks answers a repeated token with the run
    the first try started, which the retry then waits for instead of training twice. A new
    ``generation`` is a new token, taken only once the earlier generation's run has failed or was
    cancelled (:func:`reuse_run`), so a retry can run the job again.
    """
    parts = (dag_id, task_id, run_id, str(map_index)) + ((str(generation),) if generation else ())
    key = "\x1f".join(parts)
    return hashlib.sha256(key.encode()).hexdigest()[:MAX_TOKEN_LENGTH]


def reuse_run(life_cycle_state: str, result_state: str | None) -> bool:
    """Whether a try attaches to an earlier generation's run: yes while it is active (the retry
    waits for it) or when it succeeded (the retry reads its result); no when it ended any other
    way (failed, timed out, cancelled, internal error), so the retry submits a new generation."""
    if life_cycle_state not in TERMINAL_STATES:
        return True
    return life_cycle_state == "TERMINATED" and result_state == "SUCCESS"


#: The jobs that read the serving API's pseudonym key, and the variable it is read from.
PSEUDONYM_KEY_JOBS = ("performance",)
PSEUDONYM_KEY_ENV = "ATTRITION_SERVING_PSEUDONYM_KEY"


def secret_environment(job: str, settings: DatabricksSettings) -> dict[str, str]:
    """Secret references for the job cluster's environment: Databricks resolves
    ``{{secrets/scope/key}}`` when the cluster starts, so the secret is never in the payload."""
    if job in PSEUDONYM_KEY_JOBS and settings.pseudonym_key_secret:
        return {PSEUDONYM_KEY_ENV: f"{{{{secrets/{settings.pseudonym_key_secret}}}}}"}
    return {}


def submit_payload(
    job: str,
    parameters: Sequence[str],
    *,
    token: str,
    run_name: str,
    settings: DatabricksSettings,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``jobs/runs/submit`` body: ``jobs/<job>.py`` on a job cluster (or an existing one)."""
    task: dict[str, Any] = {
        "task_key": job.replace("-", "_"),
        "spark_python_task": {
            "python_file": f"{settings.jobs_path.rstrip('/')}/{job}.py",
            "parameters": [str(p) for p in parameters],
        },
        "libraries": [{"whl": settings.wheel}],
        "timeout_seconds": settings.timeout_seconds,
    }
    if settings.existing_cluster_id:
        task["existing_cluster_id"] = settings.existing_cluster_id
    else:
        task["new_cluster"] = {
            "spark_version": settings.spark_version,
            "node_type_id": settings.node_type_id,
            "num_workers": settings.num_workers,
            "spark_env_vars": {
                "ATTRITION_TARGET": "azure",
                **secret_environment(job, settings),
                **(environment or {}),
            },
        }
    return {
        "run_name": run_name,
        "idempotency_token": token,
        "timeout_seconds": settings.timeout_seconds,
        "tasks": [task],
    }


def task_run_id(run: dict[str, Any]) -> int:
    """The run id of the single task of a submitted run (``runs/get-output`` needs the task's)."""
    tasks = run.get("tasks") or []
    if len(tasks) != 1:
        raise JobOutputError(f"expected one task in run {run.get('run_id')}, found {len(tasks)}")
    return int(tasks[0]["run_id"])


def result_from_run_output(output: dict[str, Any]) -> dict[str, Any]:
    """The job's JSON result: the last line of its stdout that parses as a JSON object."""
    logs = output.get("logs") or ""
    for line in reversed(logs.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    truncated = " (the log was truncated)" if output.get("logs_truncated") else ""
    raise JobOutputError(f"the job's output has no JSON result line{truncated}")
