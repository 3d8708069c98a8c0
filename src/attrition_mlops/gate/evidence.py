"""The gate's recent evidence: the window held out of the challenger's snapshot, scored for both
models (:mod:`attrition_mlops.data.evidence` draws and freezes it at training time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from attrition_mlops import registry
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import labels
from attrition_mlops.data.evidence import load_window
from attrition_mlops.data.snapshots import SnapshotError, load_snapshot_partition
from attrition_mlops.gate.bootstrap import PairedBootstrap, paired_bootstrap_auc
from attrition_mlops.gate.rules import EvidenceWindow
from attrition_mlops.settings import GateSettings, PipelineSettings


class EvaluationError(RuntimeError):
    """The evaluation cannot be made soundly (no holdout, no challenger, mismatched holdout or
    evidence window). Raised by :mod:`~attrition_mlops.gate.evaluate`, which re-exports it."""


@dataclass(frozen=True)
class WindowEvidence:
    """The window's rows, what the report says about it, and why it is missing if it is."""

    window: EvidenceWindow | None
    frame: Any
    note: str


def find_window(
    settings: PipelineSettings, challenger: str, champion: str | None
) -> WindowEvidence:
    """The challenger's evidence window minus any employee the champion trained on."""
    name = settings.model_name
    tags = registry.get_version(name, challenger).tags
    as_of, sha = tags.get("window_as_of"), tags.get("window_sha256")
    if not as_of:
        return WindowEvidence(None, None, "the challenger's snapshot has no evidence window")
    loaded = load_window(settings.evidence_dir, as_of)
    if loaded is None or loaded[1].sha256 != sha:
        raise EvaluationError(
            f"challenger v{challenger} held out window as_of={as_of} ({sha}), which is not in "
            f"{settings.evidence_dir} as recorded: retrain it"
        )
    frame, _ = loaded
    cutoff = registry.get_version(name, champion).tags.get("snapshot_as_of") if champion else None
    if cutoff and cutoff >= as_of:
        return WindowEvidence(
            None, None, f"the champion trained on snapshot as_of={cutoff}, not before {as_of}"
        )
    source = f"held out of snapshot as_of={as_of}"
    if cutoff:
        try:
            seen = load_snapshot_partition(date.fromisoformat(cutoff), settings.snapshot_dir)
            ids = seen.snapshot.frame[contract.ID_COLUMN]
            frame = frame[~frame[contract.ID_COLUMN].isin(ids)].reset_index(drop=True)
            source += f"; champion trained on as_of={cutoff}"
        except SnapshotError as err:
            source += f"; champion's snapshot as_of={cutoff} unreadable ({err})"
    y = labels(frame)
    window = EvidenceWindow(
        first=cutoff or "?", last=as_of, n=len(frame), positives=int(y.sum()), source=source
    )
    return WindowEvidence(window, frame, source)


def window_bootstrap(
    evidence: WindowEvidence, predictors: dict[str, Any], gate: GateSettings
) -> PairedBootstrap | None:
    """Both models on the window's rows, paired and stratified; None without two classes."""
    if evidence.frame is None or "champion" not in predictors:
        return None
    y = labels(evidence.frame)
    if not 0 < y.sum() < y.size:
        return None
    X = evidence.frame[list(contract.INPUT_COLUMNS)]
    champion = predictors["champion"].predict_proba(X)
    challenger = predictors["challenger"].predict_proba(X)
    return paired_bootstrap_auc(y, champion, challenger, n_boot=gate.n_boot, seed=gate.seed + 1)


def window_report(
    evidence: WindowEvidence, boot: PairedBootstrap | None, gate: GateSettings
) -> dict[str, Any]:
    from attrition_mlops.gate.rules import power_statement, window_is_usable

    window = evidence.window
    report: dict[str, Any] = {"note": evidence.note, "usable": window_is_usable(window, gate)}
    if window is not None:
        report |= {"first": window.first, "last": window.last, "n": window.n}
        report |= {"positives": window.positives, "source": window.source}
    if boot is not None:
        margin = max(gate.tie_tolerance, gate.window_min_gain)
        report |= {
            "auc_champion": boot.auc_champion,
            "auc_challenger": boot.auc_challenger,
            "delta_auc": boot.delta_point,
            "delta_auc_ci95": list(boot.delta_ci(0.95)),
            "win_rate": boot.win_rate(margin),
            "power": power_statement(boot, gate),
            "challenger_auc_ci95": [
                float(v) for v in np.percentile(boot.auc_challenger_boot, [2.5, 97.5])
            ],
        }
    return report
