"""What a training run learns from: the snapshot it records as its input, and whether that snapshot
is new at all.

Lineage: the run logs the snapshot with ``mlflow.log_input`` (a pandas dataset whose source is the
partition's data file and whose digest is the start of its sha256; MLflow stores at most 36
characters of a digest), so the MLflow UI shows each version's data; the full sha256 and the
snapshot's ``as_of`` are run and version tags.

Skipping: a snapshot whose sha256 is the one the current champion trained on (its ``data_sha256``
version tag) holds nothing new; a retrain would reproduce the champion and the gate would reject
it as a tie. Training is then skipped with a reason, a result and not an error.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import mlflow

from attrition_mlops import registry
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import Snapshot
from attrition_mlops.data.snapshots import SnapshotManifest

log = logging.getLogger(__name__)

#: MLflow's dataset digest column holds 36 characters.
DIGEST_CHARS = 36
SNAPSHOT_TAGS = ("snapshot_as_of", "snapshot_sha256", "snapshot_source")


@dataclass(frozen=True)
class TrainingSkipped:
    """The result of a training job that had nothing new to learn."""

    model_name: str
    champion_version: str
    data_sha256: str
    snapshot_as_of: str | None
    reason: str
    skipped: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def snapshot_tags(snapshot: Snapshot, manifest: SnapshotManifest | None) -> dict[str, str]:
    """Run tags naming the training data: the partition's as_of and source when it has one."""
    tags = {"data_sha256": snapshot.sha256, "snapshot_sha256": snapshot.sha256}
    if manifest is not None:
        tags |= {"snapshot_as_of": manifest.as_of, "snapshot_source": manifest.source}
    return tags


def log_snapshot_input(snapshot: Snapshot, manifest: SnapshotManifest | None) -> None:
    """Record the snapshot as the active run's training input (``mlflow.data``)."""
    from mlflow.data.sources import LocalArtifactDatasetSource  # registered by mlflow at import

    name = f"labelled_snapshot as_of={manifest.as_of}" if manifest else snapshot.path.name
    dataset = mlflow.data.from_pandas(
        snapshot.frame,
        # Stated, not guessed: MLflow finds two local source types for a bare path and warns.
        source=LocalArtifactDatasetSource(str(snapshot.path)),
        targets=contract.LABEL,
        name=name,
        digest=snapshot.sha256[:DIGEST_CHARS],
    )
    tags = {"sha256": snapshot.sha256}
    if manifest is not None:
        tags |= {"as_of": manifest.as_of, "source": manifest.source}
    mlflow.log_input(dataset, context="training", tags=tags)


def unchanged_snapshot(
    model_name: str, snapshot: Snapshot, manifest: SnapshotManifest | None
) -> TrainingSkipped | None:
    """A skip result when the champion was trained on exactly this snapshot, else None."""
    champion = registry.get_alias_version(model_name, registry.CHAMPION)
    if champion is None:
        return None
    trained_on = registry.get_version(model_name, champion).tags.get("data_sha256")
    if trained_on != snapshot.sha256:
        return None
    as_of = manifest.as_of if manifest else None
    which = f"as_of={as_of}" if as_of else str(snapshot.path)
    reason = (
        f"unchanged snapshot: {which} (sha256 {snapshot.sha256[:12]}…) is the data champion "
        f"v{champion} was trained on; a retrain would reproduce it. Add a new labelled snapshot "
        "to retrain, or pass --force"
    )
    log.info("training skipped: %s", reason)
    return TrainingSkipped(model_name, champion, snapshot.sha256, as_of, reason)
