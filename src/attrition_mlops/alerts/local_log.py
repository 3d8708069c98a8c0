"""The local alert log: an append-only JSON-lines file, written first and always.

Each alert is one ``alert`` record; :func:`attrition_mlops.alerts.dispatch` follows it with one
``delivery`` record naming the transports that succeeded, failed or were skipped.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrition_mlops.alerts.config import get_alert_settings
from attrition_mlops.alerts.model import ALERT_SCHEMA, Alert


def append_line(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode()
    with path.open("ab") as fh:
        # The lock keeps lines whole when a DAG callback and a task write at the same moment.
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_alert_log(alert: Alert, path: Path | None = None) -> Path:
    """Append the alert as one JSON line (record ``alert``); returns the log path."""
    target = path or get_alert_settings().resolved_log_path
    append_line(target, {"record": "alert", "schema": ALERT_SCHEMA, **alert.as_json()})
    return target


def read_alert_log(path: Path | None = None) -> list[dict[str, Any]]:
    """Every record in the log, oldest first (``alert`` and ``delivery`` records)."""
    target = path or get_alert_settings().resolved_log_path
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text().splitlines() if line.strip()]
