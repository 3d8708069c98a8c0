"""Probabilities → labels: the one place the decision threshold turns a score into a label.

The labels are the contract's (``LABEL_VALUES``, ``POSITIVE_LABEL``); the threshold is the
model's own (``AttritionPredictor.threshold``, reported by the API's ``/model``). The predictor,
the API, batch scoring and the smoke test all label through here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from attrition_mlops.data import contract

POSITIVE_INDEX = contract.LABEL_VALUES.index(contract.POSITIVE_LABEL)
NEGATIVE_INDEX = contract.LABEL_VALUES.index(contract.NEGATIVE_LABEL)
if (NEGATIVE_INDEX, POSITIVE_INDEX) != (0, 1):  # the contract lists the negative label first
    raise ImportError(f"LABEL_VALUES must be (negative, positive): {contract.LABEL_VALUES}")
_LABELS = np.array(contract.LABEL_VALUES)


def label_index(probability: ArrayLike, threshold: float) -> np.ndarray:
    """Per probability, the index of its label in ``contract.LABEL_VALUES`` (int8).

    The positive label at or above the threshold, the other one below it (and for NaN).
    """
    # Negative first in LABEL_VALUES: the 0/1 verdict is the index (one numpy pass, no where()).
    return (np.asarray(probability) >= threshold).astype(np.int8)


def labels(probability: ArrayLike, threshold: float) -> np.ndarray:
    """Per probability, its label (``contract.LABEL_VALUES``) at ``threshold``."""
    return _LABELS[label_index(probability, threshold)]
