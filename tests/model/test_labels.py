"""Probabilities become labels in one place: the contract's labels at the model's threshold."""

from __future__ import annotations

import numpy as np

from attrition_mlops.data import contract
from attrition_mlops.model.labels import label_index, labels


def test_at_or_above_the_threshold_is_the_contracts_positive_label():
    probability = np.array([0.0, 0.2999, 0.3, 0.9, np.nan])
    no, yes = contract.NEGATIVE_LABEL, contract.POSITIVE_LABEL
    assert labels(probability, 0.3).tolist() == [no, no, yes, yes, no]
    codes = label_index(probability, 0.3)
    assert codes.dtype == np.int8
    assert [contract.LABEL_VALUES[i] for i in codes] == labels(probability, 0.3).tolist()


def test_a_single_probability_labels_like_an_array_of_one():
    assert str(labels(0.5, 0.5)) == contract.POSITIVE_LABEL
    assert str(labels(0.49, 0.5)) == contract.NEGATIVE_LABEL


def test_the_predictor_labels_at_its_own_threshold(predictor, snapshot):
    inputs = snapshot.frame[list(contract.INPUT_COLUMNS)].head(200)
    predicted = predictor.predict(inputs)
    assert (
        predicted["label"].tolist()
        == labels(predicted["probability"], predictor.threshold).tolist()
    )
    assert set(predicted["label"]) <= set(contract.LABEL_VALUES)
