"""The ``local`` target's job backend: run a ``jobs/`` entrypoint as a separate process.

The same files run on Databricks as ``spark_python_task``; locally each is a child process with
the current interpreter, so a job's memory and imports never leak into its caller (an Airflow
worker, the demo) and its exit code means the same in both places.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

JOBS_DIR_ENV = "ATTRITION_JOBS_DIR"


class JobFailedError(RuntimeError):
    def __init__(self, job: str, returncode: int, stderr: str) -> None:
        self.job, self.returncode, self.stderr = job, returncode, stderr
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        super().__init__(f"job {job} exited {returncode}:\n{tail}")


def jobs_dir() -> Path:
    return Path(os.environ.get(JOBS_DIR_ENV, Path.cwd() / "jobs"))


def run_job(
    job: str,
    args: list[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    echo: bool | Callable[[str], object] = True,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> dict[str, Any]:
    """Run ``jobs/<job>.py`` with ``args``; return its JSON result or raise JobFailedError.

    ``on_start`` receives the child process as soon as it exists, so a caller that can be killed
    (an Airflow task's ``on_kill``) can stop the job with it. ``echo``: print the job's output for
    people (True), drop it (False), or pass it to a callable (an Airflow task's logger).
    """
    script = jobs_dir() / f"{job}.py"
    if not script.is_file():
        raise FileNotFoundError(f"no job entrypoint {script} (set {JOBS_DIR_ENV})")
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, str(script), *(args or []), "--output-json", str(result_file)]
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if on_start is not None:
            on_start(proc)
        stdout, stderr = proc.communicate()
        if echo:
            # Everything but the final JSON line is for people (the decision summary, etc.).
            human = stdout.rstrip("\n").split("\n")[:-1]
            if any(line.strip() for line in human):
                (print if echo is True else echo)("\n".join(human))
        if proc.returncode != 0:
            raise JobFailedError(job, proc.returncode, stderr)
        return json.loads(result_file.read_text())
