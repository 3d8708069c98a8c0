"""Paired, stratified bootstrap of ROC AUC: the statistics behind the champion/challenger gate.

Why a paired bootstrap. Champion and challenger are scored on the *same* holdout, so their AUCs
are strongly correlated; most of the sampling noise in each AUC cancels in their difference.
Resampling each model independently throws that correlation away and makes the gate far less
sensitive. Here every resample is drawn once and both models are evaluated on it, so each of the
B resamples yields one ΔAUC = AUC(challenger) − AUC(champion).

Why stratified. A holdout of a few hundred rows with ~16 % positives can, by chance, resample
very few positives, which inflates the spread of AUC for reasons unrelated to the models. Every
resample therefore draws exactly ``n_pos`` rows with replacement from the positives and
``n_neg`` from the negatives, as the holdout itself has.

How AUC is computed for all resamples at once. AUC is the Mann–Whitney statistic: the share of
(positive, negative) pairs the score orders correctly, a tie counting ½, which is exactly what
``sklearn.metrics.roc_auc_score`` returns. The scores are ranked once into groups of equal
value. For a resample, let ``pos_g``/``neg_g`` be how many drawn positives/negatives fall in
group ``g``; then ``AUC = Σ_g pos_g · (neg_below_g + ½·neg_g) / (n_pos · n_neg)`` where
``neg_below_g`` is the cumulative count of negatives in lower groups. One ``bincount`` over
``(resample, label, group)`` keys gives the counts of a whole chunk of resamples, and a cumulative
sum along the groups finishes it: no Python loop over resamples, memory O(chunk · n). Counts are
integers, so the numerator is exact and the only rounding is the final division.

The gate promotes when the challenger wins (Δ > tie tolerance) in at least a share ``w`` of the
resamples. ``gate_power`` and ``min_detectable_delta`` give the normal approximation of how
often that happens for a true improvement, to size holdouts and thresholds honestly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

DEFAULT_N_BOOT = 2000
DEFAULT_SEED = 42
#: Elements (resamples × rows) handled per chunk: ~32 MB per int64 array, a few arrays live at
#: once, so a 100k-row holdout stays in the low hundreds of MB whatever B is.
CHUNK_ELEMENTS = 1 << 22


def _as_labels(y: np.ndarray) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array, got shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("y must contain only 0/1 (or boolean) labels")
    labels = labels.astype(np.int64)
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.size:
        raise ValueError(
            f"y must contain both classes to define AUC; got {n_pos} positives and "
            f"{labels.size - n_pos} negatives"
        )
    return labels


def _chunk_rows(n: int, chunk_size: int | None) -> int:
    """Resamples per chunk: the caller's choice, else as many as the memory budget allows."""
    if chunk_size is None:
        return max(1, CHUNK_ELEMENTS // n)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return chunk_size


def stratified_resample_indices(y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n_boot`` stratified bootstrap resamples of row indices, shape ``(n_boot, n)``.

    Each row holds ``n_pos`` indices drawn with replacement from the positives followed by
    ``n_neg`` from the negatives. Both classes come from ONE draw in ``[0, n_pos·n_neg)`` reduced
    modulo the class size (exactly uniform, since the range is a multiple of both sizes), so the
    random stream is consumed row by row: drawing 2 × 500 resamples from a generator gives the
    same rows as drawing 1000 at once, which lets callers chunk without changing results.
    """
    labels = _as_labels(y)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels == 0)
    draws = rng.integers(0, pos.size * neg.size, size=(n_boot, labels.size), dtype=np.int64)
    draws[:, : pos.size] %= pos.size
    draws[:, pos.size :] %= neg.size
    draws[:, pos.size :] += pos.size
    return np.concatenate([pos, neg])[draws]


def _score_keys(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-row key ``label·n_groups + tie_group``; tie groups are numbered by ascending score.

    Label-major keys make each resample's negative and positive counts contiguous blocks.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != labels.shape:
        raise ValueError(f"scores shape {values.shape} does not match y shape {labels.shape}")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite")
    uniques, group = np.unique(values, return_inverse=True)
    return labels * uniques.size + group.astype(np.int64), uniques.size


def _auc_chunk(keys: np.ndarray, n_groups: int, indices: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC of each row of ``indices`` (module docstring); NaN if a class is absent."""
    rows = indices.shape[0]
    width = 2 * n_groups
    # Offsetting each resample's keys by row·width lets one bincount count all rows separately.
    flat = (keys[indices] + (np.arange(rows, dtype=np.int64) * width)[:, None]).ravel()
    counts = np.bincount(flat, minlength=rows * width).reshape(rows, 2, n_groups)
    neg, pos = counts[:, 0, :], counts[:, 1, :]
    neg_below = np.cumsum(neg, axis=1) - neg
    # Doubled to stay in integers: 2·neg_below + neg counts each tie as ½ exactly.
    numerator = (pos * (2 * neg_below + neg)).sum(axis=1)
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, numerator / (2.0 * pairs), np.nan)


def auc_from_resamples(
    scores: np.ndarray, y: np.ndarray, indices: np.ndarray, *, chunk_size: int | None = None
) -> np.ndarray:
    """ROC AUC of every resample (row of ``indices``) at once, shape ``(n_boot,)``.

    Equals ``roc_auc_score(y[idx], scores[idx])`` for each row ``idx`` (ties count ½), without a
    Python loop over resamples. ``chunk_size`` resamples are processed at a time (default: as
    many as fit ``CHUNK_ELEMENTS``); it changes memory use, never results. A resample holding
    only one class has no AUC and yields NaN (sklearn would raise).
    """
    labels = _as_labels(y)
    keys, n_groups = _score_keys(scores, labels)
    idx = np.asarray(indices)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be a 2-D integer array, got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= labels.size):
        raise ValueError(f"indices must lie in [0, {labels.size})")
    step = _chunk_rows(max(idx.shape[1], 1), chunk_size)
    out = np.empty(idx.shape[0], dtype=np.float64)
    for start in range(0, idx.shape[0], step):
        out[start : start + step] = _auc_chunk(keys, n_groups, idx[start : start + step])
    return out


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
    labels = _as_labels(y)
    champion = _score_keys(champion_scores, labels)
    challenger = _score_keys(challenger_scores, labels)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    step = _chunk_rows(labels.size, chunk_size)
    champion_boot = np.empty(n_boot, dtype=np.float64)
    challenger_boot = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, step):
        idx = stratified_resample_indices(labels, min(step, n_boot - start), rng)
        champion_boot[start : start + step] = _auc_chunk(*champion, idx)
        challenger_boot[start : start + step] = _auc_chunk(*challenger, idx)
    everyone = np.arange(labels.size)[None, :]
    auc_champion = float(_auc_chunk(*champion, everyone)[0])
    auc_challenger = float(_auc_chunk(*challenger, everyone)[0])
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
