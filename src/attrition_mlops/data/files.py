"""Writing files so that a reader never sees half of one: write a temporary sibling, then rename."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet_atomic(table: pa.Table, target: Path, **options) -> None:
    """Write ``table`` to ``target`` atomically (same folder, so the rename never crosses devices).

    A crash leaves at most a hidden ``.<name>.<random>.tmp`` beside the target, never a partial
    target; a rerun replaces the target whole. A failure the process survives (a full disk, a
    refused rename) removes its temporary file before it propagates.
    """
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, **options)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
