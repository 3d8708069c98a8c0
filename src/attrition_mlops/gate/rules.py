"""The champion/challenger decision rule and the report's statistics: pure functions.

Rules, in order:
1. The challenger already holds ``champion``: nothing to do (a retried evaluation is a no-op).
2. Cold start (no champion): promote when the challenger's holdout AUC ≥ ``min_auc``.
3. Otherwise: paired, stratified bootstrap of ΔAUC = challenger − champion on the frozen
   holdout; promote when the challenger wins (Δ > ``tie_tolerance``) on at least
   ``min_win_rate`` of resamples *and* clears ``min_auc``. Ties are not wins, so an identical or
   equivalent model never displaces the incumbent.

With a recent evidence window (:func:`decide_on_window`, issue 14): labelled rows neither model
trained or tuned on, after both models' training cutoffs. Rule 3 is then judged there (the world
as it is now), and the frozen holdout becomes a non-regression guard: the challenger is refused
when it loses to the champion there by more than ``holdout_margin`` on at least
``window_min_win_rate`` of the paired resamples (the confidence the win needs). A window with
fewer than ``min_window_rows`` rows or ``min_window_positives`` leavers is too small to judge:
the frozen-holdout rule decides, and the reason says so. On the window a win is a gain of more
than ``window_min_gain`` AUC, and the AUC floor does not keep a champion the challenger beats
there (it is reported instead): both models are judged on the same recent rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from attrition_mlops.data import contract
from attrition_mlops.gate.bootstrap import PairedBootstrap, gate_power, min_detectable_delta
from attrition_mlops.settings import GateSettings

#: Correlation between two models' bootstrap AUCs assumed for the power statement when the pair
#: itself cannot supply one (cold start, identical models). Observed pairs here run 0.7–0.9.
ASSUMED_PAIR_CORRELATION = 0.8
POWER_AT = (0.01, 0.02, 0.05)


@dataclass(frozen=True)
class Decision:
    promote: bool
    rule: str
    reason: str


def decide(
    *,
    challenger_version: str,
    champion_version: str | None,
    challenger_auc: float,
    boot: PairedBootstrap | None,
    gate: GateSettings,
) -> Decision:
    if champion_version == challenger_version:
        return Decision(False, "already_champion", f"version {challenger_version} is champion")
    if challenger_auc < gate.min_auc:
        return Decision(
            False, "auc_floor", f"holdout AUC {challenger_auc:.4f} < floor {gate.min_auc:.4f}"
        )
    if champion_version is None or boot is None:
        return Decision(
            True,
            "cold_start",
            f"no champion yet; holdout AUC {challenger_auc:.4f} ≥ floor {gate.min_auc:.4f}",
        )
    win = boot.win_rate(gate.tie_tolerance)
    tie = boot.tie_rate(gate.tie_tolerance)
    if win >= gate.min_win_rate:
        return Decision(
            True,
            "bootstrap",
            f"challenger wins {win:.1%} of {boot.n_boot} paired resamples "
            f"(needs ≥ {gate.min_win_rate:.0%})",
        )
    detail = " (identical holdout predictions: ties keep the incumbent)" if tie == 1.0 else ""
    return Decision(
        False,
        "bootstrap",
        f"challenger wins only {win:.1%} of {boot.n_boot} paired resamples, "
        f"ties {tie:.1%} (needs ≥ {gate.min_win_rate:.0%}){detail}",
    )


def power_statement(boot: PairedBootstrap, gate: GateSettings) -> dict[str, Any]:
    """How large a real ΔAUC this holdout can detect: small gains usually will not pass."""
    se = float(boot.delta_se)
    assumed = False
    if se <= 0:
        sd = float(np.std(boot.auc_challenger_boot, ddof=1))
        se = sd * float(np.sqrt(2 * (1 - ASSUMED_PAIR_CORRELATION)))
        assumed = True
    mdd = float(
        min_detectable_delta(se, gate.min_win_rate, power=0.8, tie_tolerance=gate.tie_tolerance)
    )
    small = float(gate_power(0.01, se, gate.min_win_rate, tie_tolerance=gate.tie_tolerance))
    verdict = (
        "Small real gains will usually not be promoted at this holdout size."
        if small < 0.5
        else "This pair is correlated enough that a +0.01 gain would usually be detected."
    )
    return {
        "se_delta_auc": se,
        "se_assumed_from_single_model": assumed,
        "min_detectable_delta_auc_at_80pct_power": mdd,
        "power_at_true_delta": {
            f"{d:+.2f}": float(
                gate_power(d, se, gate.min_win_rate, tie_tolerance=gate.tie_tolerance)
            )
            for d in POWER_AT
        },
        "statement": (
            f"With n={boot.n} holdout rows ({boot.n_pos} leavers) the ΔAUC standard error is "
            f"about {se:.3f}{' (assumed: no distinct pair to measure)' if assumed else ''}; "
            f"the gate passes a true improvement of {mdd:.3f} AUC 80% of the time and a true "
            f"+0.01 about {small:.0%} of the time. {verdict}"
        ),
    }


def _auc_or_none(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def slice_metrics(
    holdout: pd.DataFrame, y: np.ndarray, scores: dict[str, np.ndarray], threshold: float
) -> list[dict[str, Any]]:
    """AUC and predicted-positive rate per value of each sensitive attribute, per model."""
    attributes = {
        "Gender": holdout["Gender"].astype(str),
        "AgeBand": holdout["Age"].map(contract.age_band),
        "MaritalStatus": holdout["MaritalStatus"].astype(str),
    }
    rows = []
    for attribute, values in attributes.items():
        for value in sorted(values.unique()):
            mask = (values == value).to_numpy()
            row: dict[str, Any] = {
                "attribute": attribute,
                "value": value,
                "n": int(mask.sum()),
                "positives": int(y[mask].sum()),
                "base_rate": float(y[mask].mean()),
            }
            for model, s in scores.items():
                row[f"{model}_auc"] = _auc_or_none(y[mask], s[mask])
                row[f"{model}_positive_rate"] = float((s[mask] >= threshold).mean())
            rows.append(row)
    return rows


@dataclass(frozen=True)
class EvidenceWindow:
    """The recent labelled rows both models are judged on: which, how many, and how they did."""

    first: str
    last: str
    n: int
    positives: int
    source: str

    def describe(self) -> str:
        return f"{self.first}..{self.last} (n={self.n}, {self.positives} leavers; {self.source})"


def window_is_usable(window: EvidenceWindow | None, gate: GateSettings) -> bool:
    return (
        window is not None
        and window.n >= gate.min_window_rows
        and window.positives >= gate.min_window_positives
    )


def decide_on_window(
    *,
    challenger_version: str,
    champion_version: str | None,
    window: EvidenceWindow | None,
    window_boot: PairedBootstrap | None,
    holdout_boot: PairedBootstrap | None,
    holdout_challenger_auc: float,
    gate: GateSettings,
) -> Decision:
    """Judge on the recent window, guard on the frozen holdout; fall back to :func:`decide`."""
    if (
        champion_version in (None, challenger_version)
        or window_boot is None
        or not window_is_usable(window, gate)
    ):
        fallback = decide(
            challenger_version=challenger_version,
            champion_version=champion_version,
            challenger_auc=holdout_challenger_auc,
            boot=holdout_boot,
            gate=gate,
        )
        if champion_version in (None, challenger_version) or window is None:
            # No window at all (the first snapshot, or the champion trained on the challenger's
            # snapshot): the gate decides as it always has; the report's note says why.
            return fallback
        why = (
            f"recent window {window.describe()} is below the minimum "
            f"{gate.min_window_rows} rows / {gate.min_window_positives} leavers"
            if not window_is_usable(window, gate)
            else f"recent window {window.describe()} holds one class only"
        )
        return Decision(
            fallback.promote,
            f"{fallback.rule}_frozen_holdout",
            f"{why}: judged on the frozen holdout instead. {fallback.reason}",
        )
    assert window is not None
    # A win on the window is a gain of more than window_min_gain AUC: a challenger only as good
    # as the champion (a fresh sample of the same world) must not win by sampling luck.
    margin = max(gate.tie_tolerance, gate.window_min_gain)
    win = window_boot.win_rate(margin)
    if win < gate.window_min_win_rate:
        return Decision(
            False,
            "window_bootstrap",
            f"on the recent window {window.describe()} the challenger gains more than "
            f"{margin:.3f} AUC in only {win:.1%} of {window_boot.n_boot} paired resamples "
            f"(ΔAUC {window_boot.delta_point:+.4f}; needs ≥ {gate.window_min_win_rate:.0%})",
        )
    if holdout_boot is not None:
        worse = float(np.mean(holdout_boot.delta < -gate.holdout_margin))
        if worse >= gate.window_min_win_rate:
            return Decision(
                False,
                "holdout_regression",
                f"wins {win:.1%} on the recent window {window.describe()}, but on the frozen "
                f"holdout it is worse than the champion by more than {gate.holdout_margin:.3f} "
                f"AUC in {worse:.1%} of resamples (ΔAUC {holdout_boot.delta_point:+.4f})",
            )
    holdout_delta = holdout_boot.delta_point if holdout_boot else float("nan")
    # The AUC floor is not a reason to keep a champion the challenger beats in the world as it
    # is now (both are judged on the same rows); it is said, so on-call sees a weak model.
    weak = (
        f" Both models are weak on this window: the challenger's AUC "
        f"{window_boot.auc_challenger:.4f} is below the floor {gate.min_auc:.4f}."
        if window_boot.auc_challenger < gate.min_auc
        else ""
    )
    return Decision(
        True,
        "window_bootstrap",
        f"challenger gains more than {margin:.3f} AUC in {win:.1%} of {window_boot.n_boot} paired "
        f"resamples on the recent window {window.describe()} (ΔAUC "
        f"{window_boot.delta_point:+.4f}; needs ≥ {gate.window_min_win_rate:.0%}); frozen "
        f"holdout ΔAUC {holdout_delta:+.4f} within the non-regression margin "
        f"{gate.holdout_margin:.3f}.{weak}",
    )
