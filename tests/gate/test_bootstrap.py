"""Tests for the champion/challenger bootstrap statistics (attrition_mlops.gate.bootstrap)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from attrition_mlops.gate.bootstrap import (
    auc_from_resamples,
    gate_power,
    min_detectable_delta,
    paired_bootstrap_auc,
    stratified_resample_indices,
)

N, N_POS = 300, 48  # holdout-sized, ~16 % positives like the IBM data


@pytest.fixture
def labels() -> np.ndarray:
    y = np.zeros(N, dtype=np.int64)
    y[np.random.default_rng(0).choice(N, N_POS, replace=False)] = 1
    return y


def _continuous(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=y.size) + 0.8 * y


def _tied(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Rounded to one decimal, like a shallow tree's leaf probabilities: many ties, across classes.
    return np.round(np.clip(rng.uniform(size=y.size) * 0.7 + 0.25 * y, 0, 1), 1)


def _binormal(y: np.ndarray, mu: float, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=y.size) + mu * y


# --- vectorised AUC --------------------------------------------------------------------------


@pytest.mark.parametrize("make_scores", [_continuous, _tied], ids=["continuous", "tied"])
def test_vectorised_auc_equals_sklearn_on_every_resample(labels, make_scores):
    scores = make_scores(labels, np.random.default_rng(1))
    if make_scores is _tied:
        assert np.unique(scores).size <= 11  # the case really is heavily tied
    indices = stratified_resample_indices(labels, 200, np.random.default_rng(2))

    fast = auc_from_resamples(scores, labels, indices)
    slow = np.array([roc_auc_score(labels[idx], scores[idx]) for idx in indices])

    assert fast.shape == (200,)
    assert np.max(np.abs(fast - slow)) <= 1e-12


def test_vectorised_auc_handles_arbitrary_unstratified_indices(labels):
    scores = _tied(labels, np.random.default_rng(3))
    indices = np.random.default_rng(4).integers(0, N, size=(50, 120))  # smaller, unstratified

    fast = auc_from_resamples(scores, labels, indices)
    slow = np.array([roc_auc_score(labels[idx], scores[idx]) for idx in indices])

    assert np.max(np.abs(fast - slow)) <= 1e-12


def test_resample_with_a_single_class_has_nan_auc(labels):
    scores = _continuous(labels, np.random.default_rng(5))
    only_negatives = np.flatnonzero(labels == 0)[None, :10]

    assert np.isnan(auc_from_resamples(scores, labels, only_negatives)).all()


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 10_000])
def test_chunking_does_not_change_results(labels, chunk_size):
    scores = _continuous(labels, np.random.default_rng(6))
    indices = stratified_resample_indices(labels, 200, np.random.default_rng(7))

    unchunked = auc_from_resamples(scores, labels, indices, chunk_size=10**9)
    chunked = auc_from_resamples(scores, labels, indices, chunk_size=chunk_size)

    np.testing.assert_array_equal(chunked, unchunked)


# --- stratified resampling -------------------------------------------------------------------


def test_every_resample_keeps_the_class_counts(labels):
    indices = stratified_resample_indices(labels, 500, np.random.default_rng(8))

    assert indices.shape == (500, N)
    assert indices.dtype == np.int64
    assert indices.min() >= 0 and indices.max() < N
    np.testing.assert_array_equal(labels[indices].sum(axis=1), np.full(500, N_POS))


def test_resampling_is_uniform_within_each_class(labels):
    indices = stratified_resample_indices(labels, 2000, np.random.default_rng(9))
    # Each row draws every row once in expectation: about 2000 hits each, sd below 45.
    hits = np.bincount(indices.ravel(), minlength=N)

    assert np.all(np.abs(hits - 2000) < 5 * 45)


def test_same_seed_same_indices_different_seed_different(labels):
    def draw(seed: int) -> np.ndarray:
        return stratified_resample_indices(labels, 50, np.random.default_rng(seed))

    np.testing.assert_array_equal(draw(11), draw(11))
    assert not np.array_equal(draw(11), draw(12))


def test_drawing_in_batches_gives_the_same_rows(labels):
    # paired_bootstrap_auc chunks its draws and relies on the stream being consumed row by row.
    rng = np.random.default_rng(13)
    batched = np.vstack([stratified_resample_indices(labels, k, rng) for k in (3, 1, 6)])

    np.testing.assert_array_equal(
        batched, stratified_resample_indices(labels, 10, np.random.default_rng(13))
    )


# --- paired bootstrap ------------------------------------------------------------------------


def test_identical_models_tie_on_every_resample(labels):
    scores = _continuous(labels, np.random.default_rng(14))

    result = paired_bootstrap_auc(labels, scores, scores.copy(), n_boot=300, seed=1)

    np.testing.assert_array_equal(result.delta, np.zeros(300))
    assert result.delta_point == 0.0
    assert result.win_rate(0.0) == 0.0  # a tie is not a win
    assert result.tie_rate(0.0) == 1.0
    assert result.delta_se == 0.0


def test_both_models_are_scored_on_the_same_resamples(labels):
    rng = np.random.default_rng(15)
    champion, challenger = _continuous(labels, rng), _tied(labels, rng)

    result = paired_bootstrap_auc(labels, champion, challenger, n_boot=200, seed=3)
    indices = stratified_resample_indices(labels, 200, np.random.default_rng(3))

    np.testing.assert_array_equal(
        result.auc_champion_boot, auc_from_resamples(champion, labels, indices)
    )
    np.testing.assert_array_equal(
        result.auc_challenger_boot, auc_from_resamples(challenger, labels, indices)
    )
    np.testing.assert_array_equal(
        result.delta, result.auc_challenger_boot - result.auc_champion_boot
    )


def test_paired_result_does_not_depend_on_chunk_size(labels):
    rng = np.random.default_rng(16)
    champion, challenger = _continuous(labels, rng), _continuous(labels, rng)

    whole = paired_bootstrap_auc(labels, champion, challenger, n_boot=150, seed=4)
    chunked = paired_bootstrap_auc(labels, champion, challenger, n_boot=150, seed=4, chunk_size=7)

    np.testing.assert_array_equal(whole.delta, chunked.delta)


def test_point_estimates_and_summaries(labels):
    rng = np.random.default_rng(17)
    champion, challenger = _continuous(labels, rng), _tied(labels, rng)

    result = paired_bootstrap_auc(labels, champion, challenger, n_boot=400, seed=5)

    assert (result.n, result.n_pos, result.n_boot, result.seed) == (N, N_POS, 400, 5)
    assert result.auc_champion == pytest.approx(roc_auc_score(labels, champion), abs=1e-12)
    assert result.auc_challenger == pytest.approx(roc_auc_score(labels, challenger), abs=1e-12)
    assert result.delta_point == result.auc_challenger - result.auc_champion
    low, high = result.delta_ci(0.95)
    assert low < result.delta_point < high
    assert result.delta_ci(0.5)[0] > low and result.delta_ci(0.5)[1] < high
    assert result.delta_se == pytest.approx(np.std(result.delta, ddof=1))
    losses = np.mean(result.delta < -0.01)
    assert result.win_rate(0.01) + result.tie_rate(0.01) + losses == pytest.approx(1.0)


def test_result_is_immutable(labels):
    scores = _continuous(labels, np.random.default_rng(18))
    result = paired_bootstrap_auc(labels, scores, scores, n_boot=20)

    with pytest.raises(dataclasses.FrozenInstanceError):
        result.n_boot = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.delta[0] = 1.0


def test_clearly_better_challenger_wins_and_clearly_worse_loses(labels):
    rng = np.random.default_rng(19)
    weak, strong = _binormal(labels, 0.3, rng), _binormal(labels, 2.0, rng)

    better = paired_bootstrap_auc(labels, weak, strong, n_boot=500)
    worse = paired_bootstrap_auc(labels, strong, weak, n_boot=500)

    assert better.win_rate(0.005) >= 0.99
    assert worse.win_rate(0.005) <= 0.01


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("y", [np.zeros(10, int), np.ones(10, int)], ids=["no-pos", "no-neg"])
def test_single_class_labels_raise(y):
    scores = np.linspace(0, 1, 10)
    with pytest.raises(ValueError, match="both classes"):
        stratified_resample_indices(y, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="both classes"):
        auc_from_resamples(scores, y, np.zeros((2, 10), dtype=np.int64))
    with pytest.raises(ValueError, match="both classes"):
        paired_bootstrap_auc(y, scores, scores, n_boot=5)


def test_invalid_inputs_raise(labels):
    scores = _continuous(labels, np.random.default_rng(20))
    indices = np.zeros((2, N), dtype=np.int64)
    with pytest.raises(ValueError, match="non-empty"):
        stratified_resample_indices(np.array([], dtype=int), 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="0/1"):
        auc_from_resamples(scores, labels * 2, indices)
    with pytest.raises(ValueError, match="shape"):
        auc_from_resamples(scores[:-1], labels, indices)
    with pytest.raises(ValueError, match="finite"):
        auc_from_resamples(np.where(labels == 1, np.nan, scores), labels, indices)
    with pytest.raises(ValueError, match=r"\[0, 300\)"):
        auc_from_resamples(scores, labels, indices - 1)
    with pytest.raises(ValueError, match="n_boot"):
        paired_bootstrap_auc(labels, scores, scores, n_boot=0)
    with pytest.raises(ValueError, match="tie_tolerance"):
        paired_bootstrap_auc(labels, scores, scores, n_boot=5).win_rate(-0.1)


# --- power of the gate -----------------------------------------------------------------------


def test_gate_power_is_monotonic():
    deltas = np.linspace(-0.05, 0.1, 31)
    by_delta = [gate_power(d, 0.02, 0.9) for d in deltas]
    by_se = [gate_power(0.04, se, 0.9) for se in (0.005, 0.01, 0.02, 0.04)]
    by_rate = [gate_power(0.03, 0.02, w) for w in (0.6, 0.8, 0.9, 0.95, 0.99)]

    assert np.all(np.diff(by_delta) > 0)
    assert np.all(np.diff(by_se) < 0)  # for a delta above the bar, noise only hurts
    assert np.all(np.diff(by_rate) < 0)
    assert gate_power(0.0, 0.02, 0.9) == pytest.approx(0.1)  # false promotion rate = 1 - w


def test_min_detectable_delta_inverts_gate_power():
    for se in (0.005, 0.02, 0.05):
        for rate in (0.8, 0.9, 0.95):
            for tol in (0.0, 0.01):
                mdd = min_detectable_delta(se, rate, 0.8, tie_tolerance=tol)
                assert gate_power(mdd, se, rate, tie_tolerance=tol) == pytest.approx(0.8)
    assert min_detectable_delta(0.02, 0.9) == pytest.approx((norm.ppf(0.9) + norm.ppf(0.8)) * 0.02)
    assert min_detectable_delta(0.02, 0.9, 0.9) > min_detectable_delta(0.02, 0.9, 0.8)
    assert min_detectable_delta(0.04, 0.9) > min_detectable_delta(0.02, 0.9)


def test_zero_se_is_deterministic():
    assert gate_power(0.01, 0.0, 0.9) == 1.0
    assert gate_power(0.0, 0.0, 0.9) == 0.0  # a tie is not a win
    assert gate_power(0.005, 0.0, 0.9, tie_tolerance=0.005) == 0.0
    assert min_detectable_delta(0.0, 0.9, tie_tolerance=0.005) == 0.005


@pytest.mark.parametrize(
    "call",
    [
        lambda: gate_power(0.01, -0.1, 0.9),
        lambda: gate_power(0.01, 0.01, 1.0),
        lambda: gate_power(0.01, 0.01, 0.0),
        lambda: min_detectable_delta(0.01, 0.9, power=1.0),
        lambda: min_detectable_delta(-0.01, 0.9),
    ],
)
def test_power_helpers_reject_invalid_arguments(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("mu_challenger", [1.0, 1.3], ids=["null", "better"])
def test_gate_power_matches_monte_carlo(mu_challenger):
    # Binormal scores with unit variance: AUC = Φ(μ/√2) exactly, so the true Δ is known. The
    # models share part of their noise (ρ = 0.7), as two models of the same data do.
    n, n_pos, sims, rho = 400, 64, 300, 0.7
    y = np.r_[np.ones(n_pos, dtype=np.int64), np.zeros(n - n_pos, dtype=np.int64)]
    rng = np.random.default_rng(21)
    promoted, ses = [], []
    for sim in range(sims):
        shared, own = rng.normal(size=n), rng.normal(size=n)
        champion = 1.0 * y + shared
        challenger = mu_challenger * y + rho * shared + np.sqrt(1 - rho**2) * own
        result = paired_bootstrap_auc(y, champion, challenger, n_boot=200, seed=sim)
        promoted.append(result.win_rate() >= 0.9)
        ses.append(result.delta_se)
    true_delta = norm.cdf(mu_challenger / np.sqrt(2)) - norm.cdf(1.0 / np.sqrt(2))

    predicted = gate_power(true_delta, float(np.mean(ses)), 0.9)

    # Monte-Carlo sd of the promotion rate is <= 0.029 with 300 simulations (~3.5 sd allowed).
    assert np.mean(promoted) == pytest.approx(predicted, abs=0.1), (np.mean(promoted), predicted)
