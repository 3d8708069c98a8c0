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
_LABELS = np.array(contract.LABEL_VALUES)


def label_index(probability: ArrayLike, threshold: float) -> np.ndarray:
    """Per probability, the index of its label in ``contract.LABEL_VALUES`` (int8).

    The positive label at or above the threshold, the other one below it (and for NaN).
    """
    positive = np.asarray(probability) >= threshold
    return np.where(positive, POSITIVE_INDEX, NEGATIVE_INDEX).astype(np.int8)


def labels(probability: ArrayLike, threshold: float) -> np.ndarray:
    """Per probability, its label (``contract.LABEL_VALUES``) at ``threshold``."""
    return _LABELS[label_index(probability, threshold)]
