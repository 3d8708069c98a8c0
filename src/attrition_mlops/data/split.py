"""The frozen holdout: created once, stored with its hash, reused by every later evaluation.

The first training run draws a stratified, seeded holdout from its snapshot and freezes it in the
state directory (``holdout.csv`` + ``holdout.json``). Every later run, on any snapshot, trains only
on employees whose ``EmployeeNumber`` is not in the frozen holdout, and every evaluation scores
champion and challenger on exactly these rows; the stored hash is checked on every load so a
modified holdout fails loudly instead of silently changing what "better" means.

Refreshing the holdout is a deliberate act (delete the folder); both models are then compared on
the new one, which neither has seen.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from attrition_mlops.data import contract

HOLDOUT_FILE = "holdout.csv"
META_FILE = "holdout.json"


class HoldoutError(RuntimeError):
    """The frozen holdout is missing, tampered with or unusable."""


@dataclass(frozen=True)
class HoldoutMeta:
    sha256: str
    n_rows: int
    n_positive: int
    seed: int
    fraction: float
    source_sha256: str
    created_at: str


def frame_sha256(frame: pd.DataFrame) -> str:
    """Content hash independent of row order and of how the frame was read."""
    canonical = frame[list(contract.DATASET_COLUMNS)].sort_values(contract.ID_COLUMN)
    data = canonical.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def load_holdout(directory: Path) -> tuple[pd.DataFrame, HoldoutMeta] | None:
    """The frozen holdout, or None when none has been frozen yet. Verifies the hash."""
    from attrition_mlops.data.validation import validate_frame

    meta_path = directory / META_FILE
    if not meta_path.exists():
        return None
    meta = HoldoutMeta(**json.loads(meta_path.read_text()))
    frame = validate_frame(pd.read_csv(directory / HOLDOUT_FILE, dtype=str))
    actual = frame_sha256(frame)
    if actual != meta.sha256:
        raise HoldoutError(
            f"frozen holdout in {directory} was modified: sha256 {actual} != recorded "
            f"{meta.sha256}. Restore it, or delete the folder to freeze a new one deliberately."
        )
    return frame, meta


def freeze(
    directory: Path,
    frame: pd.DataFrame,
    meta: Any,
    *,
    frame_file: str = HOLDOUT_FILE,
    meta_file: str = META_FILE,
) -> None:
    """Write a frozen row set (the holdout, an evidence window) and its metadata dataclass.

    Write-then-rename, the metadata (with the hash) last: a crash never leaves rows beside a
    wrong hash, and a reader that finds no metadata treats the folder as not frozen yet.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (
        (frame_file, frame.to_csv(index=False, lineterminator="\n")),
        (meta_file, json.dumps(asdict(meta), indent=2)),
    ):
        tmp = directory / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, directory / name)


def split_snapshot(
    frame: pd.DataFrame, directory: Path, *, fraction: float, seed: int, source_sha256: str
) -> tuple[pd.DataFrame, pd.DataFrame, HoldoutMeta]:
    """(train part, holdout, holdout metadata); freezes a new holdout only if none exists."""
    existing = load_holdout(directory)
    if existing is not None:
        holdout, meta = existing
        train = frame[~frame[contract.ID_COLUMN].isin(holdout[contract.ID_COLUMN])]
        return _by_id(train), holdout, meta
    train, holdout = train_test_split(
        frame, test_size=fraction, random_state=seed, stratify=frame[contract.LABEL]
    )
    holdout = _by_id(holdout)
    meta = HoldoutMeta(
        sha256=frame_sha256(holdout),
        n_rows=len(holdout),
        n_positive=int((holdout[contract.LABEL] == contract.POSITIVE_LABEL).sum()),
        seed=seed,
        fraction=fraction,
        source_sha256=source_sha256,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    freeze(directory, holdout, meta)
    return _by_id(train), holdout, meta


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    # One canonical row order, so the same rows and seed always give the same CV folds and model
    # whether the split was just drawn or reloaded.
    return frame.sort_values(contract.ID_COLUMN, kind="stable").reset_index(drop=True)
