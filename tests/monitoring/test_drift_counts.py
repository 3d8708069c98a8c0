"""The drift statistics computed on distinct values and counts equal scipy's/numpy's on raw data.

A night's window has a million records, so `drift.Sample` keeps each numeric feature as its
distinct values and counts. These tests hold every statistic to the raw-data computation, on
the real data's numeric features resampled to sizes on both sides of scipy's exact/asymptotic
switch, with and without a shift (SIMULATED windows built from the real rows).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from attrition_mlops.data import contract
from attrition_mlops.monitoring.two_sample import (
    KS_EXACT_MAX_N,
    Sample,
    ks_two_sample,
    quantile_bin_shares,
)

NUMERIC = [f.name for f in contract.FEATURES if f.kind == "numeric" and f.role == "model"]


def _samples(frame, name, n, shift, seed):
    rng = np.random.default_rng(seed)
    values = frame[name].to_numpy(float)
    reference = rng.choice(values, 1176)
    current = rng.choice(values, n) + shift * values.std()
    return reference, np.rint(current)


@pytest.mark.parametrize("n", [900, KS_EXACT_MAX_N + 1, 60_000])
@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5])
def test_ks_equals_scipy(snapshot, n, shift):
    for i, name in enumerate(NUMERIC):
        reference, current = _samples(snapshot.frame, name, n, shift, seed=i)
        for method in ("auto", "asymp"):
            expected = stats.ks_2samp(reference, current, method=method)
            statistic, p_value = ks_two_sample(reference, Sample.of(current), method)
            assert statistic == expected.statistic, (name, method)
            assert p_value == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300), (name, method)


def test_sample_summaries_equal_numpy(snapshot):
    rng = np.random.default_rng(0)
    for name in NUMERIC:
        for n in (1, 2, 7, 50_001):
            raw = rng.choice(snapshot.frame[name].to_numpy(), n)
            for values in (raw, raw.astype(float), raw + 0.25):  # ints, whole floats, fractions
                sample = Sample.of(values)
                assert sample.n == n and np.array_equal(
                    np.repeat(sample.values, sample.counts), np.sort(values)
                )
                assert sample.mean() == pytest.approx(values.mean(), rel=1e-13)
                assert sample.median() == np.median(values)
                expected_std = values.std(ddof=1) if n > 1 else 0.0
                assert sample.std() == pytest.approx(expected_std, rel=1e-10, abs=1e-12)


def test_wasserstein_and_psi_bins_equal_the_raw_computation(snapshot):
    for i, name in enumerate(NUMERIC):
        reference, current = _samples(snapshot.frame, name, 30_000, 0.1, seed=i)
        sample = Sample.of(current)
        weighted = stats.wasserstein_distance(reference, sample.values, v_weights=sample.counts)
        assert weighted == pytest.approx(stats.wasserstein_distance(reference, current), rel=1e-10)
        ref_share, cur_share = quantile_bin_shares(reference, sample, 10)
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)[1:-1]))
        raw = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1)
        assert np.array_equal(cur_share, raw / current.size)
        assert ref_share.sum() == pytest.approx(1.0) and cur_share.sum() == pytest.approx(1.0)
