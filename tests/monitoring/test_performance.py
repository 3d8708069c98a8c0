"""Realized performance (bootstrap AUC CI, calibration, coverage) and the CBPE-style estimate."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from attrition_mlops.monitoring import performance as perf
from attrition_mlops.monitoring.outcomes import join_batch_predictions


def _cohort(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 4.0, n)
    return (rng.random(n) < p).astype(np.int64), p


def test_auc_ci_holds_sklearns_point_estimate() -> None:
    y, p = _cohort(2000, 1)
    auc, low, high = perf.auc_with_ci(y, p, n_boot=400, seed=3)
    assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert low < auc < high
    assert 0.01 < high - low < 0.1


def test_large_cohort_ci_at_the_default_resolution_agrees_with_exact_scores() -> None:
    y, p = _cohort(30_000, 4)
    exact = perf.auc_with_ci(y, p, n_boot=1000, seed=5, resolution=None)
    grouped = perf.auc_with_ci(y, p, n_boot=1000, seed=5)  # 30k × 1000 > EXACT_BUDGET
    assert grouped[0] == exact[0]  # the point AUC always uses exact scores
    assert grouped[1] == pytest.approx(exact[1], abs=0.002)
    assert grouped[2] == pytest.approx(exact[2], abs=0.002)


def test_calibration_table_and_ece_by_hand() -> None:
    # Four equal-mass bins of two: predicted means .1, .3, .6, .9; observed 0, .5, .5, 1.
    p = np.array([0.1, 0.1, 0.3, 0.3, 0.6, 0.6, 0.9, 0.9])
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    table = perf.calibration_table(y, p, n_bins=4)
    assert table["n"].tolist() == [2, 2, 2, 2]
    assert table["mean_predicted"].tolist() == pytest.approx([0.1, 0.3, 0.6, 0.9])
    assert table["observed_rate"].tolist() == pytest.approx([0.0, 0.5, 0.5, 1.0])
    # ECE = (|0 − .1| + |.5 − .3| + |.5 − .6| + |1 − .9|) / 4 = 0.125
    assert perf.expected_calibration_error(table) == pytest.approx(0.125)


def test_ece_with_unequal_bins_weights_by_size() -> None:
    p = np.array([0.2, 0.2, 0.2, 0.8, 0.8])
    y = np.array([0, 0, 0, 1, 0])
    table = perf.calibration_table(y, p, n_bins=2)  # 5 rows by rank: bins of 3 and 2
    assert table["n"].tolist() == [3, 2]
    # bin 0: predicted .2, observed 0 → .2 · 3/5; bin 1: predicted .8, observed .5 → .3 · 2/5
    assert perf.expected_calibration_error(table) == pytest.approx(0.2 * 3 / 5 + 0.3 * 2 / 5)


def _enumerated_expected_auc(p: np.ndarray) -> float:
    """E[AUC | both classes present] over every label vector, y_i ~ Bernoulli(p_i)."""
    total = weight = 0.0
    for labels in itertools.product((0, 1), repeat=p.size):
        y = np.array(labels)
        if 0 < y.sum() < y.size:
            w = float(np.prod(np.where(y == 1, p, 1 - p)))
            total += w * roc_auc_score(y, p)
            weight += w
    return total / weight


def test_sampled_aucs_converge_to_the_exact_expectation_by_enumeration() -> None:
    p = np.array([0.05, 0.2, 0.2, 0.35, 0.5, 0.6, 0.8, 0.9])  # with a tie
    exact = _enumerated_expected_auc(p)
    draws = perf.sampled_aucs(p, 40_000, seed=1)
    draws = draws[np.isfinite(draws)]
    assert draws.mean() == pytest.approx(exact, abs=3 * draws.std() / np.sqrt(draws.size))


def test_expected_auc_equals_sklearns_weighted_auc() -> None:
    """Each row as a positive with weight p and a negative with weight 1 − p (module docstring)."""
    p = np.r_[np.random.default_rng(3).beta(2.0, 5.0, 500), [0.3, 0.3, 0.3]]
    reference = roc_auc_score(
        np.r_[np.ones(p.size), np.zeros(p.size)], np.r_[p, p], sample_weight=np.r_[p, 1 - p]
    )
    assert perf.expected_auc(p) == pytest.approx(reference, abs=1e-12)


def test_estimate_tracks_realized_auc_when_probabilities_are_calibrated() -> None:
    y, p = _cohort(20_000, 6)
    estimate = perf.estimate_auc(p, n_samples=300, seed=0)
    assert estimate.low < roc_auc_score(y, p) < estimate.high
    assert estimate.sampled_mean == pytest.approx(estimate.estimated_auc, abs=0.002)
    with pytest.raises(ValueError, match="probabilities in"):
        perf.estimate_auc(np.array([0.2, 1.2]))


def _joined() -> pd.DataFrame:
    y, p = _cohort(3000, 7)
    predictions = pd.DataFrame(
        {
            "EmployeeNumber": np.arange(1, 3001),
            "probability": p,
            "run_date": "2026-01-05",
            "model_version": "1",
        }
    )
    known = np.arange(3000) < 2400  # the last 600 have no outcome yet
    outcomes = pd.DataFrame(
        {
            "EmployeeNumber": np.arange(1, 3001)[known],
            "observed_on": pd.Timestamp("2026-06-01"),
            "left": np.where(y[known] == 1, "Yes", "No"),
            "horizon": "12m",
        }
    )
    outcomes.loc[outcomes["left"] == "No", "observed_on"] = pd.Timestamp("2027-01-05")
    return join_batch_predictions(predictions, outcomes, horizon="12m", as_of=date(2026, 12, 1))


def test_realized_performance_per_cohort() -> None:
    joined = _joined()
    table = perf.realized_performance(joined, n_boot=300)
    row = table.iloc[0]
    labelled = joined[joined["label"].notna()]
    assert (row["n_predictions"], row["n_labelled"], row["n_pending"]) == (3000, 2400, 600)
    assert row["label_coverage"] == pytest.approx(0.8)
    assert row["matured_share"] == pytest.approx(0.8)  # the 600 without outcomes are pending
    assert row["auc"] == pytest.approx(
        roc_auc_score(labelled["label"].astype(int), labelled["probability"])
    )
    assert row["auc_low"] < row["auc"] < row["auc_high"]
    assert row["observed_rate"] == pytest.approx(labelled["label"].astype(float).mean())


def test_estimates_compared_with_realized() -> None:
    joined = _joined()
    estimated, realized = (
        perf.estimated_performance(joined, n_samples=200),
        perf.realized_performance(joined),
    )
    assert perf.compare_estimates(estimated, realized).empty  # 80 % coverage: not yet comparable
    # Here the 600 unlabelled rows are a random fifth, not censored leavers: fair to compare.
    compared = perf.compare_estimates(estimated, realized, min_coverage=0.8)
    row = compared.iloc[0]
    assert row["error"] == pytest.approx(row["realized_auc"] - row["estimated_auc"])
    assert row["inside"] == (row["low"] <= row["realized_auc"] <= row["high"])
    assert abs(row["error"]) < 0.05
