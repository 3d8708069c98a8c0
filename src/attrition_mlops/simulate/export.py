"""SIMULATED traffic written as the API's inference log: its lines, or a file of its export."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from attrition_mlops.data import contract, inference_log
from attrition_mlops.simulate.generate import SIMULATED, require_simulated


def simulated_log_lines(
    frame: pd.DataFrame,
    *,
    model_name: str,
    model_version: str,
    day: date,
    pseudonymise: inference_log.Pseudonymiser,
    per_request: int = 5,
    request_id_prefix: str = "simulated",
) -> Iterator[str]:
    """Inference-log lines, exactly as the API writes them, for SIMULATED traffic ``frame``.

    One request per ``per_request`` records, spread evenly over ``day`` (UTC) so that any number
    of records stays inside that day's window. The outputs are placeholders (the drift check
    reads inputs only); request ids ``<request_id_prefix>-<n>`` mark the lines simulated.
    """
    if per_request < 1:
        raise ValueError(f"per_request must be >= 1, got {per_request}")
    records = frame[list(contract.INPUT_COLUMNS)].to_dict(orient="records")
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    step = timedelta(days=1) / max(1, -(-len(records) // per_request))
    placeholder = {"probability": 0.0, "label": contract.NEGATIVE_LABEL, "is_outlier": False}
    for n, i in enumerate(range(0, len(records), per_request)):
        batch = records[i : i + per_request]
        yield inference_log.dump_line(
            inference_log.build_record(
                timestamp=start + n * step,
                request_id=f"{request_id_prefix}-{n}",
                model_name=model_name,
                model_version=model_version,
                inputs=batch,
                outputs=[placeholder] * len(batch),
                latency_ms=0.0,
                pseudonymise=pseudonymise,
                simulated=True,
            )
        )


def write_export_logs(
    frame: pd.DataFrame,
    export_dir: Path | str,
    day: date,
    *,
    model_name: str,
    model_version: str,
    pseudonymise: inference_log.Pseudonymiser | None = None,
    per_request: int = 5,
) -> Path:
    """Write SIMULATED ``frame`` as one file of the API's local export; returns its path.

    The file is ``<export_dir>/date=YYYY-MM-DD/simulated-<scenario>-seed<seed>-<token>.jsonl``
    (exactly the layout and schema the drift job reads), written under a temporary name and
    renamed, so a concurrent reader never sees half of it. Request ids are
    ``simulated-<scenario>-<token>-<n>``. Without ``pseudonymise`` a random key is used.
    """
    label = require_simulated(frame)
    scenario, seed = label.get("scenario", "unknown"), label.get("seed", "x")
    token = uuid.uuid4().hex[:12]
    path = inference_log.partition_dir(Path(export_dir), day) / (
        f"{SIMULATED}-{scenario}-seed{seed}-{token}.jsonl"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = pseudonymise or inference_log.Pseudonymiser(secrets.token_bytes(32))
    lines = simulated_log_lines(
        frame,
        model_name=model_name,
        model_version=model_version,
        day=day,
        pseudonymise=key,
        per_request=per_request,
        request_id_prefix=f"{SIMULATED}-{scenario}-{token}",
    )
    partial = path.with_name(f".{path.name}.partial")  # not *.jsonl: readers skip it
    try:
        with open(partial, "x", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in lines)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)  # no debris from a failed or interrupted write
        raise
    return path
