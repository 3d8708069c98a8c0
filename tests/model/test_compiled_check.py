"""The one agreement rule between the compiled model and the sklearn pipeline."""

from __future__ import annotations

import numpy as np

from attrition_mlops.model.compiled import SELF_CHECK_TOLERANCE, agrees, disagreement

PROBABILITY = np.array([0.1, 0.7])
SCORE = np.array([3.0, 250.0])


def test_probability_gap_is_absolute_and_score_gap_relative_to_the_largest_score():
    assert abs(disagreement((PROBABILITY + 1e-6, SCORE), (PROBABILITY, SCORE)) - 1e-6) < 1e-15
    gap = disagreement((PROBABILITY, SCORE + [0.0, 2.5e-6]), (PROBABILITY, SCORE))
    assert abs(gap - 1e-8) < 1e-15  # 2.5e-6 / 250
    assert agrees(SELF_CHECK_TOLERANCE) and not agrees(2 * SELF_CHECK_TOLERANCE)


def test_a_nan_anywhere_is_a_disagreement():
    # A NaN outlier score with equal probabilities must not hide behind the probability gap.
    nan_score = np.array([3.0, np.nan])
    assert not agrees(disagreement((PROBABILITY, nan_score), (PROBABILITY, SCORE)))
    assert not agrees(disagreement((PROBABILITY, SCORE), (PROBABILITY, nan_score)))
    nan_probability = np.array([0.1, np.nan])
    assert not agrees(disagreement((nan_probability, SCORE), (PROBABILITY, SCORE)))
