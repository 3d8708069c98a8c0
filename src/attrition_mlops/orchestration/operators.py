"""One operator for every ``jobs/`` entrypoint, on either target.

:class:`PipelineJobOperator` is the provider's ``DatabricksSubmitRunOperator`` (deferrable, with
an idempotency token and run cancellation on kill) when ``ATTRITION_TARGET=azure``, and runs the
same entrypoint as a local process when ``ATTRITION_TARGET=local``. The target is read when the
task runs, never when the DAG file is parsed, so DAG files do not branch on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator

from attrition_mlops.orchestration.links import (
    DatabricksRunLink,
    MLflowRunLink,
    ModelVersionLink,
    push_links,
)


class PipelineJobOperator(DatabricksSubmitRunOperator):
    """Run ``jobs/<job>.py`` with ``job_args`` (templated); the job's JSON result is the XCom."""

    template_fields: Sequence[str] = (*DatabricksSubmitRunOperator.template_fields, "job_args")
    operator_extra_links = (DatabricksRunLink(), MLflowRunLink(), ModelVersionLink())
    ui_color = "#d8e8f8"

    def __init__(self, *, job: str, job_args: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        super().__init__(**kwargs)
        self.job = job
        self.job_args = job_args
        self._process: subprocess.Popen | None = None

    def execute(self, context: Any) -> Any:
        from attrition_mlops.settings import get_settings

        if get_settings().target == "local":
            return self._run_local(context)
        self._prepare_databricks(context)
        result = super().execute(context)  # deferrable: defers, execute_complete finishes
        if self.deferrable:  # reached only when the run had already finished (a retry)
            return self._databricks_result(context)
        return result  # polled in the worker: get_job_result built it

    # -- local target ---------------------------------------------------------------------------
    def _run_local(self, context: Any) -> dict[str, Any]:
        from attrition_mlops import local_runner

        env = {}
        if not os.environ.get(local_runner.JOBS_DIR_ENV):
            env[local_runner.JOBS_DIR_ENV] = str(_jobs_dir_next_to(context["dag"].fileloc))
        args = [str(a) for a in self.job_args]
        self.log.info("local target: running jobs/%s.py %s", self.job, " ".join(args))

        def started(proc: subprocess.Popen) -> None:
            self._process = proc

        result = local_runner.run_job(self.job, args, env=env, on_start=started)
        push_links(context, result)
        return result

    # -- azure target ---------------------------------------------------------------------------
    def _prepare_databricks(self, context: Any) -> None:
        from attrition_mlops.databricks import idempotency_token, submit_payload
        from attrition_mlops.settings import get_databricks_settings

        settings = get_databricks_settings()
        ti = context["ti"]
        token = idempotency_token(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
        self.json = submit_payload(
            self.job,
            [str(a) for a in self.job_args],
            token=token,
            run_name=f"{ti.dag_id}.{ti.task_id} {ti.run_id}",
            settings=settings,
        )
        self.databricks_conn_id = settings.conn_id
        self.polling_period_seconds = settings.polling_period_seconds

    def execute_complete(self, context: Any, event: dict) -> dict[str, Any]:
        super().execute_complete(context, event)  # raises when the run failed
        self.run_id = event["run_id"]
        return self._databricks_result(context)

    def get_job_result(self, external_id: Any, context: Any) -> dict[str, Any]:
        super().get_job_result(external_id, context)
        return self._databricks_result(context)

    def _databricks_result(self, context: Any) -> dict[str, Any]:
        from attrition_mlops.databricks import result_from_run_output, task_run_id

        run = self._hook.get_run(self.run_id)
        result = result_from_run_output(self._hook.get_run_output(task_run_id(run)))
        push_links(context, result)
        return result

    def on_kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.log.info("stopping local job process %s", self._process.pid)
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
            return
        super().on_kill()  # cancels the Databricks run


def _jobs_dir_next_to(dag_file: str) -> Path:
    """``<project>/jobs`` for a DAG in ``<project>/dags`` (the repo and the compose image)."""
    return Path(dag_file).resolve().parent.parent / "jobs"
