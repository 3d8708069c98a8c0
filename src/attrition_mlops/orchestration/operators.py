"""One operator for every ``jobs/`` entrypoint, on either target.

:class:`PipelineJobOperator` runs ``jobs/<job>.py``:

- ``ATTRITION_TARGET=azure``: through the Databricks provider's ``DatabricksSubmitRunOperator``
  (deferrable by default, an idempotency token derived from the DAG, task and run ids so a retry
  never submits a second run, the run cancelled when the task is killed), as a
  ``spark_python_task`` on a job cluster;
- ``ATTRITION_TARGET=local``: as a child process of the worker.

A job whose result says ``"skipped": true`` had nothing to do (training on the snapshot the
champion was trained on, re-adding an identical snapshot): the task ends *skipped* with the job's
reason, so its downstream tasks (the gate, an Asset event) are skipped too; the result stays
readable as the XCom ``job_result``.

The target is read when the task runs, never when the DAG file is parsed, so DAG files do not
branch on it. The provider is imported only in ``execute`` as well: importing it costs ~2 s,
which would blow the DAG files' parse budget.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from attrition_mlops.orchestration.links import (
    DatabricksRunLink,
    MLflowRunLink,
    ModelVersionLink,
    push_links,
)

#: The XCom key holding a skipped job's result (a successful job's result is the return value).
JOB_RESULT_KEY = "job_result"


class PipelineJobOperator(BaseOperator):
    """Run ``jobs/<job>.py`` with ``job_args`` (templated); the job's JSON result is the XCom."""

    template_fields: Sequence[str] = ("job_args",)
    operator_extra_links = (DatabricksRunLink(), MLflowRunLink(), ModelVersionLink())
    ui_color = "#d8e8f8"

    def __init__(
        self, *, job: str, job_args: Sequence[str] = (), deferrable: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.job_args = job_args
        self.deferrable = deferrable
        self._process: subprocess.Popen | None = None
        self._databricks: Any = None

    def execute(self, context: Any) -> Any:
        from attrition_mlops.settings import get_settings

        if get_settings().target == "local":
            return self._run_local(context)
        self._databricks = self.databricks_operator(context, self._generation(context))
        # Deferrable: submits, then raises TaskDeferred; the task resumes in execute_complete.
        # Returns here only when not deferrable, or when a retry found the run already finished.
        self._databricks.execute(context)
        return self._databricks_result(context, self._databricks)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        operator = self.databricks_operator(context)
        operator.execute_complete(context, event)  # raises when the run failed
        operator.run_id = event["run_id"]
        return self._databricks_result(context, operator)

    def on_kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.log.info("stopping local job process %s", self._process.pid)
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        elif self._databricks is not None:
            self._databricks.on_kill()  # cancels the Databricks run

    # -- local target ---------------------------------------------------------------------------
    def _run_local(self, context: Any) -> dict[str, Any]:
        from attrition_mlops.runner import local

        env = {}
        if not os.environ.get(local.JOBS_DIR_ENV):
            env[local.JOBS_DIR_ENV] = str(_jobs_dir_next_to(context["dag"].fileloc))
        args = [str(a) for a in self.job_args]
        self.log.info("local target: running jobs/%s.py %s", self.job, " ".join(args))

        def started(proc: subprocess.Popen) -> None:
            self._process = proc

        # The job's summary for people goes to the task log (the UI), not only to a terminal.
        result = local.run_job(self.job, args, env=env, echo=self.log.info, on_start=started)
        push_links(context, result)
        return _skip_if_nothing_done(context, self.job, result)

    # -- azure target ---------------------------------------------------------------------------
    def databricks_operator(self, context: Any, generation: int = 0) -> Any:
        """The provider operator that submits this job (built per execution, never at parse)."""
        from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator

        from attrition_mlops.runner.databricks import idempotency_token, submit_payload
        from attrition_mlops.settings import get_databricks_settings

        settings = get_databricks_settings()
        ti = context["ti"]
        payload = submit_payload(
            self.job,
            [str(a) for a in self.job_args],
            token=idempotency_token(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, generation),
            run_name=f"{ti.dag_id}.{ti.task_id} {ti.run_id}",
            settings=settings,
        )
        return DatabricksSubmitRunOperator(
            task_id=self.task_id,
            json=payload,
            databricks_conn_id=settings.conn_id,
            polling_period_seconds=settings.polling_period_seconds,
            deferrable=self.deferrable,
        )

    def _generation(self, context: Any) -> int:
        """The token generation this try submits: the first whose run is active or succeeded.

        Try 1 submits generation 0. A later try (a retry, or a clear) walks the earlier
        generations: submitting an earlier token again returns its run (or starts it, if that
        try died before submitting), which this try reuses while it is active or if it
        succeeded; a failed or cancelled run is passed over, so the job runs again instead of
        the retry fetching the same failure. At most one run is active per task at any time.
        """
        from attrition_mlops.runner.databricks import reuse_run

        for generation in range(context["ti"].try_number - 1):
            operator = self.databricks_operator(context, generation)
            hook = operator._hook
            run_id = hook.submit_run(operator._prepare_submit_json(context))
            state = hook.get_run_state(run_id)
            if reuse_run(state.life_cycle_state, state.result_state):
                return generation
            self.log.info(
                "Databricks run %s of an earlier try ended %s %s: submitting the job again",
                run_id,
                state.life_cycle_state,
                state.result_state,
            )
        return max(context["ti"].try_number - 1, 0)

    def _databricks_result(self, context: Any, operator: Any) -> dict[str, Any]:
        from attrition_mlops.runner.databricks import result_from_run_output, task_run_id

        hook = operator._hook
        run = hook.get_run(operator.run_id)
        result = result_from_run_output(hook.get_run_output(task_run_id(run)))
        push_links(context, result, databricks=True)
        return _skip_if_nothing_done(context, self.job, result)


def _skip_if_nothing_done(context: Any, job: str, result: dict[str, Any]) -> dict[str, Any]:
    if not result.get("skipped"):
        return result
    from airflow.sdk.exceptions import AirflowSkipException

    context["ti"].xcom_push(key=JOB_RESULT_KEY, value=result)
    raise AirflowSkipException(f"{job}: {result.get('reason') or 'nothing to do'}")


def _jobs_dir_next_to(dag_file: str) -> Path:
    """``<project>/jobs`` for a DAG in ``<project>/dags`` (the repo and the compose image)."""
    return Path(dag_file).resolve().parent.parent / "jobs"
