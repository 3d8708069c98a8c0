"""Labelled snapshots: dated, immutable partitions of validated, labelled rows.

Layout under the snapshot root (``<state_dir>/snapshots`` by default)::

    as_of=2017-03-31/data.parquet      the validated rows (the contract's 35 columns, typed)
    as_of=2017-03-31/manifest.json     sha256 of data.parquet, rows, positives, as_of, source, …

A snapshot is validated whole on arrival (the feature contract, a label in every row, both
classes present) and refused whole if anything is wrong. It is written into a temporary folder
and renamed into place, so a reader never sees a half-written partition and two writers of the
same ``as_of`` never interleave: the loser of the rename finds the winner's partition. An
``as_of`` is immutable: adding different content under it is refused, adding identical content
again is a no-op. Loading verifies the data file against the manifest's sha256, so a modified or
truncated file is a clear error, never a silently different training set.

The bundled IBM HR data is the first snapshot, added on first use (``ensure_bundled_snapshot``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import Snapshot, file_sha256, load_snapshot
from attrition_mlops.data.split import frame_sha256
from attrition_mlops.data.validation import DataValidationError, Problem, validate_frame

DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1
#: The bundled data set states no collection date. This documented constant (its public release
#: on Kaggle, spring 2017) dates it, so it sorts before any snapshot collected since.
BUNDLED_AS_OF = date(2017, 3, 31)
BUNDLED_SOURCE = "IBM HR Attrition (bundled)"
_PARTITION = re.compile(r"as_of=(\d{4}-\d{2}-\d{2})")


class SnapshotError(RuntimeError):
    """The snapshot store cannot give what was asked (unknown as_of, broken partition)."""


class SnapshotConflictError(SnapshotError):
    """An as_of already holds different content: snapshots are immutable."""


class SnapshotIntegrityError(SnapshotError):
    """A partition's data file does not match its manifest (modified or half-written)."""


@dataclass(frozen=True)
class SnapshotManifest:
    as_of: str
    sha256: str  # of data.parquet: what a run records and what "unchanged" compares
    content_sha256: str  # of the rows (order- and format-independent): what "identical" means
    rows: int
    positives: int
    source: str
    created_at: str
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class LabelledSnapshot:
    """A loaded partition: its manifest and the validated rows (``snapshot.path`` is the file)."""

    manifest: SnapshotManifest
    snapshot: Snapshot


@dataclass(frozen=True)
class AddResult:
    manifest: SnapshotManifest
    path: Path
    added: bool  # False: this as_of already held identical content (a no-op)

    def to_dict(self) -> dict[str, object]:
        return {"added": self.added, "path": str(self.path), **self.manifest.to_dict()}


def partition_dir(root: Path, as_of: date) -> Path:
    return Path(root) / f"as_of={as_of.isoformat()}"


def add_snapshot(
    data: Path | str | pd.DataFrame, as_of: date, *, source: str, root: Path
) -> AddResult:
    """Validate ``data`` (a CSV/Parquet path or a frame) and store it as the ``as_of`` partition.

    Raises DataValidationError (nothing written) when the rows break the contract, and
    SnapshotConflictError when ``as_of`` already holds different rows.
    """
    frame = _validated(data)
    content = frame_sha256(frame)
    final = partition_dir(root, as_of)
    if final.exists():
        return _existing(final, content)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        frame.reset_index(drop=True).to_parquet(tmp / DATA_FILE, index=False)
        manifest = SnapshotManifest(
            as_of=as_of.isoformat(),
            sha256=file_sha256(tmp / DATA_FILE),
            content_sha256=content,
            rows=len(frame),
            positives=int((frame[contract.LABEL] == contract.POSITIVE_LABEL).sum()),
            source=source,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
        try:
            os.rename(tmp, final)  # atomic; fails if another writer created the partition first
        except OSError:
            if not final.exists():
                raise
            return _existing(final, content)
        return AddResult(manifest, final, added=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _validated(data: Path | str | pd.DataFrame) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        try:
            frame = validate_frame(data)
        except DataValidationError as err:
            raise DataValidationError(err.problems, source="the snapshot frame") from None
        where = "the snapshot frame"
    else:
        frame, where = load_snapshot(data).frame, str(data)
    missing = [v for v in contract.LABEL_VALUES if not (frame[contract.LABEL] == v).any()]
    if missing:
        message = f"a labelled snapshot needs both classes; no row has {contract.LABEL} {missing}"
        raise DataValidationError([Problem(contract.LABEL, message)], source=where)
    return frame


def _existing(final: Path, content: str) -> AddResult:
    manifest = read_manifest(final)
    if manifest.content_sha256 != content:
        raise SnapshotConflictError(
            f"snapshot as_of={manifest.as_of} already exists in {final} with different rows "
            f"(content sha256 {manifest.content_sha256[:12]}…, this one {content[:12]}…); "
            "snapshots are immutable: add the new rows under a new --as-of date"
        )
    return AddResult(manifest, final, added=False)


def read_manifest(partition: Path) -> SnapshotManifest:
    path = Path(partition) / MANIFEST_FILE
    try:
        manifest = SnapshotManifest(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise SnapshotError(f"{partition}: no {MANIFEST_FILE}; not a complete snapshot") from None
    except (ValueError, TypeError) as err:
        raise SnapshotError(f"{path}: unreadable manifest ({err})") from None
    if Path(partition).name != f"as_of={manifest.as_of}":
        raise SnapshotError(f"{path}: records as_of {manifest.as_of}, the folder says otherwise")
    return manifest


def list_snapshots(root: Path) -> list[SnapshotManifest]:
    """Every stored snapshot, oldest first (temporary folders of writes in flight are ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [read_manifest(p) for p in root.iterdir() if _PARTITION.fullmatch(p.name)]
    return sorted(found, key=lambda m: m.as_of)


def latest_snapshot(root: Path) -> SnapshotManifest | None:
    stored = list_snapshots(root)
    return stored[-1] if stored else None


def load_snapshot_partition(as_of: date, root: Path) -> LabelledSnapshot:
    """The ``as_of`` partition, its data file verified against the manifest, then validated."""
    partition = partition_dir(root, as_of)
    if not partition.is_dir():
        known = ", ".join(m.as_of for m in list_snapshots(root)) or "none"
        raise SnapshotError(f"no snapshot as_of={as_of.isoformat()} in {root} (stored: {known})")
    manifest = read_manifest(partition)
    path = partition / DATA_FILE
    actual = file_sha256(path) if path.is_file() else "missing"
    if actual != manifest.sha256:
        raise SnapshotIntegrityError(
            f"{path}: sha256 {actual} does not match the manifest's {manifest.sha256}; the file "
            "was modified or half-written. Restore it, or remove the partition and add it again"
        )
    snapshot = load_snapshot(path)
    if snapshot.n_rows != manifest.rows:
        raise SnapshotIntegrityError(f"{path}: {snapshot.n_rows} rows, manifest {manifest.rows}")
    return LabelledSnapshot(manifest, snapshot)


def ensure_bundled_snapshot(root: Path) -> SnapshotManifest:
    """The bundled IBM HR data as the ``BUNDLED_AS_OF`` snapshot, added if it is not stored."""
    partition = partition_dir(root, BUNDLED_AS_OF)
    if partition.is_dir():
        return read_manifest(partition)
    bundled = load_snapshot()  # None: the shipped file, checked against its own checksum
    return add_snapshot(bundled.frame, BUNDLED_AS_OF, source=BUNDLED_SOURCE, root=root).manifest


def select_snapshot(root: Path, as_of: date | None = None) -> LabelledSnapshot:
    """The snapshot named by ``as_of``, else the latest; the bundled one exists from first use."""
    ensure_bundled_snapshot(root)
    if as_of is None:
        as_of = date.fromisoformat(list_snapshots(root)[-1].as_of)
    return load_snapshot_partition(as_of, root)
