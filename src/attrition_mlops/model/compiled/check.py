"""The compiled model held to the sklearn pipeline it was compiled from: one rule, one tolerance.

Serving checks the example record when a model is loaded; batch scoring checks the first rows
of a run. Either way the compiled path is used only if it agrees with the sklearn pipeline, on
the same rows, within :data:`SELF_CHECK_TOLERANCE`; otherwise the caller falls back to sklearn.
"""

from __future__ import annotations

import numpy as np

#: Compiled and sklearn paths must agree this closely (probability; outlier score relative).
SELF_CHECK_TOLERANCE = 1e-9

#: (P(positive class), outlier score) per row.
Scores = tuple[np.ndarray, np.ndarray]


def disagreement(compiled: Scores, reference: Scores) -> float:
    """Largest gap of the two paths: probability absolute, outlier score relative to its size.

    Scores are divided by the reference's largest score (at least 1), so the tolerance means
    the same for a detector whose scores run into the hundreds as for probabilities. Any NaN
    makes the result NaN, which :func:`agrees` rejects.
    """
    (probability, score), (expected_probability, expected_score) = compiled, reference
    scale = np.fmax(1.0, np.max(np.abs(expected_score)))  # a NaN score still gives NaN below
    gaps = (
        np.max(np.abs(probability - expected_probability)),
        np.max(np.abs(score - expected_score)) / scale,
    )
    return float(np.max(gaps))  # np.max, not max(): a NaN on either side must survive


def agrees(gap: float) -> bool:
    """True when the gap is within tolerance (NaN counts as a disagreement)."""
    return gap <= SELF_CHECK_TOLERANCE
