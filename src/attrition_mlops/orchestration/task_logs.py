"""Task log files for DAG runs made in this process with ``dag.test()`` (``make demo``,
``make airflow``), where the Airflow UI of ``make up`` reads them.

A worker's supervisor writes each attempt's log as JSON lines to ``[logging] base_log_folder /
log_filename_template`` (``dag_id=…/run_id=…/task_id=…/attempt=N.log``); the api-server's
reader (``FileTaskHandler``) reads that file, and when there is none asks the worker's log
server: "Log file not found on worker". ``dag.test()`` runs each task in this
process (``InProcessTestSupervisor``), whose logs go only to the terminal: no file, so every
demo run showed that message. Its options (``use_executor``) hand tasks to an executor instead,
which needs an api-server running the Execution API: the demo has none.

So, while ``task_log_files()`` is active, the task runner's own events are copied to the file
the reader expects: an Airflow listener (a supported hook, called by the task runner in this
process) opens the attempt's file when the task starts running and closes it when the task
succeeds, fails or skips; the path is rendered by the reader's own function, so writer and
reader cannot disagree, and created by the task runner's ``init_log_file``. Each event is one
JSON line like the supervisor's (``timestamp``, ``level``, ``event``, ``logger``, fields).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from airflow.listeners import hookimpl


def log_path(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> Path:
    """The attempt's log file, exactly where the api-server's log reader looks for it."""
    from airflow.configuration import conf
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk.log import init_log_file
    from airflow.utils.log.file_task_handler import FileTaskHandler
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalar(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
                TaskInstance.map_index == map_index,
            )
        )
        if ti is None:
            raise LookupError(f"no task instance {dag_id}/{run_id}/{task_id}[{map_index}]")
        # The reader's own renderer (private, hence pinned by the browser test).
        handler = FileTaskHandler(base_log_folder=conf.get("logging", "base_log_folder"))
        relative = handler._render_filename(ti, try_number, session=session)
    return init_log_file(relative)


class TaskLogFile:
    """The open log file of the task running now in this process, if any.

    One object plays three parts: an Airflow listener (opens and closes the file), a structlog
    processor (copies each structlog event, then lets it go on to the terminal) and a logging
    handler (copies each stdlib record).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self.paths: list[Path] = []  # every file written, in order

    # -- listener: the task runner calls these in this process ----------------------------------
    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        path = log_path(
            task_instance.dag_id,
            task_instance.run_id,
            task_instance.task_id,
            task_instance.map_index,
            task_instance.try_number,
        )
        with self._lock:
            self._close()
            self._file = path.open("ab")
            self.paths.append(path)

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self.close()

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self.close()

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        self.close()

    # -- sinks ------------------------------------------------------------------------------------
    def write(self, event: dict[str, Any]) -> None:
        from airflow.sdk.log import mask_logs

        with self._lock:
            if self._file is None:
                return
            line = json.dumps(mask_logs(None, "", event), default=str, ensure_ascii=False)
            self._file.write(line.encode() + b"\n")
            self._file.flush()  # the UI may read the file while the task runs

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """structlog processor: copy the event (already stamped and named) to the file."""
        if self._file is not None:
            import structlog

            event = structlog.processors.format_exc_info(logger, method_name, dict(event_dict))
            event.setdefault("level", method_name)
            event.setdefault("timestamp", _now())
            self.write(event)
        return event_dict

    def handler(self) -> logging.Handler:
        """A logging handler copying stdlib records (libraries, our own modules) to the file."""
        owner = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if owner._file is None:
                    return
                event = {
                    "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
                    "level": record.levelname.lower(),
                    "event": record.getMessage(),
                    "logger": record.name,
                }
                if record.exc_info:
                    event["exception"] = logging.Formatter().formatException(record.exc_info)
                owner.write(event)

        return _Handler(level=logging.INFO)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


@contextlib.contextmanager
def task_log_files() -> Iterator[TaskLogFile]:
    """While active, each task run by ``dag.test()`` in this process writes its log file."""
    import structlog
    from airflow.sdk.listener import get_listener_manager

    tee = TaskLogFile()
    manager = get_listener_manager()  # the task runner's (cached) manager
    manager.add_listener(tee)
    # In place, before the final renderer: loggers structlog already cached share this list.
    processors = structlog.get_config()["processors"]
    processors.insert(len(processors) - 1, tee)
    handler = tee.handler()
    logging.getLogger().addHandler(handler)
    try:
        yield tee
    finally:
        logging.getLogger().removeHandler(handler)
        processors.remove(tee)
        manager.pm.unregister(tee)
        tee.close()
