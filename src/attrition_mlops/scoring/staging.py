"""The batch scorer's work on disk: the staging folder, staged and gathered rejects, publishing.

``scoring.batch`` streams and scores; this module owns what a run leaves in
``_staging/run_date=…`` and how the finished folder replaces the published partition (renames
only, so readers never see half of one). The layout is in :mod:`attrition_mlops.scoring.batch`.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from attrition_mlops.data.files import write_parquet_atomic as _write_atomic
from attrition_mlops.scoring.manifest import SUCCESS_FILE, check_partition
from attrition_mlops.scoring.partition_lock import PartitionConflictError

STATE_FILE = "_STATE.json"
STAGED_REJECTS = "_rejects"  # inside the staging folder: one file per batch that had rejects
_TEXT = pa.large_string()


def prepare_staging(staging: Path, key: dict) -> tuple[int, str]:
    """Reuse a matching interrupted run's parts, else start clean: (parts reused, scored_at).

    A resumed run keeps the first attempt's ``scored_at`` so one partition has one timestamp.
    """
    state_path = staging / STATE_FILE
    if state_path.exists():
        saved = json.loads(state_path.read_text())
        if saved["key"] == key:
            return len(list(staging.glob("part-*.parquet"))), saved["scored_at"]
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    state_path.write_text(json.dumps({"key": key, "scored_at": scored_at}))
    return 0, scored_at


def stage_rejects(staging: Path, index: int, rejects: pd.DataFrame) -> None:
    """Written before the batch's part, so a part on disk always has its rejects staged."""
    if rejects.empty:
        return
    folder = staging / STAGED_REJECTS
    folder.mkdir(exist_ok=True)
    names = [str(name) for name in rejects.columns]
    # As received: every value as text, except where the row came from (its file's numbering).
    schema = pa.schema([(name, pa.int64() if name == "source_row" else _TEXT) for name in names])
    text = [name for name in names if name != "source_row"]
    frame = rejects.astype(dict.fromkeys(text, "str"))
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    _write_atomic(table, folder / f"part-{index:05d}.parquet")


def write_rejects(root: Path, part_name: str, staged: Path) -> Path | None:
    """Gather the staged rejects into one file, one batch in memory at a time."""
    folder = root / "_rejects" / part_name
    shutil.rmtree(folder, ignore_errors=True)
    parts = sorted(staged.glob("part-*.parquet"))
    if not parts:
        return None
    folder.mkdir(parents=True)
    target = folder / "rejects.parquet"
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    with pq.ParquetWriter(tmp, pq.read_schema(parts[0])) as writer:
        for part in parts:
            writer.write_table(pq.read_table(part))
    os.replace(tmp, target)
    return target


def publish(staging: Path, final: Path, result: Any) -> None:
    """Swap the finished staging folder in as the partition; the old copy goes away whole."""
    (staging / STATE_FILE).unlink()
    shutil.rmtree(staging / STAGED_REJECTS, ignore_errors=True)
    (staging / SUCCESS_FILE).write_text(json.dumps(result.to_dict(), indent=2))
    problems = check_partition(staging)
    if problems:  # only possible when the lock could not be taken (docs/batch-scoring.md)
        raise PartitionConflictError(
            f"{final}: not published, the staged parts do not match this run's manifest: "
            + "; ".join(problems[:5])
        )
    trash = final.with_name(f".{final.name}.replaced-{uuid.uuid4().hex}")
    if final.exists():
        os.replace(final, trash)
    os.replace(staging, final)
    shutil.rmtree(trash, ignore_errors=True)
