"""The recent evidence window: labelled rows of a new snapshot that no model trains on.

The gate judges a challenger against the champion on the world as it is now (issue 14). When a
challenger trains on a snapshot newer than the first (bundled) one, a stratified, seeded share of
that snapshot's rows (``TrainingSettings.window_fraction``) is set aside before training and
frozen as ``<state>/evidence/as_of=YYYY-MM-DD/`` (``window.csv`` + ``window.json`` with its
sha256), like the frozen holdout. The challenger trains on the rest; the champion, trained on an
older snapshot, never saw them either (the evaluation also drops any window row whose employee
the champion's snapshot held). Every retrain on the same snapshot reuses the same window, and a
modified window fails loudly on load.

The first snapshot has no window: there is no older model to compare with, and its rows train
the first model exactly as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from attrition_mlops.data import contract
from attrition_mlops.data.split import HoldoutError, frame_sha256, freeze

WINDOW_FILE = "window.csv"
META_FILE = "window.json"


@dataclass(frozen=True)
class WindowMeta:
    as_of: str
    sha256: str
    n_rows: int
    n_positive: int
    snapshot_sha256: str
    fraction: float
    seed: int
    created_at: str


def window_dir(root: Path, as_of: str) -> Path:
    return Path(root) / f"as_of={as_of}"


def load_window(root: Path, as_of: str) -> tuple[pd.DataFrame, WindowMeta] | None:
    """The frozen window of snapshot ``as_of``, or None. Verifies its hash (HoldoutError)."""
    from attrition_mlops.data.validation import validate_frame

    folder = window_dir(root, as_of)
    if not (folder / META_FILE).exists():
        return None
    meta = WindowMeta(**json.loads((folder / META_FILE).read_text()))
    frame = validate_frame(pd.read_csv(folder / WINDOW_FILE, dtype=str))
    actual = frame_sha256(frame)
    if actual != meta.sha256:
        raise HoldoutError(
            f"evidence window {folder} was modified: sha256 {actual} != recorded {meta.sha256}. "
            "Restore it, or delete the folder (and retrain) to freeze a new one deliberately."
        )
    return frame, meta


def split_window(
    frame: pd.DataFrame,
    root: Path,
    *,
    as_of: str,
    snapshot_sha256: str,
    fraction: float,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, WindowMeta]:
    """(rows to train on, the window, its metadata); freezes the window on first use."""
    existing = load_window(root, as_of)
    if existing is not None:
        window, meta = existing
        if meta.snapshot_sha256 != snapshot_sha256:
            raise HoldoutError(
                f"the evidence window of as_of={as_of} was drawn from snapshot "
                f"{meta.snapshot_sha256[:12]}…, not {snapshot_sha256[:12]}…"
            )
    else:
        _, window = train_test_split(
            frame, test_size=fraction, random_state=seed, stratify=frame[contract.LABEL]
        )
        window = window.sort_values(contract.ID_COLUMN, kind="stable").reset_index(drop=True)
        meta = WindowMeta(
            as_of=as_of,
            sha256=frame_sha256(window),
            n_rows=len(window),
            n_positive=int((window[contract.LABEL] == contract.POSITIVE_LABEL).sum()),
            snapshot_sha256=snapshot_sha256,
            fraction=fraction,
            seed=seed,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        freeze(window_dir(root, as_of), window, meta, frame_file=WINDOW_FILE, meta_file=META_FILE)
    train = frame[~frame[contract.ID_COLUMN].isin(window[contract.ID_COLUMN])]
    return train.reset_index(drop=True), window, meta
