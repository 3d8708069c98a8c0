"""What ties a predictions partition to the one input it was scored from.

Each part file carries the SHA-256 of the run's input in its Parquet metadata, and the manifest
(``_SUCCESS.json``) records the same digest, the per-file digests and the row counts.
:func:`check_partition` holds a partition to its manifest: every part from that input, and the
part rows adding up to ``rows_scored``. The job runs it on the staged partition before
publishing, so a partition whose parts came from two inputs is never published.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SUCCESS_FILE = "_SUCCESS.json"
PART_DIGEST_KEY = b"attrition.input_sha256"


def input_digest(files: tuple[Path, ...], root: Path) -> tuple[str, list[dict]]:
    """(digest of the whole input, per-file path/bytes/sha256). For one file the digest is that
    file's SHA-256 (what ``sha256sum`` prints); for a folder, the SHA-256 of its sorted
    ``relative/path sha256`` lines."""
    entries = []
    for f in files:
        with f.open("rb") as handle:
            sha = hashlib.file_digest(handle, "sha256").hexdigest()
        entries.append({"path": str(f), "bytes": f.stat().st_size, "sha256": sha})
    if root.is_file():
        return entries[0]["sha256"], entries
    lines = "".join(f"{Path(e['path']).relative_to(root)} {e['sha256']}\n" for e in entries)
    return hashlib.sha256(lines.encode()).hexdigest(), entries


def tag_part(table: pa.Table, digest: str) -> pa.Table:
    return table.replace_schema_metadata({PART_DIGEST_KEY: digest.encode()})


def check_partition(folder: Path) -> list[str]:
    """What in ``folder`` disagrees with its manifest (empty when the two match)."""
    manifest = json.loads((folder / SUCCESS_FILE).read_text())
    digest = manifest["input_sha256"]
    problems, rows = [], 0
    for part in sorted(folder.glob("part-*.parquet")):
        meta = pq.read_metadata(part)
        rows += meta.num_rows
        found = (meta.metadata or {}).get(PART_DIGEST_KEY, b"").decode() or "none"
        if found != digest:
            problems.append(f"{part.name} was scored from input {found}, not {digest}")
    if rows != manifest["rows_scored"]:
        problems.append(f"the parts hold {rows} rows, the manifest says {manifest['rows_scored']}")
    return problems
