"""Two-sample tests and effect sizes for the drift check: pure statistics over counted samples.

:mod:`attrition_mlops.monitoring.drift` decides; this module measures. A numeric window is held
as its distinct values and counts (:class:`Sample`), so the KS statistic, the Wasserstein
distance's inputs and the PSI bins cost O(distinct values), not O(records); categorical levels
get a χ² homogeneity test that pools or simulates when expected counts are small. The KS
statistic and p-value equal ``scipy.stats.ks_2samp``'s (tests hold them to it).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import stats

from attrition_mlops.settings import DriftSettings


@dataclass(frozen=True)
class Sample:
    """A numeric sample as its distinct values (ascending) and their counts.

    A night of logs has a million values but only hundreds of distinct ones (the numeric
    features are whole numbers), so every statistic here costs O(distinct) after one count.
    """

    values: np.ndarray
    counts: np.ndarray
    raw: np.ndarray

    @classmethod
    def of(cls, raw: np.ndarray) -> Sample:
        raw = np.asarray(raw)
        whole = raw.size > 0 and np.array_equal(raw, np.rint(raw))
        if whole and raw.max() - raw.min() <= max(4 * raw.size, 1 << 16):
            low = raw.min()
            tally = np.bincount((raw - low).astype(np.int64))
            present = np.flatnonzero(tally)
            return cls((present + low).astype(float), tally[present], raw)
        values, counts = np.unique(raw.astype(float), return_counts=True)
        return cls(values, counts, raw)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def mean(self) -> float:
        return float((self.values * self.counts).sum() / self.n)  # no BLAS call for a dot

    def std(self) -> float:
        """Sample standard deviation (ddof = 1), 0 for a single value."""
        if self.n < 2:
            return 0.0
        deviation = self.values - self.mean()
        return float(np.sqrt((deviation**2 * self.counts).sum() / (self.n - 1)))

    def median(self) -> float:
        cumulative = np.cumsum(self.counts)
        low, high = (self.n - 1) // 2, self.n // 2  # the middle order statistic(s), 0-based
        pick = np.searchsorted(cumulative, [low + 1, high + 1])
        return float((self.values[pick[0]] + self.values[pick[1]]) / 2)


#: scipy.stats.ks_2samp's switch from the exact to the asymptotic p-value under "auto".
KS_EXACT_MAX_N = 10_000


def ks_two_sample(reference: np.ndarray, current: Sample, method: str) -> tuple[float, float]:
    """Two-sided two-sample KS statistic and p-value, equal to ``scipy.stats.ks_2samp``'s.

    With the asymptotic p-value (``method="asymp"``, or ``"auto"`` once a sample has more than
    10,000 values) the statistic is computed from the distinct values and counts: the two
    empirical CDFs are the same integer counts over the same sizes at the same points as in
    scipy, and the p-value is scipy's own formula (``kstwo.sf``). Otherwise (small samples, the
    exact distribution) scipy gets the raw values.
    """
    n1, n2 = reference.size, current.n
    if method == "exact" or (method == "auto" and max(n1, n2) <= KS_EXACT_MAX_N):
        result = stats.ks_2samp(reference, current.raw, method=method)
        return float(result.statistic), float(result.pvalue)
    reference = np.sort(reference)
    points = np.union1d(reference, current.values)
    cdf1 = np.searchsorted(reference, points, side="right") / n1
    below = np.searchsorted(current.values, points, side="right")
    cdf2 = np.concatenate(([0], np.cumsum(current.counts)))[below] / n2
    differences = cdf1 - cdf2
    statistic = float(max(differences.max(), np.clip(-differences.min(), 0, 1)))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p_value = stats.distributions.kstwo.sf(statistic, np.round(m * n / (m + n)))
    return statistic, float(np.clip(p_value, 0, 1))


def chi2_homogeneity(
    table: np.ndarray, name: str, settings: DriftSettings
) -> tuple[str, float, float, str]:
    """(test, statistic, p, note) for a 2×k reference-vs-current table; small cells handled."""
    if table.shape[1] < 2:
        return "chi2", 0.0, 1.0, "a single level observed: nothing to compare"
    small = _expected(table).min(axis=0) < settings.min_expected
    if not small.any():
        statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
        return "chi2", float(statistic), float(p_value), ""
    pooled = np.column_stack([table[:, ~small], table[:, small].sum(axis=1)])
    if pooled.shape[1] >= 2 and _expected(pooled).min() >= settings.min_expected:
        statistic, p_value, _, _ = stats.chi2_contingency(pooled, correction=False)
        note = f"pooled {int(small.sum())} levels with expected count < {settings.min_expected:g}"
        return "chi2_pooled", float(statistic), float(p_value), note
    rng = np.random.default_rng([settings.seed, zlib.crc32(name.encode())])
    statistic, p_value = _monte_carlo_chi2(table, settings.monte_carlo_tables, rng)
    note = f"Monte Carlo p-value ({settings.monte_carlo_tables} tables): counts too small for χ²"
    return "chi2_monte_carlo", statistic, p_value, note


def _expected(table: np.ndarray) -> np.ndarray:
    return np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()


def _chi2_statistic(current: np.ndarray, totals: np.ndarray, n_reference: int) -> np.ndarray:
    """Pearson χ² of 2×k tables given the current row(s); vectorised over leading axes."""
    n_current = current.sum(axis=-1, keepdims=True)
    grand = n_current + n_reference
    e_cur, e_ref = n_current * totals / grand, n_reference * totals / grand
    reference = totals - current
    return (((current - e_cur) ** 2) / e_cur + ((reference - e_ref) ** 2) / e_ref).sum(axis=-1)


def _monte_carlo_chi2(
    table: np.ndarray, n_tables: int, rng: np.random.Generator
) -> tuple[float, float]:
    """χ² with a p-value from tables drawn with both margins fixed (the exact null)."""
    totals = table.sum(axis=0)
    observed = float(_chi2_statistic(table[1], totals, int(table[0].sum())))
    draws = rng.multivariate_hypergeometric(totals, int(table[1].sum()), size=n_tables)
    simulated = _chi2_statistic(draws.astype(float), totals, int(table[0].sum()))
    exceed = int(np.count_nonzero(simulated >= observed * (1 - 1e-12)))
    return observed, (exceed + 1) / (n_tables + 1)


def quantile_bin_shares(
    reference: np.ndarray, current: Sample, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    # Interior reference quantiles as edges (duplicates from ties merged), open outer bins, so
    # current values beyond the reference range land in the extreme bins.
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_bins = np.searchsorted(edges, reference, side="right")
    cur_bins = np.searchsorted(edges, current.values, side="right")
    ref_counts = np.bincount(ref_bins, minlength=edges.size + 1)
    cur_counts = np.bincount(cur_bins, weights=current.counts, minlength=edges.size + 1)
    return ref_counts / reference.size, cur_counts / current.n


def population_stability_index(
    reference_share: np.ndarray, current_share: np.ndarray, epsilon: float = 1e-4
) -> float:
    """PSI = Σ (c − r)·ln(c / r), shares floored at ``epsilon`` so empty bins stay finite."""
    r = np.maximum(np.asarray(reference_share, dtype=float), epsilon)
    c = np.maximum(np.asarray(current_share, dtype=float), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))
