"""The shared resampling statistics (attrition_mlops.stats.bootstrap): the grouped-count path.

The row path (stratified_resample_indices, auc_from_resamples) is tested through the gate's
re-exports in tests/gate/test_bootstrap.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from attrition_mlops.stats.bootstrap import (
    CHUNK_ELEMENTS,
    as_labels,
    auc_from_count_resamples,
    auc_from_resamples,
    auc_of_rows,
    chunk_rows,
    score_keys,
    stratified_resample_indices,
)


def _cohort(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 4.0, n)
    return (rng.random(n) < p).astype(np.int64), p


def test_grouped_bootstrap_matches_the_row_bootstrap() -> None:
    """Large cohorts resample counts per score group: same distribution as resampling rows."""
    y, p = _cohort(3000, 2)
    grid = np.round(p, 2)  # coarse scores, so rows and groups describe the same data
    rows = auc_from_resamples(
        grid, y, stratified_resample_indices(y, 4000, np.random.default_rng(0))
    )
    _, group = np.unique(grid, return_inverse=True)
    size = int(group.max()) + 1
    pos = np.bincount(group[y == 1], minlength=size)
    neg = np.bincount(group[y == 0], minlength=size)
    counts = auc_from_count_resamples(pos, neg, 4000, np.random.default_rng(1))
    assert counts.mean() == pytest.approx(rows.mean(), abs=0.002)
    assert counts.std() == pytest.approx(rows.std(), rel=0.08)
    one = auc_from_count_resamples([0, 3, 1], [2, 1, 0], 1, np.random.default_rng(0))
    assert 0.0 <= one[0] <= 1.0


def test_count_resamples_centre_on_the_datas_auc() -> None:
    # Groups in ascending score order: positives at scores 1, 1, 2; negatives at 0, 1.
    # Pairs: each positive vs the score-0 negative wins (3), vs the score-1 negative ties for
    # the two at score 1 (2 × ½) and wins for the one at 2: (3 + 1 + 1) / 6.
    pos, neg = np.array([0, 2, 1]), np.array([1, 1, 0])
    boots = auc_from_count_resamples(pos, neg, 3000, np.random.default_rng(0))
    assert np.all((boots >= 0) & (boots <= 1))
    # AUC is bilinear in the two independent count vectors, so its bootstrap mean is exactly the
    # data's AUC in expectation; 0.02 is ~5 standard errors of the mean of 3,000 resamples.
    assert boots.mean() == pytest.approx(5 / 6, abs=0.02)


@pytest.mark.parametrize(("pos", "neg"), [([0, 0], [1, 2]), ([1, 2], [0, 0])])
def test_count_resamples_need_both_classes(pos, neg) -> None:
    with pytest.raises(ValueError, match="need both classes"):
        auc_from_count_resamples(np.array(pos), np.array(neg), 10, np.random.default_rng(0))


# --- edges pinned for the mutation run (docs/testing.md#mutation-testing) ---------------------


def test_label_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^y must contain only 0/1 \(or boolean\) labels$"):
        as_labels(np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="got 5 positives and 0 negatives"):
        as_labels(np.ones(5))
    with pytest.raises(ValueError, match="got 0 positives and 3 negatives"):
        as_labels(np.zeros(3))


def test_chunk_rows_edges() -> None:
    assert chunk_rows(CHUNK_ELEMENTS * 4, None) == 1  # a huge sample: one resample per chunk
    assert chunk_rows(1000, None) == CHUNK_ELEMENTS // 1000
    assert chunk_rows(1000, 7) == 7
    with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
        chunk_rows(1000, 0)


def test_resampling_one_positive_and_one_negative() -> None:
    # The smallest sample: one draw range of size 1, so every resample is the sample itself.
    idx = stratified_resample_indices(np.array([0, 1]), 4, np.random.default_rng(0))
    assert idx.tolist() == [[1, 0]] * 4
    with pytest.raises(ValueError, match="n_boot must be >= 1, got 0"):
        stratified_resample_indices(np.array([0, 1]), 0, np.random.default_rng(0))


def test_scores_must_be_finite() -> None:
    with pytest.raises(ValueError, match="^scores must be finite$"):
        score_keys(np.array([0.1, np.nan]), np.array([0, 1]))


def test_auc_of_rows_smallest_pairs_and_missing_classes() -> None:
    labels = np.array([0, 1, 0, 1])
    keys, groups = score_keys(np.array([0.1, 0.9, 0.2, 0.3]), labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a resample without a class is NaN, silently
        auc = auc_of_rows(keys, groups, np.array([[0, 1], [1, 0], [0, 2], [1, 3], [1, 2]]))
    assert auc.dtype == np.float64
    # One positive and one negative is one pair: its AUC is defined (1.0 here).
    assert auc[0] == 1.0 and auc[1] == 1.0
    assert np.isnan(auc[2]) and np.isnan(auc[3])
    assert auc[4] == 1.0
