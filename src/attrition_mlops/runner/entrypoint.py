"""What every job entrypoint in ``jobs/`` shares: logging, the JSON result, clean failures.

A job prints its result as one JSON line on stdout (and to ``--output-json`` when given) so a
DAG task can pass it on as a small XCom. A result with ``"skipped": true`` (and a ``reason``) means
there was nothing to do; the DAG's task shows as skipped. Failures the operator can act on
(invalid data, a missing, conflicting or modified snapshot, no holdout, a lost promotion race,
nothing to roll back, an output partition another run is writing, an unreachable MLflow server)
exit 2 with one clear message on stderr; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_EXPECTED_FAILURE = 2


def _expected_errors() -> tuple[type[Exception], ...]:
    from attrition_mlops.data.snapshots import SnapshotError
    from attrition_mlops.data.split import HoldoutError
    from attrition_mlops.data.validation import DataValidationError
    from attrition_mlops.gate.evaluate import EvaluationError
    from attrition_mlops.registry import (
        ConcurrentAliasMoveError,
        RegistryLockError,
        RollbackError,
        UnknownModelError,
    )
    from attrition_mlops.registry.connection import TrackingServerUnreachableError
    from attrition_mlops.scoring.partition_lock import PartitionBusyError, PartitionConflictError

    return (
        DataValidationError,
        SnapshotError,
        HoldoutError,
        EvaluationError,
        ConcurrentAliasMoveError,
        RegistryLockError,
        RollbackError,
        UnknownModelError,
        PartitionBusyError,
        PartitionConflictError,
        TrackingServerUnreachableError,
    )


def new_run_key(prefix: str = "manual") -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def run_job(work: Callable[[], dict[str, Any]], output_json: Path | None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("alembic", "mlflow", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        result = work()
    except _expected_errors() as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_EXPECTED_FAILURE
    line = json.dumps(result, default=str)
    if output_json is not None:
        output_json.parent.mkdir(parents=True, exist_ok=True)
        output_json.write_text(line + "\n")
    print(line)
    return EXIT_OK
