"""Paired, stratified bootstrap of ROC AUC: the statistics behind the champion/challenger gate.

Why a paired bootstrap. Champion and challenger are scored on the *same* holdout, so their AUCs
are strongly correlated; most of the sampling noise in each AUC cancels in their difference.
Resampling each model independently throws that correlation away and makes the gate far less
sensitive. Here every resample is drawn once and both models are evaluated on it, so each of the
B resamples yields one ΔAUC = AUC(challenger) − AUC(champion).

The resamples are stratified (each keeps the holdout's positives and negatives counts) and every
resample's AUC comes from one vectorised pass: see :mod:`attrition_mlops.stats.bootstrap`, where
that math lives so that realized performance monitoring uses the same code.

The gate promotes when the challenger wins (Δ > tie tolerance) in at least a share ``w`` of the
resamples. ``gate_power`` and ``min_detectable_delta`` give the normal approximation of how
often that happens for a true improvement, to size holdouts and thresholds honestly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

# The resampling and AUC math lives in stats (monitoring uses it too); re-exported here so the
# gate's public names stay where they were.
from attrition_mlops.stats.bootstrap import CHUNK_ELEMENTS as CHUNK_ELEMENTS
from attrition_mlops.stats.bootstrap import as_labels, auc_of_rows, chunk_rows, score_keys
from attrition_mlops.stats.bootstrap import auc_from_resamples as auc_from_resamples
from attrition_mlops.stats.bootstrap import (
    stratified_resample_indices as stratified_resample_indices,
)

DEFAULT_N_BOOT = 2000
DEFAULT_SEED = 42


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class PairedBootstrap:
    """Outcome of a paired bootstrap; Δ is always challenger − champion.

    ``eq=False`` because the fields hold arrays (element-wise ``==`` has no single truth value);
    the arrays are read-only so the frozen result cannot be altered behind the gate's back.
    """

    n: int
    n_pos: int
    n_boot: int
    seed: int
    auc_champion: float
    auc_challenger: float
    delta_point: float
    delta: np.ndarray
    auc_champion_boot: np.ndarray
    auc_challenger_boot: np.ndarray

    def win_rate(self, tie_tolerance: float = 0.0) -> float:
        """Share of resamples where the challenger beats the champion by MORE than the tolerance.

        A tie (|Δ| ≤ tolerance) is not a win, so a challenger equal to the champion scores 0.
        """
        _check_tolerance(tie_tolerance)
        return float(np.mean(self.delta > tie_tolerance))

    def tie_rate(self, tie_tolerance: float = 0.0) -> float:
        """Share of resamples where the two models are within the tolerance (|Δ| ≤ tolerance)."""
        _check_tolerance(tie_tolerance)
        return float(np.mean(np.abs(self.delta) <= tie_tolerance))

    def delta_ci(self, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval of Δ at ``level`` (e.g. 0.95 → 2.5th and 97.5th percentiles)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        low, high = np.quantile(self.delta, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
        return float(low), float(high)

    @property
    def delta_se(self) -> float:
        """Bootstrap SE of Δ (std, ddof=1; 0.0 if B = 1): the ``se`` the power helpers take."""
        return float(np.std(self.delta, ddof=1)) if self.n_boot > 1 else 0.0


def _check_tolerance(tie_tolerance: float) -> None:
    if tie_tolerance < 0:
        raise ValueError(f"tie_tolerance must be >= 0, got {tie_tolerance}")


def paired_bootstrap_auc(
    y: np.ndarray,
    champion_scores: np.ndarray,
    challenger_scores: np.ndarray,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    chunk_size: int | None = None,
) -> PairedBootstrap:
    """Evaluate champion and challenger on the SAME ``n_boot`` stratified resamples.

    Indices are drawn chunk by chunk from one generator seeded with ``seed``; because
    ``stratified_resample_indices`` consumes the stream row by row, the result depends only on
    ``(y, scores, n_boot, seed)``, not on ``chunk_size``.
    """
    labels = as_labels(y)
    champion = score_keys(champion_scores, labels)
    challenger = score_keys(challenger_scores, labels)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    step = chunk_rows(labels.size, chunk_size)
    champion_boot = np.empty(n_boot, dtype=np.float64)
    challenger_boot = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, step):
        idx = stratified_resample_indices(labels, min(step, n_boot - start), rng)
        champion_boot[start : start + step] = auc_of_rows(*champion, idx)
        challenger_boot[start : start + step] = auc_of_rows(*challenger, idx)
    everyone = np.arange(labels.size)[None, :]
    auc_champion = float(auc_of_rows(*champion, everyone)[0])
    auc_challenger = float(auc_of_rows(*challenger, everyone)[0])
    return PairedBootstrap(
        n=int(labels.size),
        n_pos=int(labels.sum()),
        n_boot=n_boot,
        seed=seed,
        auc_champion=auc_champion,
        auc_challenger=auc_challenger,
        delta_point=auc_challenger - auc_champion,
        delta=_readonly(challenger_boot - champion_boot),
        auc_champion_boot=_readonly(champion_boot),
        auc_challenger_boot=_readonly(challenger_boot),
    )


def _z(probability: float, name: str) -> float:
    if not 0.0 < probability < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {probability}")
    return float(norm.ppf(probability))


def gate_power(
    true_delta: float, se: float, min_win_rate: float, *, tie_tolerance: float = 0.0
) -> float:
    """Probability that the gate promotes a challenger whose true ΔAUC is ``true_delta``.

    Normal approximation: the observed Δ̂ ~ N(true_delta, se²) and the bootstrap distribution is
    roughly N(Δ̂, se²), so win_rate ≈ Φ((Δ̂ − tol)/se) ≥ w  ⇔  Δ̂ ≥ tol + z_w·se, which happens
    with probability Φ((true_delta − tol)/se − z_w). With ``se == 0`` there is no sampling
    noise: every resample gives Δ = true_delta, so the gate promotes (power 1.0) exactly when
    true_delta > tol — a tie is not a win — and never otherwise (power 0.0).
    """
    z_w = _z(min_win_rate, "min_win_rate")
    _check_tolerance(tie_tolerance)
    if se < 0:
        raise ValueError(f"se must be >= 0, got {se}")
    if se == 0:
        return 1.0 if true_delta > tie_tolerance else 0.0
    return float(norm.cdf((true_delta - tie_tolerance) / se - z_w))


def min_detectable_delta(
    se: float, min_win_rate: float, power: float = 0.8, *, tie_tolerance: float = 0.0
) -> float:
    """Smallest true ΔAUC the gate promotes with probability ``power``: tol + (z_w + z_power)·se.

    The inverse of ``gate_power`` in ``true_delta``. With ``se == 0`` this returns ``tol``: any
    true Δ strictly above the tolerance is then promoted with certainty, so ``tol`` is the
    infimum (Δ equal to it is a tie and is not promoted).
    """
    z_w = _z(min_win_rate, "min_win_rate")
    z_power = _z(power, "power")
    _check_tolerance(tie_tolerance)
    if se < 0:
        raise ValueError(f"se must be >= 0, got {se}")
    return tie_tolerance + (z_w + z_power) * se
