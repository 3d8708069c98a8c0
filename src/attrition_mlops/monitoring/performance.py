"""Realized performance once outcomes mature, and a label-free estimate before they do.

Pure functions over arrays and the joined frame of :mod:`attrition_mlops.monitoring.outcomes`.

**Realized** (per model version and monthly cohort, labelled rows only): ROC AUC with a
stratified percentile-bootstrap CI (the gate's vectorised resampling,
:mod:`attrition_mlops.stats.bootstrap`); calibration as observed vs mean predicted rate and the
expected calibration error over equal-mass bins (each bin holds n/bins predictions, by rank:
``ECE = Σ_b n_b/n · |observed_b − predicted_b|``); label coverage = labelled / predictions.

**Estimated** (CBPE-style, no labels). If the probabilities are calibrated, each outcome is a
Bernoulli(p) draw. The point estimate is the AUC of the *expected* confusion counts: a prediction
with probability p counts as p of a positive and 1 − p of a negative, so
``AUC = Σ_i Σ_j p_i (1 − p_j) [s_i > s_j, ties ½] / (Σ p · Σ (1 − p))``; this is NannyML's CBPE
for ROC AUC, and equals sklearn's weighted AUC over each row duplicated as a positive (weight p)
and a negative (weight 1 − p). The CI is where the realized AUC of THIS window would fall under
that assumption: labels are drawn ~Bernoulli(p) many times and each draw's AUC computed (rank-sum
form, vectorised), giving percentile bounds. A concept shift (P(leave | x) changed) breaks the
assumption and the estimate with it: :func:`compare_estimates` checks it once outcomes arrive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from attrition_mlops.stats.bootstrap import (
    auc_from_count_resamples,
    auc_from_resamples,
    stratified_resample_indices,
)

DEFAULT_N_BOOT = 1000
DEFAULT_N_SAMPLES = 500
DEFAULT_BINS = 10
DEFAULT_LEVEL = 0.95
#: Label coverage a cohort needs before its realized AUC is compared with the estimate.
DEFAULT_MIN_COVERAGE = 0.95
#: Score resolution of the grouped bootstrap used for large cohorts (see :func:`auc_with_ci`).
DEFAULT_RESOLUTION = 1e-3
#: Rows × resamples up to which the bootstrap resamples rows (exact scores).
EXACT_BUDGET = 5_000_000
#: Label draws × rows per chunk of the CBPE simulation (~32 MB of float64 at a time).
_SAMPLE_CHUNK = 1 << 22


def auc_with_ci(
    y: np.ndarray,
    p: np.ndarray,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    resolution: float | None = DEFAULT_RESOLUTION,
) -> tuple[float, float, float]:
    """(AUC, low, high): the exact point AUC and its stratified percentile-bootstrap interval.

    Small samples (rows × n_boot ≤ ``EXACT_BUDGET``, or ``resolution=None``) are resampled row
    by row (:func:`stratified_resample_indices`, the gate's bootstrap). Larger ones are resampled
    as counts per score group, the scores rounded to ``resolution`` for the resamples only: the
    same bootstrap at a cost independent of the rows (:func:`auc_from_count_resamples`); two
    predictions closer than ``resolution`` then tie in the resamples, which moves the bounds by
    well under 0.001 AUC (tests/monitoring/test_performance.py measures it).
    """
    labels = np.asarray(y).astype(np.int64)
    scores = np.asarray(p, dtype=np.float64)
    point = float(auc_from_resamples(scores, labels, np.arange(labels.size)[None, :])[0])
    rng = np.random.default_rng(seed)
    if resolution is None or labels.size * n_boot <= EXACT_BUDGET:
        step = max(1, (1 << 22) // labels.size)
        boots = np.concatenate(
            [
                auc_from_resamples(scores, labels, stratified_resample_indices(labels, k, rng))
                for k in np.diff(np.r_[np.arange(0, n_boot, step), n_boot])
            ]
        )
    else:
        _, group = np.unique(np.round(scores / resolution), return_inverse=True)
        size = int(group.max()) + 1
        pos = np.bincount(group[labels == 1], minlength=size)
        neg = np.bincount(group[labels == 0], minlength=size)
        boots = auc_from_count_resamples(pos, neg, n_boot, rng)
    low, high = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return point, float(low), float(high)


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = DEFAULT_BINS) -> pd.DataFrame:
    """Reliability table over equal-mass bins (by rank of p): n, mean predicted, observed rate."""
    labels = np.asarray(y, dtype=np.float64)
    probs = np.asarray(p, dtype=np.float64)
    if labels.size == 0:
        raise ValueError("no labelled predictions to calibrate")
    order = np.argsort(probs, kind="stable")
    bins = np.empty(labels.size, dtype=np.int64)
    bins[order] = np.arange(labels.size) * min(n_bins, labels.size) // labels.size
    frame = pd.DataFrame({"bin": bins, "p": probs, "y": labels})
    table = frame.groupby("bin").agg(
        n=("y", "size"),
        p_min=("p", "min"),
        p_max=("p", "max"),
        mean_predicted=("p", "mean"),
        observed_rate=("y", "mean"),
    )
    return table.reset_index()


def expected_calibration_error(table: pd.DataFrame) -> float:
    """ECE of a :func:`calibration_table`: bin-size-weighted mean |observed − predicted|."""
    gap = (table["observed_rate"] - table["mean_predicted"]).abs()
    return float((gap * table["n"]).sum() / table["n"].sum())


def expected_auc(p: np.ndarray) -> float:
    """The CBPE point estimate of ROC AUC from probabilities alone (module docstring)."""
    probs = np.asarray(p, dtype=np.float64)
    uniques, group = np.unique(probs, return_inverse=True)
    pos = np.bincount(group, weights=probs, minlength=uniques.size)
    neg = np.bincount(group, weights=1.0 - probs, minlength=uniques.size)
    below = np.cumsum(neg) - neg
    denominator = pos.sum() * neg.sum()
    return float((pos * (below + 0.5 * neg)).sum() / denominator) if denominator > 0 else np.nan


def sampled_aucs(p: np.ndarray, n_samples: int, seed: int = 0) -> np.ndarray:
    """AUCs of ``n_samples`` label draws y ~ Bernoulli(p) (NaN where a draw has one class)."""
    probs = np.asarray(p, dtype=np.float64)
    ranks = pd.Series(probs).rank(method="average").to_numpy()  # midranks: ties count ½
    n = probs.size
    rng = np.random.default_rng(seed)
    step = max(1, _SAMPLE_CHUNK // max(n, 1))
    out = np.empty(n_samples)
    for start in range(0, n_samples, step):
        rows = min(step, n_samples - start)
        draws = rng.random((rows, n)) < probs
        n_pos = draws.sum(axis=1).astype(np.float64)
        rank_sum = draws.astype(np.float64) @ ranks
        pairs = n_pos * (n - n_pos)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = (rank_sum - n_pos * (n_pos + 1) / 2) / pairs
        out[start : start + rows] = np.where(pairs > 0, auc, np.nan)
    return out


@dataclass(frozen=True)
class Estimate:
    """CBPE-style estimate for one window: point, interval, and the label draws' mean."""

    n: int
    estimated_auc: float
    low: float
    high: float
    sampled_mean: float

    def to_dict(self) -> dict:
        return asdict(self)


def estimate_auc(
    p: np.ndarray,
    *,
    n_samples: int = DEFAULT_N_SAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> Estimate:
    """Expected AUC of a window from its probabilities, with the interval of label draws."""
    probs = np.asarray(p, dtype=np.float64)
    if probs.size < 2 or not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
        raise ValueError("need at least 2 finite probabilities in [0, 1]")
    aucs = sampled_aucs(probs, n_samples, seed)
    aucs = aucs[np.isfinite(aucs)]
    if not aucs.size:  # every draw had one class: p all ~0 or all ~1
        return Estimate(int(probs.size), expected_auc(probs), np.nan, np.nan, np.nan)
    low, high = np.quantile(aucs, [(1 - level) / 2, (1 + level) / 2])
    mean = float(aucs.mean())
    return Estimate(int(probs.size), expected_auc(probs), float(low), float(high), mean)


def realized_performance(
    joined: pd.DataFrame,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    n_bins: int = DEFAULT_BINS,
) -> pd.DataFrame:
    """One row per (model_version, cohort) of a joined frame: coverage, AUC + CI, calibration.

    ``auc`` is NaN when the labelled rows hold one class only (AUC is undefined there).
    """
    rows = []
    for (version, cohort), group in joined.groupby(["model_version", "cohort"], sort=True):
        labelled = group["label"].notna().to_numpy()
        y = group["label"].to_numpy(dtype="float64", na_value=np.nan)[labelled].astype(np.int64)
        p = group["probability"].to_numpy()[labelled]
        row = {
            "model_version": version,
            "cohort": cohort,
            "n_predictions": len(group),
            "n_labelled": int(labelled.sum()),
            "n_positive": int(y.sum()),
            "label_coverage": float(labelled.mean()),
            "matured_share": float((group["status"] != "pending").mean()),
            "n_pending": int((group["status"] == "pending").sum()),
            "n_missing": int((group["status"] == "missing").sum()),
        }
        row.update(
            auc=np.nan,
            auc_low=np.nan,
            auc_high=np.nan,
            observed_rate=np.nan,
            mean_predicted=np.nan,
            ece=np.nan,
        )
        if y.size:
            row.update(
                observed_rate=float(y.mean()),
                mean_predicted=float(p.mean()),
                ece=expected_calibration_error(calibration_table(y, p, n_bins)),
            )
        if 0 < y.sum() < y.size:
            auc, low, high = auc_with_ci(y, p, n_boot=n_boot, seed=seed, level=level)
            row.update(auc=auc, auc_low=low, auc_high=high)
        rows.append(row)
    return pd.DataFrame(rows)


def estimated_performance(
    joined: pd.DataFrame,
    *,
    n_samples: int = DEFAULT_N_SAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """The CBPE estimate per (model_version, cohort), from all of its predictions' probabilities."""
    rows = []
    for (version, cohort), group in joined.groupby(["model_version", "cohort"], sort=True):
        estimate = estimate_auc(
            group["probability"].to_numpy(), n_samples=n_samples, seed=seed, level=level
        )
        rows.append({"model_version": version, "cohort": cohort, **estimate.to_dict()})
    return pd.DataFrame(rows)


def compare_estimates(
    estimated: pd.DataFrame, realized: pd.DataFrame, *, min_coverage: float = DEFAULT_MIN_COVERAGE
) -> pd.DataFrame:
    """Estimated vs realized AUC per (model_version, cohort) once outcomes arrive.

    ``error`` = realized − estimated; ``inside`` = the realized AUC lies in the estimate's
    interval (if it often does not, the calibration assumption behind the estimate has failed:
    suspect a concept shift). Only cohorts with a realized AUC and ``label_coverage >=
    min_coverage`` are compared: the estimate covers every prediction of the cohort, and while
    outcomes are censored (early leavers known first) the labelled part is not a fair sample.
    """
    keys = ["model_version", "cohort"]
    both = estimated.merge(realized[[*keys, "auc", "label_coverage"]], on=keys, how="inner")
    both = both[both["auc"].notna() & (both["label_coverage"] >= min_coverage)]
    both = both.rename(columns={"auc": "realized_auc"})
    both["error"] = both["realized_auc"] - both["estimated_auc"]
    both["inside"] = (both["realized_auc"] >= both["low"]) & (both["realized_auc"] <= both["high"])
    return both.reset_index(drop=True)
